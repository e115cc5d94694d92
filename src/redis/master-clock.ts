/**
 * Lua prelude: `now_ms`, the master's clock in ms (TIME), so that a script's expiries and windows
 * are on one clock for the whole fleet, whatever the edges' clocks say.
 */
export const MASTER_NOW_MS_LUA = `local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;
