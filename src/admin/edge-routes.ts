import { BadAccountValue, parseAccount, type Account } from '../accounts/account.js';
import type { Replica } from '../accounts/replica.js';
import { notInSyncBecause, parseReplicationInfo } from '../accounts/replication-state.js';
import type { Config } from '../config/schema.js';
import type { RunningEdge } from '../edge/start.js';
import { connectMaster } from './account-command.js';
import { acceptDeletions } from './dataset-command.js';
import type { AdminServer } from './server.js';
import { answerWithin } from '../redis/deadline.js';
import { ACCOUNT_ID_PATTERN, accountKey, DATASET_KEY } from '../redis/keys.js';

/**
 * The edge's own admin routes: readiness, replica health, one account as every source sees it.
 * Secrets (sip_password) never leave: they show as "[redacted]".
 */

const REPLICA_READ_TIMEOUT_MS = 500;
/** The Reason of the BYEs for a call an operator ends (Q.850 16: normal call clearing). */
export const OPERATOR_END_REASON = 'Q.850;cause=16;text="ended by operator"';
export const REDACTED = '[redacted]';
const SECRET_FIELDS = new Set(['sip_password']);

export function addEdgeRoutes(admin: AdminServer, edge: RunningEdge, config: () => Config): void {
  admin.route('GET', /^\/readyz$/, () => {
    const ready = edge.ready();
    return { status: ready ? 200 : 503, body: { ready, replicasInSync: edge.pool.replicas.filter((r) => r.inSync).length, cacheEntries: edge.cache.size } };
  });
  admin.route('GET', /^\/replicas$/, () => ({ status: 200, body: { replicas: replicasView(edge) } }));
  admin.route('GET', /^\/dataset$/, () => ({ status: 200, body: datasetView(edge) }));
  // The operator's word that the absences are real: this edge releases at once, and the marker on
  // the master (fenced, audited) carries it to every other edge.
  admin.route('POST', /^\/accept-deletions$/, async () => {
    edge.guard.acceptDeletions(Date.now(), 'admin api');
    let fleet: string;
    try {
      const master = await connectMaster(config());
      try {
        fleet = await acceptDeletions(master, 'admin api');
      } finally {
        await master.close();
      }
    } catch (err) {
      fleet = `only this edge released: ${(err as Error).message}`;
    }
    return { status: 200, body: { edge: 'mass-absence guard released', fleet, guard: edge.guard.state(Date.now()) } };
  });
  // An operator ends one call this edge carries (fraud, a stuck call): a BYE to each party.
  admin.route('POST', /^\/calls\/([^/]+)\/end$/, async ({ match }) => {
    const callId = decodeURIComponent(match[1]!);
    const outcome = await edge.app.endCall(callId, OPERATOR_END_REASON);
    if (!outcome) return { status: 404, body: { error: 'this edge carries no answered call with that Call-ID' } };
    return { status: outcome.ended ? 200 : 502, body: { callId, ...outcome } };
  });
  admin.route('GET', /^\/accounts\/([^/]+)$/, async ({ match }) => {
    const id = decodeURIComponent(match[1]!);
    if (!ACCOUNT_ID_PATTERN.test(id)) return { status: 400, body: { error: 'not an account id' } };
    return { status: 200, body: await accountView(edge, id) };
  });
}

export function replicasView(edge: RunningEdge) {
  return edge.pool.replicas.map((r) => ({
    name: r.name,
    address: `${r.address.host}:${r.address.port}`,
    health: r.health,
    detail: r.healthDetail,
    lagSeconds: r.masterSilenceS,
    dataset: edge.dataset.problemOf(r.name) ?? 'ok',
  }));
}

/** Which dataset this edge reads, each replica's dataset problem, and the mass-absence guard. */
export function datasetView(edge: RunningEdge) {
  return {
    id: edge.dataset.id ?? null,
    replicas: edge.pool.replicas.map((r) => ({ name: r.name, dataset: edge.dataset.problemOf(r.name) ?? 'ok' })),
    absenceGuard: edge.guard.state(Date.now()),
  };
}

/** The account as each replica and the stale cache see it, with calls in progress and the last decision. */
function lastDecisionView(edge: RunningEdge, id: string) {
  const last = edge.app.lastDecision(id);
  return last ? { ...last, at: new Date(last.at).toISOString() } : null;
}

export async function accountView(edge: RunningEdge, id: string) {
  const cached = edge.cache.recall(id, Date.now());
  return {
    id,
    replicas: await Promise.all(edge.pool.replicas.map((replica) => readReplica(replica, id))),
    cache: cached ? { replica: cached.replica, ageMs: Math.round(cached.ageMs), account: publicAccount(cached.account) } : null,
    callsInProgress: edge.calls.count(id),
    lastDecision: lastDecisionView(edge, id),
  };
}

/** One replica's view, read the way the edge reads (INFO replication and HGETALL in one round trip). */
async function readReplica(replica: Replica, id: string) {
  const base = { replica: replica.name, health: replica.health };
  try {
    const reply = await answerWithin(replica.client.multi().info('replication').hgetall(accountKey(id)).hget(DATASET_KEY, 'id').exec(), REPLICA_READ_TIMEOUT_MS);
    if (reply === 'late') throw new Error(`no answer within ${REPLICA_READ_TIMEOUT_MS} ms`);
    const [[infoError, info], [hashError, fields], [, dataset]] = reply as [[Error | null, string], [Error | null, Record<string, string>], [Error | null, string | null]];
    if (infoError || hashError) return { ...base, outcome: 'unknown', detail: (infoError ?? hashError)!.message };
    const notInSync = notInSyncBecause(parseReplicationInfo(info));
    const shown = redactFields(fields);
    if (notInSync) return { ...base, outcome: 'unknown', detail: notInSync, fields: shown };
    if (!dataset) return { ...base, outcome: 'unknown', detail: 'dataset-missing: no dataset marker on this replica', fields: shown };
    if (Object.keys(fields).length === 0) return { ...base, outcome: 'absent' };
    try {
      return { ...base, outcome: 'found', fields: shown, account: publicAccount(parseAccount(id, fields)) };
    } catch (err) {
      if (err instanceof BadAccountValue) return { ...base, outcome: 'unknown', detail: `bad-value: ${err.message}`, fields: shown };
      throw err;
    }
  } catch (err) {
    return { ...base, outcome: 'unknown', detail: (err as Error).message };
  }
}

export function redactFields(fields: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, SECRET_FIELDS.has(k) ? REDACTED : v]));
}

export function publicAccount(account: Account): Omit<Account, 'sipPassword'> & { sipPassword?: string } {
  const { sipPassword, ...rest } = account;
  return sipPassword === undefined ? rest : { ...rest, sipPassword: REDACTED };
}
