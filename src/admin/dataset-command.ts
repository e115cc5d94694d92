import { randomUUID } from 'node:crypto';
import type { Command } from 'commander';
import { ACCEPT_DATASET_LUA, ACCEPT_DELETIONS_LUA, CREATE_DATASET_LUA } from '../accounts/dataset.js';
import { appendAudit, type AuditAction } from '../control/audit.js';
import type { FencedMaster } from '../control/master.js';
import { masterConfigOption, operatorName, withMaster } from './account-command.js';
import { ACCOUNT_KEY_PREFIX, DATASET_KEY } from '../redis/keys.js';

/**
 * `credit-edge dataset show|init|accept|accept-deletions`: the operator's steps on the dataset
 * marker (src/accounts/dataset.ts), on the master found through Sentinel, fenced like every write,
 * each with its entry in the audit stream in the same MULTI.
 */

const AUDIT_MAX_LEN = 100_000;
/** What the audit stream names as the "account" of a step on the whole dataset. */
const WHOLE_DATASET = '*';

/** Account keys on the master (SCAN: never blocks it, however many there are). */
async function countAccounts(master: FencedMaster): Promise<number> {
  let count = 0;
  let cursor = '0';
  do {
    const [next, keys] = await master.client.scan(cursor, 'MATCH', `${ACCOUNT_KEY_PREFIX}*`, 'COUNT', 1000);
    cursor = next;
    count += keys.length;
  } while (cursor !== '0');
  return count;
}

/** WATCH the marker, read it, then write `script` and its audit entry only if nothing changed meanwhile. */
async function changeMarker(
  master: FencedMaster,
  step: (marker: Record<string, string>) => { action: AuditAction; reason: string; script: string; args: string[] },
): Promise<{ marker: Record<string, string>; address: string }> {
  const fenced = await master.fence();
  if (!fenced.ok) throw new Error(`not written: ${fenced.why}`);
  await master.client.watch(DATASET_KEY);
  const before = await master.client.hgetall(DATASET_KEY);
  let change: ReturnType<typeof step>;
  try {
    change = step(before);
  } catch (err) {
    await master.client.unwatch();
    throw err;
  }
  const by = operatorName();
  const at = new Date().toISOString();
  const result = await master.write(fenced.fence, (tx) => {
    tx.eval(change.script, 1, DATASET_KEY, ...change.args);
    appendAudit(tx, { action: change.action, account: WHOLE_DATASET, reason: change.reason, evidence: JSON.stringify({ by, at, before }), controller: by, master: fenced.fence.address, at }, AUDIT_MAX_LEN);
  });
  if (!result.done) throw new Error(`not written: ${result.why}`);
  return { marker: await master.client.hgetall(DATASET_KEY), address: result.address };
}

/** How `dataset init` refuses a master without accounts (tools that drive the CLI match it). */
export const EMPTY_MASTER_REFUSED = 'refused: the master holds no account';

export async function initDataset(master: FencedMaster, options: { force?: boolean } = {}): Promise<string> {
  const accounts = await countAccounts(master);
  const { marker, address } = await changeMarker(master, (current) => {
    if (current.id) throw new Error(`dataset ${current.id} is already declared (created ${describeTime(current.created_at)} by ${current.created_by}); nothing changed`);
    if (accounts === 0 && !options.force) {
      throw new Error(
        `${EMPTY_MASTER_REFUSED}. Declaring an empty dataset is the mistake the marker exists to catch (a master that lost its data). Restore or provision the accounts first; --force only for a deployment that starts empty on purpose`,
      );
    }
    return { action: 'dataset-init', reason: `dataset declared with ${accounts} account(s)`, script: CREATE_DATASET_LUA, args: [randomUUID(), operatorName(), String(accounts)] };
  });
  return `dataset ${marker.id} declared on master ${address} with ${accounts} account(s). Edges that read another dataset before call this one changed until \`credit-edge dataset accept\``;
}

