import type { Redis } from 'ioredis';
import { LEASE_KEY } from '../redis/keys.js';


/**
 * Only one controller acts: it holds a lease on the master (SET NX PX, renewed every round by its
 * holder). A standby tries every round and takes over once the lease has expired. The value names
 * the holder, so an operator can see who acts: `GET controller:lease`.
 */
const HOLD_LUA = `
local holder = redis.call('GET', KEYS[1])
if holder == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
elseif holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0`;

const RELEASE_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

export class Lease {
  constructor(
    private readonly client: Redis,
    /** Unique per controller process: node name + random. */
    readonly holder: string,
    readonly ttlMs: number,
  ) {}

  /** Takes or renews the lease; true when this controller holds it. Throws when the master did not answer. */
  async hold(): Promise<boolean> {
    return (await this.client.eval(HOLD_LUA, 1, LEASE_KEY, this.holder, String(this.ttlMs))) === 1;
  }

  /** Gives the lease up at an orderly stop, so the standby takes over at once. */
  async release(): Promise<void> {
    await this.client.eval(RELEASE_LUA, 1, LEASE_KEY, this.holder);
  }

  /** Who holds it now (for status lines). */
  async holderNow(): Promise<string | null> {
    return this.client.get(LEASE_KEY);
  }
}
