/**
 * Synchronous last-chance cleanup when the Node process exits (normally, via process.exit, or after
 * an uncaught error), so a failed test or a crashed demo never leaves redis-server processes or temp
 * directories behind. Only 'exit' is hooked: signal handling stays the application's business (the
 * demo turns SIGINT/SIGTERM into an orderly stop, which then ends in 'exit').
 */

type Cleanup = () => void;

const cleanups = new Set<Cleanup>();
let hooked = false;

function runAll(): void {
  // Newest first: processes (registered after their temp dir) die before the dir is removed.
  for (const cleanup of [...cleanups].reverse()) {
    try {
      cleanup();
    } catch {
      // Best effort: one failure must not keep the others from running.
    }
  }
  cleanups.clear();
}

/** Registers a synchronous cleanup for process exit; returns the function that unregisters it. */
export function onProcessExit(cleanup: Cleanup): () => void {
  if (!hooked) {
    process.on('exit', runAll);
    hooked = true;
  }
  cleanups.add(cleanup);
  return () => {
    cleanups.delete(cleanup);
  };
}
