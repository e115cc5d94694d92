import { randomUUID } from 'node:crypto';
import os from 'node:os';
import type { Command } from 'commander';
import { BadAccountValue, parseAccount } from '../accounts/account.js';
import { CREATE_DATASET_LUA } from '../accounts/dataset.js';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { reindexArgs } from '../calls/totals.js';
import { appendAudit } from '../control/audit.js';
import { FencedMaster } from '../control/master.js';
import { BLOCKED_BY_FIELD, EVIDENCE_FIELD } from '../control/projection.js';
import { silentLogger } from '../log.js';
import { redactFields } from './edge-routes.js';
import { splitHostPort } from '../config/host-port.js';
import type { Redis } from 'ioredis';
import { RATE_WINDOW_MS } from '../calls/call-rate.js';
import { ACCOUNT_ID_PATTERN, accountKey, callsKey, DATASET_KEY, rateKey, setupKey } from '../redis/keys.js';

/**
 * `credit-edge account show|set|block|unblock`: operators' changes to account hashes, written on
 * the master found through Sentinel, fenced like the controller's writes (Sentinel's majority and
 * the node's ROLE agree before the write; a write that cannot be confirmed is reported as not
 * done). `set` refuses values the edge could not parse: it would read the account as unknown.
 */

/** Fields an operator sets with `account set`; credit_blocked goes through block/unblock (with a reason). */
export const SETTABLE_FIELDS = ['enabled', 'balance', 'rate', 'max_channels', 'max_cps', 'route', 'sip_password'] as const;
const UNSETTABLE_FIELDS = new Set(['balance', 'rate', 'max_channels', 'max_cps', 'route', 'sip_password']);
const BLOCK_FIELDS = ['credit_block_reason', BLOCKED_BY_FIELD, EVIDENCE_FIELD];
const OPERATOR_MARK = 'operator';
const AUDIT_MAX_LEN = 100_000;

export interface AccountChange {
  set: Record<string, string>;
  unset: string[];
}

/** Parses `field=value` words and --unset names; throws with a one-line cause. */
export function parseChange(assignments: string[], unset: string[]): AccountChange {
  const set: Record<string, string> = {};
  for (const word of assignments) {
    const i = word.indexOf('=');
    if (i <= 0) throw new Error(`expected field=value, got "${word}"`);
    const field = word.slice(0, i);
    if (field === 'credit_blocked' || field === 'credit_block_reason') throw new Error(`${field}: use "account block" or "account unblock", which record a reason`);
    if (!(SETTABLE_FIELDS as readonly string[]).includes(field)) throw new Error(`unknown field ${field} (fields: ${SETTABLE_FIELDS.join(', ')})`);
    set[field] = word.slice(i + 1);
  }
  for (const field of unset) {
    if (!UNSETTABLE_FIELDS.has(field)) throw new Error(`--unset ${field}: only ${[...UNSETTABLE_FIELDS].join(', ')} can be removed`);
    if (field in set) throw new Error(`${field} is both set and unset`);
  }
  if (Object.keys(set).length === 0 && unset.length === 0) throw new Error('nothing to change: give field=value pairs or --unset');
  return { set, unset };
}

/** The hash after the change, checked with the edge's own parser; throws with a one-line cause. */
export function validateChange(id: string, current: Record<string, string>, change: AccountChange): Record<string, string> {
  const next: Record<string, string> = { ...current, ...change.set };
  for (const field of change.unset) delete next[field];
  try {
    parseAccount(id, next);
  } catch (err) {
    if (err instanceof BadAccountValue) throw new Error(`refused: ${err.message} (the edge would read account ${id} as unknown)`);
    throw err;
  }
  return next;
}

/** Who did it, for the audit trail: `operator:user@host`. */
export function operatorName(): string {
  return `${OPERATOR_MARK}:${os.userInfo().username}@${os.hostname()}`;
}

function checkId(id: string): string {
  if (!ACCOUNT_ID_PATTERN.test(id)) throw new Error(`"${id}" is not an account id`);
  return id;
}

