import { describe, expect, it } from 'vitest';
import { notInSyncBecause, parseReplicationInfo, parseRoleReply } from '../../src/accounts/replication-state.js';

const info = (lines: string[]) => `# Replication\r\n${lines.join('\r\n')}\r\n`;

describe('reading INFO replication', () => {
  it('a linked replica with no sync running is an authority', () => {
    const state = parseReplicationInfo(info(['role:slave', 'master_host:127.0.0.1', 'master_link_status:up', 'master_last_io_seconds_ago:1', 'master_sync_in_progress:0']));
    expect(state).toEqual({ role: "slave", linkUp: true, syncInProgress: false, masterSilenceS: 1 });
    expect(notInSyncBecause(state)).toBeUndefined();
  });

  it('a replica syncing from empty is not (the incident trap)', () => {
    const state = parseReplicationInfo(info(['role:slave', 'master_link_status:down', 'master_last_io_seconds_ago:-1', 'master_sync_in_progress:1']));
    expect(notInSyncBecause(state)).toBe('sync in progress');
  });

  it('a replica cut from its master is not', () => {
    expect(notInSyncBecause(parseReplicationInfo(info(['role:slave', 'master_link_status:down', 'master_sync_in_progress:0'])))).toBe('link to master down');
  });

  it('a master (or anything that is not a replica) is not: a restarted replica may come up as an empty master', () => {
    expect(notInSyncBecause(parseReplicationInfo(info(['role:master', 'connected_slaves:0'])))).toBe('role is master, not replica');
  });

  it('missing fields read as not in sync, never as in sync', () => {
    expect(notInSyncBecause(parseReplicationInfo(''))).toBeDefined();
    expect(notInSyncBecause(parseReplicationInfo('role:slave\r\n'))).toBe('link to master down');
  });

  describe('reading ROLE (every read carries one)', () => {
    it('a replica whose link is connected is an authority', () => {
      expect(notInSyncBecause(parseRoleReply(['slave', '127.0.0.1', 6379, 'connected', 1234]))).toBeUndefined();
    });
    it.each(['sync', 'connect', 'connecting', 'handshake'])('a replica in state %s is not', (state) => {
      expect(notInSyncBecause(parseRoleReply(['slave', '127.0.0.1', 6379, state, -1]))).toBeDefined();
    });
    it('a master, or a reply of another shape, is not', () => {
      expect(notInSyncBecause(parseRoleReply(['master', 10, []]))).toBe('role is master, not replica');
      expect(notInSyncBecause(parseRoleReply('garbage'))).toBeDefined();
      expect(notInSyncBecause(parseRoleReply(undefined))).toBeDefined();
    });
  });
});
