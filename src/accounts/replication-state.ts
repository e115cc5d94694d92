/**
 * What a replica says of its own replication, read from `ROLE` (every read: small and cheap) or
 * `INFO replication` (the periodic probe, which also tells the lag). A replica is an authority
 * only while it is a replica, linked to its master, and not in the middle of a sync: a freshly
 * started replica answers nil for keys that exist on the master until its sync ends.
 */
export interface ReplicationState {
  role: string;
  linkUp: boolean;
  syncInProgress: boolean;
  /** Seconds since the last byte from the master (-1 when never); INFO only. */
  masterSilenceS?: number;
}

function field(info: string, name: string): string | undefined {
  const at = info.indexOf(`\n${name}:`);
  const start = at === -1 ? (info.startsWith(`${name}:`) ? name.length + 1 : -1) : at + name.length + 2;
  if (start === -1) return undefined;
  const end = info.indexOf('\r', start);
  return info.slice(start, end === -1 ? undefined : end).trim();
}

export function parseReplicationInfo(info: string): ReplicationState {
  return {
    role: field(info, 'role') ?? 'unknown',
    linkUp: field(info, 'master_link_status') === 'up',
    syncInProgress: field(info, 'master_sync_in_progress') === '1',
    masterSilenceS: Number(field(info, 'master_last_io_seconds_ago') ?? -1),
  };
}

/**
 * ROLE's reply. On a replica: ['slave', master host, master port, state, offset], where state is
 * 'connected' once linked and synced, 'sync' while a sync runs, else connect/connecting/handshake.
 */
export function parseRoleReply(reply: unknown): ReplicationState {
  const [role, , , state] = Array.isArray(reply) ? (reply as unknown[]) : [];
  return { role: typeof role === 'string' ? role : 'unknown', linkUp: state === 'connected', syncInProgress: state === 'sync' };
}

/** Why a replica is not an authority right now, or undefined when it is one. */
export function notInSyncBecause(state: ReplicationState): string | undefined {
  if (state.role !== 'slave') return `role is ${state.role}, not replica`;
  if (state.syncInProgress) return 'sync in progress';
  if (!state.linkUp) return 'link to master down';
  return undefined;
}
