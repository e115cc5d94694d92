import type { ChainableCommander, Redis } from 'ioredis';
import { AUDIT_STREAM } from '../redis/keys.js';

/**
 * The audit trail: every block, unblock, removal of a crashed edge's calls and operator step on the
 * dataset marker (declared, accepted, deletions accepted), as a Redis stream
 * on the master (`audit:credit`), written in the same MULTI as the change itself, so the trail and
 * the data cannot disagree. `credit-edge audit [account]` prints it.
 */

export type AuditAction = 'block' | 'unblock' | 'calls-removed' | 'cut' | 'cut-dry-run' | 'dataset-init' | 'dataset-accept' | 'deletions-accepted';

export interface AuditEntry {
  /** Stream id (ms-seq), set when read back. */
  id?: string;
  action: AuditAction;
  account: string;
  reason: string;
  /** JSON evidence: balance read, spent, projected, calls counted, master address, time. */
  evidence: string;
  controller: string;
  master: string;
  at: string;
}

export function appendAudit(tx: ChainableCommander, entry: AuditEntry, maxLen: number): void {
  const fields = ['action', entry.action, 'account', entry.account, 'reason', entry.reason, 'evidence', entry.evidence, 'controller', entry.controller, 'master', entry.master, 'at', entry.at];
  tx.xadd(AUDIT_STREAM, 'MAXLEN', '~', String(maxLen), '*', ...fields);
}

/** The newest entries first, optionally for one account; scans at most `scan` entries. */
export async function readAudit(client: Redis, options: { account?: string; limit: number; scan?: number }): Promise<AuditEntry[]> {
  const raw = await client.xrevrange(AUDIT_STREAM, '+', '-', 'COUNT', options.scan ?? 10_000);
  const entries: AuditEntry[] = [];
  for (const [id, fields] of raw) {
    const map: Record<string, string> = {};
    for (let i = 0; i + 1 < fields.length; i += 2) map[fields[i]!] = fields[i + 1]!;
    if (options.account !== undefined && map.account !== options.account) continue;
    entries.push({
      id,
      action: map.action as AuditAction,
      account: map.account ?? '',
      reason: map.reason ?? '',
      evidence: map.evidence ?? '',
      controller: map.controller ?? '',
      master: map.master ?? '',
      at: map.at ?? '',
    });
    if (entries.length >= options.limit) break;
  }
  return entries;
}
