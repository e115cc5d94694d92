/**
 * Waits for a Redis reply at most `ms`; 'late' after that (the reply, if it comes, is dropped).
 *
 * 'late' is decided only after the event loop has looked at the sockets: when the loop itself ran
 * late (a GC pause, a burst of calls), a reply that arrived in time is waiting there, and timers
 * run before I/O. Without this, a busy edge would call a healthy replica or master slow.
 */
export async function answerWithin<T>(answer: Promise<T>, ms: number): Promise<T | 'late'> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => setImmediate(resolve, 'late'), ms);
  });
  try {
    return await Promise.race([answer, late]);
  } finally {
    clearTimeout(timer);
  }
}
