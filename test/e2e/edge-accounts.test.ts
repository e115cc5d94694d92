import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { assertSippRan, edgeUnderTest, finalsReceived, type EdgeUnderTest } from '../helpers/edge-under-test.js';
import { runSipp, stopAllSipp } from '../helpers/sipp.js';
import { accountKey } from '../../src/redis/keys.js';

/**
 * The demo accounts, called through the edge with SIPp over real sockets, each answer checked on
 * the wire: status, reason phrase, Reason header, Retry-After; a completed call for acct-ok.
 */

let edge: EdgeUnderTest;

beforeAll(async () => {
  edge = await edgeUnderTest({
    seed: { 'acct-digest': { enabled: true, balance: 10, sip_password: 'digest-pass-1' } },
    config: (generated) => ({ ...generated, identify: { order: ['source', 'header', 'digest'] } }),
  });
});
// Not stopAllSipp() after each test: it would stop the carrier too. Each runSipp ends by itself.
afterAll(async () => {
  await edge?.stop();
  await stopAllSipp();
});

/**
 * Freezes both replicas and waits until the edge has noticed (a probe timed out): until then its
 * local copy, warmed with every account, may still decide, as it may for one probe interval.
 */
async function replicasDown(): Promise<void> {
  for (const replica of edge.topology.replicas) replica.freeze();
  await vi.waitFor(() => expect(edge.path.edge.pool.replicas.some((r) => r.inSync)).toBe(false), { timeout: 5000 });
}

/**
 * An account the edge has never read, neither for a call nor in its warm-up: provisioned on the
 * master while the replicas are down (they get it once thawed).
 */
async function provisionedUnseen(id: string, fields: Record<string, string>): Promise<void> {
  await edge.topology.master.client.hset(accountKey(id), fields);
}

describe('each demo account gets its answer on the wire', () => {
  it('acct-ok: the call is routed to the carrier and completes (INVITE/180/200/ACK/BYE)', async () => {
    const r = await edge.call('acct-ok');
    assertSippRan(r, 'acct-ok');
    expect(finalsReceived(r).map((m) => m.status)).toEqual([200]);
    expect(r.messages.some((m) => m.direction === 'received' && m.status === 180)).toBe(true);
    expect(r.messages.some((m) => m.direction === 'sent' && m.method === 'BYE')).toBe(true);
  });

  it.each([
    ['acct-disabled', 403, 'Account Not Enabled', 'Q.850;cause=21;text="account not enabled"'],
    ['acct-nocredit', 403, 'Out Of Call Credit', 'Q.850;cause=52;text="out of call credit"'],
    ['acct-full', 403, 'Channel Limit Reached', 'Q.850;cause=34;text="channel limit reached"'],
    ['acct-missing', 403, 'Forbidden', 'Q.850;cause=21;text="no such account"'],
  ])('%s: %i %s with Reason %s, no Retry-After', async (account, status, phrase, reason) => {
    const r = await edge.call(account);
    assertSippRan(r, account);
    const [final] = finalsReceived(r);
    expect(final).toMatchObject({ status, reason: phrase });
    expect(final!.headers.reason).toEqual([reason]);
    expect(final!.headers['retry-after']).toBeUndefined();
  });

  it('an INVITE naming no account, from an untrusted path, is challenged (digest is configured)', async () => {
    const r = await runSipp({ scenario: 'uac-expect-final', vars: { CODE: '407' }, remote: edge.path.sipTarget, service: 'callee' });
    assertSippRan(r, 'no account');
    expect(finalsReceived(r)[0]!.headers['proxy-authenticate']?.[0]).toMatch(/^Digest realm="credit-edge", nonce="[^"]+", algorithm=MD5, qop="auth"$/);
  });
});

describe('digest authentication', () => {
  const digestCall = (account: string, password: string, final: string) =>
    runSipp({ scenario: 'uac-auth', vars: { FINAL: final }, auth: { username: account, password }, remote: edge.path.sipTarget, service: 'callee' });

  it('a good answer to the challenge routes the call', async () => {
    const r = await digestCall('acct-digest', 'digest-pass-1', '200');
    assertSippRan(r, 'good digest');
    expect(finalsReceived(r).map((m) => m.status)).toEqual([407, 200]);
  });

  it('a wrong password is refused with 403', async () => {
    const r = await digestCall('acct-digest', 'not-the-password', '403');
    assertSippRan(r, 'bad digest');
    expect(finalsReceived(r).at(-1)).toMatchObject({ status: 403, reason: 'Forbidden' });
    expect(finalsReceived(r).at(-1)!.headers.reason?.[0]).toMatch(/cause=21;text="bad credentials: bad-response"/);
  });

  it('a password that cannot be read (replicas down, never cached) gives 503, never 403', async () => {
    await replicasDown();
    try {
      await provisionedUnseen('acct-digest-cold', { enabled: '1', balance: '10', sip_password: 'digest-pass-2' });
      const r = await digestCall('acct-digest-cold', 'digest-pass-2', '503');
      assertSippRan(r, 'digest, replicas down');
      expect(finalsReceived(r).at(-1)).toMatchObject({ status: 503, reason: 'Service Unavailable' });
    } finally {
      for (const replica of edge.topology.replicas) replica.thaw();
    }
    await edge.path.edge.pool.waitInSync(2);
  });
});

describe('when the edge cannot know', () => {
  it('both replicas down and the account never cached: 503 with Retry-After and a Reason naming the cause', async () => {
    await replicasDown();
    try {
      await provisionedUnseen('acct-cold', { enabled: '1', balance: '10' });
      const r = await edge.call('acct-cold');
      assertSippRan(r, 'acct-cold');
      const [final] = finalsReceived(r);
      expect(final).toMatchObject({ status: 503, reason: 'Service Unavailable' });
      expect(final!.headers['retry-after']).toEqual(['5']);
      expect(final!.headers.reason?.[0]).toMatch(/^Q\.850;cause=41;text="account state unknown: (timeout|no-healthy-replica)"$/);
    } finally {
      for (const replica of edge.topology.replicas) replica.thaw();
    }
    await edge.path.edge.pool.waitInSync(2);
  });

  it('both replicas down and the account cached: the call is routed from the cached copy', async () => {
    assertSippRan(await edge.call('acct-ok'), 'warm the cache');
    for (const replica of edge.topology.replicas) replica.freeze();
    try {
      const r = await edge.call('acct-ok');
      assertSippRan(r, 'acct-ok from cache');
      expect(finalsReceived(r).map((m) => m.status)).toEqual([200]);
    } finally {
      for (const replica of edge.topology.replicas) replica.thaw();
    }
    await edge.path.edge.pool.waitInSync(2);
  });
});