export async function acceptDataset(master: FencedMaster, by: string): Promise<string> {
  const { marker, address } = await changeMarker(master, (current) => {
    if (!current.id) throw new Error('no dataset marker on the master: declare it first with `credit-edge dataset init`');
    return { action: 'dataset-accept', reason: `dataset ${current.id} accepted: edges that call it changed adopt it`, script: ACCEPT_DATASET_LUA, args: [by] };
  });
  return `dataset ${marker.id} accepted on master ${address}: every edge reads it from now on`;
}

export async function acceptDeletions(master: FencedMaster, by: string): Promise<string> {
  const { marker, address } = await changeMarker(master, (current) => {
    if (!current.id) throw new Error('no dataset marker on the master: a lost dataset is not a deletion to accept');
    return { action: 'deletions-accepted', reason: 'absent accounts are real deletions: the edges release their mass-absence guards', script: ACCEPT_DELETIONS_LUA, args: [by] };
  });
  return `deletions accepted on master ${address} (dataset ${marker.id}, acceptance #${marker.deletions_accepted}): edges answer absent accounts 403 Forbidden from their next lookup`;
}

function describeTime(ms: string | undefined): string {
  const n = Number(ms);
  return Number.isFinite(n) && n > 0 ? new Date(n).toISOString() : 'at an unknown time';
}

/** Runs an operator step with the master and prints its one-line result. */
async function step(opts: { config?: string }, fn: (master: FencedMaster) => Promise<string>): Promise<void> {
  process.stdout.write((await withMaster(opts, fn)) + '\n');
}

export function registerDatasetCommand(program: Command): void {
  const dataset = program.command('dataset').description('the dataset marker on the Redis master: what tells a real dataset from a lost one');
  const configOption = masterConfigOption;

  dataset
    .command('show')
    .description('print the marker and how many accounts the master holds')
    .option(...configOption)
    .option('--json', 'print JSON')
    .action(async (opts: { config?: string; json?: boolean }) => {
      await step(opts, async (master) => {
        const [marker, accounts] = await Promise.all([master.client.hgetall(DATASET_KEY), countAccounts(master)]);
        if (opts.json) return JSON.stringify({ marker: marker.id ? marker : null, accounts }, null, 2);
        if (!marker.id) return `NO DATASET MARKER on the master (${accounts} account key(s)): every edge answers its accounts as unknown (cache, else 503).\nIf the accounts are really there: credit-edge dataset init`;
        const lines = [`dataset ${marker.id}: ${accounts} account key(s) now`, `  created ${describeTime(marker.created_at)} by ${marker.created_by} with ${marker.accounts} account(s)`];
        if (marker.accepted_at) lines.push(`  accepted ${describeTime(marker.accepted_at)} by ${marker.accepted_by}`);
        if (marker.deletions_accepted) lines.push(`  deletions accepted ${marker.deletions_accepted} time(s), last ${describeTime(marker.deletions_accepted_at)} by ${marker.deletions_accepted_by}`);
        return lines.join('\n');
      });
    });

  dataset
    .command('init')
    .description('declare the accounts on the master a real dataset (after provisioning or a restore); refused when there is one, or no account')
    .option(...configOption)
    .option('--force', 'declare it even with no account (a deployment that starts empty on purpose)')
    .action(async (opts: { config?: string; force?: boolean }) => step(opts, (master) => initDataset(master, opts)));

  dataset
    .command('accept')
    .description('vouch for the dataset on the master: edges that call it changed (another id than they read) adopt it')
    .option(...configOption)
    .action(async (opts: { config?: string }) => step(opts, (master) => acceptDataset(master, operatorName())));

  dataset
    .command('accept-deletions')
    .description('the accounts the edges hold back as a mass absence were really deleted: release every edge\'s mass-absence guard')
    .option(...configOption)
    .action(async (opts: { config?: string }) => step(opts, (master) => acceptDeletions(master, operatorName())));
}
