import { describe, expect, it } from 'vitest';
import { Identifier, type CallerView, type IdentifyOptions } from '../../src/edge/identify.js';

const base: IdentifyOptions = {
  order: ['source', 'header'],
  header: 'X-Account-Id',
  trustedSources: ['127.0.0.1/32', '10.9.0.0/16'],
  trunks: [
    { cidr: '192.0.2.0/24', account: 'trunk-a' },
    { cidr: '198.51.100.7', account: 'trunk-b' },
    { cidr: '2001:db8::/32', account: 'trunk-v6' },
  ],
};

function caller(sourceAddress: string, headers: Record<string, string> = {}): CallerView {
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  return { sourceAddress, header: (name) => lower[name.toLowerCase()] };
}

describe('identifying the account of an INVITE', () => {
  it('by source address: the trunk whose CIDR holds it (IPv4 and IPv6, single addresses too)', () => {
    const id = new Identifier(base);
    expect(id.identify(caller('192.0.2.77'))).toEqual({ kind: 'account', accountId: 'trunk-a', method: 'source' });
    expect(id.identify(caller('198.51.100.7'))).toEqual({ kind: 'account', accountId: 'trunk-b', method: 'source' });
    expect(id.identify(caller('2001:db8::5'))).toEqual({ kind: 'account', accountId: 'trunk-v6', method: 'source' });
    expect(id.identify(caller('198.51.100.8'))).toEqual({ kind: 'none' });
  });

  it('by the trusted header, only from trusted sources', () => {
    const id = new Identifier(base);
    expect(id.identify(caller('127.0.0.1', { 'X-Account-Id': 'acct-ok' }))).toEqual({ kind: 'account', accountId: 'acct-ok', method: 'header' });
    expect(id.identify(caller('10.9.3.4', { 'x-account-id': ' acct-ok ' }))).toMatchObject({ accountId: 'acct-ok' });
    expect(id.identify(caller('203.0.113.5', { 'X-Account-Id': 'acct-ok' }))).toEqual({ kind: 'none' });
  });

  it('ignores a header value that cannot be an account id', () => {
    const id = new Identifier(base);
    expect(id.identify(caller('127.0.0.1', { 'X-Account-Id': 'a b' }))).toEqual({ kind: 'none' });
    expect(id.identify(caller('127.0.0.1', { 'X-Account-Id': '' }))).toEqual({ kind: 'none' });
  });

  it('tries the methods in the configured order', () => {
    const headerFirst = new Identifier({ ...base, order: ['header', 'source'], trustedSources: ['192.0.2.0/24'] });
    expect(headerFirst.identify(caller('192.0.2.1', { 'X-Account-Id': 'acct-x' }))).toMatchObject({ accountId: 'acct-x', method: 'header' });
    const sourceFirst = new Identifier({ ...base, trustedSources: ['192.0.2.0/24'] });
    expect(sourceFirst.identify(caller('192.0.2.1', { 'X-Account-Id': 'acct-x' }))).toMatchObject({ accountId: 'trunk-a', method: 'source' });
  });

  it('with digest configured: credentials name the account, and no match at all asks for them', () => {
    const id = new Identifier({ ...base, order: ['source', 'digest'] });
    const authorization = 'Digest username="acct-9", realm="credit-edge", nonce="n", uri="sip:x", response="r"';
    expect(id.identify(caller('203.0.113.5', { 'Proxy-Authorization': authorization }))).toEqual({
      kind: 'credentials',
      accountId: 'acct-9',
      credentials: { username: 'acct-9', realm: 'credit-edge', nonce: 'n', uri: 'sip:x', response: 'r' },
    });
    expect(id.identify(caller('203.0.113.5'))).toEqual({ kind: 'challenge' });
    expect(id.identify(caller('192.0.2.1'))).toMatchObject({ kind: 'account', accountId: 'trunk-a' });
  });

  it('never throws on a source that is not an address', () => {
    expect(new Identifier(base).identify(caller('not-an-ip', { 'X-Account-Id': 'acct-ok' }))).toEqual({ kind: 'none' });
  });

  it('gives the same verdicts for an address seen before, also once more addresses than it remembers have been seen', () => {
    const id = new Identifier(base);
    const verdicts = () => [
      id.identify(caller('192.0.2.77')),
      id.identify(caller('127.0.0.1', { 'X-Account-Id': 'acct-ok' })),
      id.identify(caller('203.0.113.5', { 'X-Account-Id': 'acct-ok' })),
    ];
    const first = verdicts();
    expect(first).toEqual([{ kind: 'account', accountId: 'trunk-a', method: 'source' }, { kind: 'account', accountId: 'acct-ok', method: 'header' }, { kind: 'none' }]);
    expect(verdicts()).toEqual(first);
    // A flood of other sources (more than the 4096 remembered): none of them is let in, and the first ones keep their verdicts.
    for (let i = 0; i < 5000; i++) expect(id.identify(caller(`203.0.${Math.floor(i / 256)}.${i % 256}`, { 'X-Account-Id': 'acct-ok' }))).toEqual({ kind: 'none' });
    expect(verdicts()).toEqual(first);
  });

  it('refuses a bad CIDR in its configuration', () => {
    expect(() => new Identifier({ ...base, trunks: [{ cidr: 'example.com/24', account: 'x' }] })).toThrow(/not an IP address/);
  });
});
