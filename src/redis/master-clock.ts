/**
 * Lua prelude: `now_ms`, the master's clock in ms (TIME), so that a script's expiries and windows
 * are on one clock for the whole fleet, whatever the edges' clocks say.
 */
export const MASTER_NOW_MS_LUA = `local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/** Waits for `answer` at most `ms`; 'late' after that (the answer, if it comes, is dropped). */
export async function answerWithin<T>(answer: Promise<T>, ms: number): Promise<T | 'late'> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => (timer = setTimeout(resolve, ms, 'late')));
  try {
    return await Promise.race([answer, late]);
  } finally {
    clearTimeout(timer);
  }
}