/** The master through Sentinel, ready, or a one-line cause. */
export async function connectMaster(config: Config, timeoutMs = 5000): Promise<FencedMaster> {
  const { sentinel, password } = config.redis;
  const master = new FencedMaster({
    masterName: sentinel.master_name,
    sentinels: sentinel.addresses.map(splitHostPort),
    ...(password !== undefined && { password }),
    commandTimeoutMs: 2000,
    waitReplicas: 0,
    waitTimeoutMs: 0,
    connectionName: 'credit-edge-cli',
    logger: silentLogger,
  });
  const deadline = Date.now() + timeoutMs;
  while (master.client.status !== 'ready') {
    if (Date.now() > deadline) {
      await master.close();
      throw new Error(`cannot reach master "${sentinel.master_name}" through Sentinel ${sentinel.addresses.join(', ')} within ${timeoutMs} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return master;
}

/**
 * One fenced read-modify-write of an account hash: WATCH, read, build the change, write it only if
 * the master is still the one Sentinel names and nothing changed the hash meanwhile.
 */
async function changeAccount(
  master: FencedMaster,
  id: string,
  build: (current: Record<string, string>) => { hset: Record<string, string>; hdel: string[]; audit?: { action: 'block' | 'unblock'; reason: string } },
  options: { createDataset?: boolean } = {},
): Promise<string> {
  const fenced = await master.fence();
  if (!fenced.ok) throw new Error(`not written: ${fenced.why}`);
  const key = accountKey(id);
  await master.client.watch(key);
  const change = build(await master.client.hgetall(key));
  const result = await master.write(fenced.fence, (tx) => {
    if (change.hdel.length > 0) tx.hdel(key, ...change.hdel);
    if (Object.keys(change.hset).length > 0) tx.hset(key, change.hset);
    // The account's runs-dry entry follows its balance and block at once (a top-up lifts a block of
    // the controller's in its next round, not at the next sweep).
    tx.eval(...reindexArgs(id, key));
    if (options.createDataset) tx.eval(CREATE_DATASET_LUA, 1, DATASET_KEY, randomUUID(), operatorName(), 'unknown');
    if (change.audit) {
      const by = operatorName();
      const at = new Date().toISOString();
      appendAudit(tx, { action: change.audit.action, account: id, reason: change.audit.reason, evidence: JSON.stringify({ by, at }), controller: by, master: fenced.fence.address, at }, AUDIT_MAX_LEN);
    }
  });
  if (!result.done) throw new Error(`not written: ${result.why}`);
  const replicas = Number(await master.client.call('WAIT', '1', '1000').catch(() => 0));
  const line = `account ${id} written on master ${result.address} (${replicas > 0 ? 'seen by a replica' : 'no replica acknowledged within 1 s'})`;
  // Written, but no edge can trust it: say so rather than let the operator wonder why calls get 503.
  if ((await master.client.hexists(DATASET_KEY, 'id')) === 0) {
    return `${line}
warning: the master has no dataset marker: every edge answers every account as unknown (cache, else 503). If this is the real dataset: credit-edge dataset init (or --create-dataset)`;
  }
  return line;
}

/** `account set`: the change, checked with the edge's parser, written fenced; returns the outcome line. */
export async function setAccount(master: FencedMaster, id: string, change: AccountChange, options: { createDataset?: boolean } = {}): Promise<string> {
  return changeAccount(
    master,
    id,
    (current) => {
      if (Object.keys(current).length === 0 && change.set.enabled === undefined) throw new Error(`no account ${id}: a new account needs enabled=1 or enabled=0`);
      validateChange(id, current, change);
      return { hset: change.set, hdel: change.unset };
    },
    options,
  );
}

/** Runs `fn` with the master found through Sentinel from the config file, and closes it after. */
export async function withMaster<T>(opts: { config?: string }, fn: (master: FencedMaster, config: Config) => Promise<T>): Promise<T> {
  const { config } = loadConfig(opts.config);
  const master = await connectMaster(config);
  try {
    return await fn(master, config);
  } finally {
    await master.close();
  }
}

/** The --config option of every command that reaches the master through Sentinel. */
export const masterConfigOption = ['-c, --config <file>', 'config file for redis.sentinel and redis.password (default config/credit-edge.yaml)'] as const;

export function registerAccountCommand(program: Command): void {
  const account = program.command('account').description('show or change an account on the Redis master (through Sentinel)');
  const configOption = masterConfigOption;

  account
    .command('show')
    .description('print the account hash as the master holds it, and whether the edge can parse it (secrets redacted)')
    .argument('<id>', 'account id', checkId)
    .option(...configOption)
    .option('--json', 'print JSON')
    .action(async (id: string, opts: { config?: string; json?: boolean }) => {
      await withMaster(opts, async (master) => {
        const fields = await master.client.hgetall(accountKey(id));
        if (Object.keys(fields).length === 0) throw new Error(`no account ${id} on the master`);
        let verdict = 'valid';
        try {
          parseAccount(id, fields);
        } catch (err) {
          verdict = `unknown to the edge: ${(err as Error).message}`;
        }
        const shown = redactFields(fields);
        const inUse = await limitsInUse(master.client, id);
        if (opts.json) process.stdout.write(JSON.stringify({ id, fields: shown, verdict, in_use: inUse }, null, 2) + '\n');
        else
          process.stdout.write(
            [`account ${id} (${verdict})`, ...Object.entries(shown).sort().map(([k, v]) => `  ${k}: ${v}`), `  channels in use: ${inUse.channels} (${inUse.answered} answered, ${inUse.setting_up} being set up)`, `  calls admitted in the last second: ${inUse.calls_last_second}`].join('\n') + '\n',
          );
      });
    });

  account
    .command('set')
    .description('set fields (enabled, balance, rate, max_channels, max_cps, route, sip_password); refused if the edge could not parse the result')
    .argument('<id>', 'account id', checkId)
    .argument('[field=value...]', 'fields to set, e.g. balance=12.50 max_channels=10')
    .option(...configOption)
    .option('--unset <field>', 'remove an optional field (repeatable)', (v: string, all: string[]) => [...all, v], [] as string[])
    .option('--create-dataset', 'also declare the dataset marker if the master has none (a first account of a new deployment)')
    .action(async (id: string, assignments: string[], opts: { config?: string; unset: string[]; createDataset?: boolean }) => {
      const change = parseChange(assignments, opts.unset);
      await withMaster(opts, async (master, config) => {
        const line = await setAccount(master, id, change, { createDataset: opts.createDataset === true });
        process.stdout.write(line + '\n');
        const route = change.set.route;
        if (route !== undefined && !(route in config.routes)) process.stderr.write(`warning: route group "${route}" is not in this config's routes: calls would get 503 no-route here\n`);
      });
    });

  account
    .command('block')
    .description('block the account (403 Out Of Call Credit) with a reason; the controller never lifts an operator block')
    .argument('<id>', 'account id', checkId)
    .requiredOption('--reason <text>', 'why, for the audit trail and the people after you')
    .option(...configOption)
    .action(async (id: string, opts: { config?: string; reason: string }) => {
      await withMaster(opts, async (master) => {
        const line = await changeAccount(master, id, (current) => {
          if (Object.keys(current).length === 0) throw new Error(`no account ${id} on the master`);
          return { hset: { credit_blocked: '1', credit_block_reason: opts.reason, [BLOCKED_BY_FIELD]: OPERATOR_MARK }, hdel: [EVIDENCE_FIELD], audit: { action: 'block', reason: opts.reason } };
        });
        process.stdout.write(line + ': blocked\n');
      });
    });

  account
    .command('unblock')
    .description('lift a credit block (operator or controller), recording why')
    .argument('<id>', 'account id', checkId)
    .option('--reason <text>', 'why, for the audit trail', 'lifted by an operator')
    .option(...configOption)
    .action(async (id: string, opts: { config?: string; reason: string }) => {
      await withMaster(opts, async (master) => {
        const line = await changeAccount(master, id, (current) => {
          if (Object.keys(current).length === 0) throw new Error(`no account ${id} on the master`);
          return { hset: { credit_blocked: '0' }, hdel: BLOCK_FIELDS, audit: { action: 'unblock', reason: opts.reason } };
        });
        process.stdout.write(line + ': unblocked\n');
      });
    });
}

/** What the account uses of its limits now, as the master counts it (all edges). */
async function limitsInUse(client: Redis, id: string): Promise<{ channels: number; answered: number; setting_up: number; calls_last_second: number }> {
  const [seconds, micros] = await client.time();
  const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
  const replies = ((await client.multi().hlen(callsKey(id)).zcount(setupKey(id), now, '+inf').zcount(rateKey(id), now - RATE_WINDOW_MS, '+inf').exec()) ?? []) as [unknown, number][];
  const [answered, settingUp, lastSecond] = replies.map(([, n]) => n) as [number, number, number];
  return { channels: answered + settingUp, answered, setting_up: settingUp, calls_last_second: lastSecond };
}
