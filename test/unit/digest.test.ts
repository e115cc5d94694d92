import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  PROXY_DIGEST,
  UA_DIGEST,
  NONCE_FUTURE_SKEW_MS,
  challengeHeader,
  checkNonce,
  createNonce,
  digestHa1,
  digestResponse,
  parseAuthorization,
  parseAuthorizationList,
  selectCredentials,
  verifyDigest,
  type DigestCredentials,
} from '../../src/edge/digest.js';

const SECRET = 'edge-nonce-secret';
const T0 = 1_700_000_000_000;
const MAX_AGE = 30_000;
const REALM = 'edge.example.net';

/** What a UAC computes after our challenge: qop=auth, nc 1, its own cnonce. */
function uacCredentials(opts: {
  nonce: string;
  password?: string;
  realm?: string;
  username?: string;
  method?: string;
  uri?: string;
  qop?: 'auth' | undefined;
}): DigestCredentials {
  const username = opts.username ?? 'acme';
  const realm = opts.realm ?? REALM;
  const uri = opts.uri ?? 'sip:+15551234567@edge.example.net';
  const qop = 'qop' in opts ? opts.qop : 'auth';
  const nc = qop ? '00000001' : undefined;
  const cnonce = qop ? 'f00dcafe' : undefined;
  const response = digestResponse({
    ha1: digestHa1(username, realm, opts.password ?? 'pa55word'),
    method: opts.method ?? 'INVITE',
    uri,
    nonce: opts.nonce,
    qop,
    nc,
    cnonce,
  });
  return {
    username,
    realm,
    nonce: opts.nonce,
    uri,
    response,
    algorithm: 'MD5',
    ...(qop ? { qop, nc: nc!, cnonce: cnonce! } : {}),
  };
}

const verify = (credentials: DigestCredentials, over: { password?: string; nowMs?: number; method?: string } = {}) =>
  verifyDigest({
    credentials,
    method: over.method ?? 'INVITE',
    password: over.password ?? 'pa55word',
    realm: REALM,
    secret: SECRET,
    nowMs: over.nowMs ?? T0 + 1000,
    maxNonceAgeMs: MAX_AGE,
  });

describe('digest response computation', () => {
  // RFC 2617 section 3.5. Checked independently with coreutils:
  //   printf 'Mufasa:testrealm@host.com:Circle Of Life' | md5sum  -> 939e7578ed9e3c518a452acee763bce9
  //   printf 'GET:/dir/index.html' | md5sum                       -> 39aff3a2bab6126f332b942af96d3366
  //   printf '939e...:dcd98b...:00000001:0a4f113b:auth:39af...' | md5sum -> 6629fae49393a05397450978507c4ef1
  it('reproduces the RFC 2617 section 3.5 example (qop=auth)', () => {
    const ha1 = digestHa1('Mufasa', 'testrealm@host.com', 'Circle Of Life');
    expect(ha1).toBe('939e7578ed9e3c518a452acee763bce9');
    expect(
      digestResponse({
        ha1,
        method: 'GET',
        uri: '/dir/index.html',
        nonce: 'dcd98b7102dd2f0e8b11d0f600bfb0c093',
        qop: 'auth',
        nc: '00000001',
        cnonce: '0a4f113b',
      }),
    ).toBe('6629fae49393a05397450978507c4ef1');
  });

  it('computes RFC 2069 responses (no qop) as MD5(HA1:nonce:HA2)', () => {
    // printf '939e...:dcd98b7102dd2f0e8b11d0f600bfb0c093:39aff3a2bab6126f332b942af96d3366' | md5sum
    expect(
      digestResponse({
        ha1: '939e7578ed9e3c518a452acee763bce9',
        method: 'GET',
        uri: '/dir/index.html',
        nonce: 'dcd98b7102dd2f0e8b11d0f600bfb0c093',
      }),
    ).toBe('670fd8c2df070c60b045671b8b24ff02');
  });
});

describe('stateless nonces', () => {
  it('are valid while young, stale once older than the maximum age', () => {
    const nonce = createNonce(SECRET, T0);
    expect(checkNonce(nonce, SECRET, T0, MAX_AGE)).toBe('valid');
    expect(checkNonce(nonce, SECRET, T0 + MAX_AGE, MAX_AGE)).toBe('valid');
    expect(checkNonce(nonce, SECRET, T0 + MAX_AGE + 1, MAX_AGE)).toBe('stale');
    expect(checkNonce(nonce, SECRET, T0 + 86_400_000, MAX_AGE)).toBe('stale');
  });

  it('carry their creation time and an HMAC, so any edge with the secret can check them', () => {
    expect(createNonce(SECRET, T0)).toMatch(/^[0-9a-f]+\.[0-9a-f]{32}$/);
    expect(createNonce(SECRET, T0)).toBe(createNonce(SECRET, T0));
    expect(createNonce(SECRET, T0)).not.toBe(createNonce(SECRET, T0 + 1));
  });

  it('are invalid when signed with another secret', () => {
    expect(checkNonce(createNonce('other-secret', T0), SECRET, T0, MAX_AGE)).toBe('invalid');
  });

  it('are invalid when the timestamp is moved (to make an old nonce young) or the MAC altered', () => {
    const nonce = createNonce(SECRET, T0);
    const [ts, mac] = nonce.split('.') as [string, string];
    const younger = `${(T0 + 60_000).toString(16)}.${mac}`;
    expect(checkNonce(younger, SECRET, T0 + 60_000, MAX_AGE)).toBe('invalid');
    const flipped = `${ts}.${mac.slice(0, -1)}${mac.endsWith('0') ? '1' : '0'}`;
    expect(checkNonce(flipped, SECRET, T0, MAX_AGE)).toBe('invalid');
    expect(checkNonce(`0${nonce}`, SECRET, T0, MAX_AGE)).toBe('invalid');
    expect(checkNonce(nonce.toUpperCase(), SECRET, T0, MAX_AGE)).toBe('invalid');
  });

  it('are invalid when malformed', () => {
    for (const bad of ['', '.', 'abc', 'dcd98b7102dd2f0e8b11d0f600bfb0c093', `${'f'.repeat(14)}.${'0'.repeat(32)}`, 'x.y.z']) {
      expect(checkNonce(bad, SECRET, T0, MAX_AGE), bad).toBe('invalid');
    }
  });

  it('are invalid when dated further in the future than the allowed clock skew', () => {
    expect(checkNonce(createNonce(SECRET, T0 + NONCE_FUTURE_SKEW_MS), SECRET, T0, MAX_AGE)).toBe('valid');
    expect(checkNonce(createNonce(SECRET, T0 + NONCE_FUTURE_SKEW_MS + 1), SECRET, T0, MAX_AGE)).toBe('invalid');
  });

  it('can be bound to a context such as the source address', () => {
    const nonce = createNonce(SECRET, T0, '192.0.2.10:5060');
    expect(checkNonce(nonce, SECRET, T0, MAX_AGE, '192.0.2.10:5060')).toBe('valid');
    expect(checkNonce(nonce, SECRET, T0, MAX_AGE, '198.51.100.7:5060')).toBe('invalid');
    expect(checkNonce(nonce, SECRET, T0, MAX_AGE)).toBe('invalid');
  });

  it('survive a secret rotation: created with the first secret, accepted with any', () => {
    const old = createNonce('old-secret', T0);
    expect(checkNonce(old, ['new-secret', 'old-secret'], T0, MAX_AGE)).toBe('valid');
    expect(checkNonce(createNonce(['new-secret', 'old-secret'], T0), 'new-secret', T0, MAX_AGE)).toBe('valid');
  });

  it('refuse an empty secret or a bad time loudly (configuration errors, not request errors)', () => {
    expect(() => createNonce('', T0)).toThrow(RangeError);
    expect(() => createNonce([], T0)).toThrow(RangeError);
    expect(() => checkNonce('a.b', '', T0, MAX_AGE)).toThrow(RangeError);
    expect(() => createNonce(SECRET, Number.NaN)).toThrow(RangeError);
  });
});

describe('challenge header', () => {
  it('offers MD5 with qop=auth for our realm and nonce', () => {
    expect(challengeHeader({ realm: REALM, nonce: 'n1' })).toBe(
      'Digest realm="edge.example.net", nonce="n1", algorithm=MD5, qop="auth"',
    );
  });

  it('says stale=true when asked', () => {
    expect(challengeHeader({ realm: REALM, nonce: 'n1', stale: true })).toBe(
      'Digest realm="edge.example.net", nonce="n1", algorithm=MD5, qop="auth", stale=true',
    );
    expect(challengeHeader({ realm: REALM, nonce: 'n1', stale: false })).not.toContain('stale');
  });

  it('escapes quotes and backslashes and drops line breaks, so a realm cannot break the header', () => {
    const h = challengeHeader({ realm: 'a "b" \\ c\r\nX-Evil: 1', nonce: 'n' });
    expect(h).toBe('Digest realm="a \\"b\\" \\\\ cX-Evil: 1", nonce="n", algorithm=MD5, qop="auth"');
  });

  it('names the headers for a proxy (407) and for a user agent (401)', () => {
    expect(PROXY_DIGEST).toMatchObject({ status: 407, challengeHeader: 'Proxy-Authenticate', credentialsHeader: 'Proxy-Authorization' });
    expect(UA_DIGEST).toMatchObject({ status: 401, challengeHeader: 'WWW-Authenticate', credentialsHeader: 'Authorization' });
  });
});

describe('parsing credentials', () => {
  const RFC_EXAMPLE =
    'Digest username="Mufasa",\r\n realm="testrealm@host.com",\r\n nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",\r\n' +
    ' uri="/dir/index.html",\r\n qop=auth,\r\n nc=00000001,\r\n cnonce="0a4f113b",\r\n' +
    ' response="6629fae49393a05397450978507c4ef1",\r\n opaque="5ccc069c403ebaf9f0171e9517f40e41"';

  it('reads every parameter of the RFC 2617 example, folded lines included', () => {
    expect(parseAuthorization(RFC_EXAMPLE)).toEqual({
      username: 'Mufasa',
      realm: 'testrealm@host.com',
      nonce: 'dcd98b7102dd2f0e8b11d0f600bfb0c093',
      uri: '/dir/index.html',
      qop: 'auth',
      nc: '00000001',
      cnonce: '0a4f113b',
      response: '6629fae49393a05397450978507c4ef1',
      opaque: '5ccc069c403ebaf9f0171e9517f40e41',
    });
  });

  it('matches the scheme and parameter names case-insensitively, keeping values as sent', () => {
    const c = parseAuthorization('digest USERNAME="Bob", Realm="R", Nonce="N", URI="sip:x@y", Response="ABC", Algorithm=md5');
    expect(c).toEqual({ username: 'Bob', realm: 'R', nonce: 'N', uri: 'sip:x@y', response: 'ABC', algorithm: 'md5' });
  });

  it('keeps commas, spaces, "=" and escaped quotes inside quoted strings', () => {
    const c = parseAuthorization(
      'Digest username="a, b = c", realm="x\\"y\\\\z", nonce="n", uri="sip:u@h;transport=tcp", response="r"',
    );
    expect(c?.username).toBe('a, b = c');
    expect(c?.realm).toBe('x"y\\z');
    expect(c?.uri).toBe('sip:u@h;transport=tcp');
  });

  it('tolerates spacing around "=" and commas, and a quoted qop', () => {
    const c = parseAuthorization('  Digest   username = "u" ,realm="r",nonce="n" ,  uri="/", response="x", qop="auth", nc=00000001 ,cnonce="c"  ');
    expect(c).toMatchObject({ username: 'u', realm: 'r', qop: 'auth', nc: '00000001', cnonce: 'c' });
  });

  it('is undefined for other schemes, missing required parameters, repeated parameters and garbage', () => {
    const cases: unknown[] = [
      undefined,
      null,
      42,
      '',
      '   ',
      'Digest',
      'Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==',
      'Bearer abc.def.ghi',
      'Digest username="u", realm="r", nonce="n", uri="/"', // no response
      'Digest username="u", realm="r", realm="evil", nonce="n", uri="/", response="x"', // repeated realm
      'Digest username="u, realm="r", nonce="n", uri="/", response="x', // unterminated quote
      'Digest username="u" realm="r" nonce="n" uri="/" response="x"', // no commas
      'Digest username=, realm="r", nonce="n", uri="/", response="x"',
      'Digest username="u", realm="r", nonce="n", uri="/", response="x"\\',
      '"Digest" username="u"',
      'Digest username="u", realm="r", nonce="n", uri="/", response="x", ;;;',
      `Digest username="${'a'.repeat(10_000)}", realm="r", nonce="n", uri="/", response="x"`,
      'Digest username="u\\',
      '\u0000\u0001\uffff',
    ];
    for (const value of cases) expect(parseAuthorization(value), String(value).slice(0, 80)).toBeUndefined();
  });

  it('finds each credential when a stack folds several Proxy-Authorization headers into one value', () => {
    const folded =
      'Digest username="a", realm="other-proxy", nonce="n1", uri="/", response="r1", ' +
      'Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==, ' +
      'Digest username="b", realm="edge.example.net", nonce="n2", uri="/", response="r2"';
    expect(parseAuthorizationList(folded).map((c) => c.realm)).toEqual(['other-proxy', 'edge.example.net']);
    expect(selectCredentials(folded, REALM)?.username).toBe('b');
    expect(selectCredentials([folded.split(', Basic')[0]!], REALM)?.realm).toBe('other-proxy');
    expect(selectCredentials(undefined, REALM)).toBeUndefined();
    expect(selectCredentials(['garbage', 'Basic abc'], REALM)).toBeUndefined();
  });

  it('never throws, whatever the input (property)', () => {
    const alphabet = fc.constantFrom(...'Digest usernam=",\\ \t\r\n rlm nonce uri response qop auth nc cnonce, Basic =='.split(''));
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: alphabet, maxLength: 200 })), (s) => {
        expect(() => parseAuthorizationList(s)).not.toThrow();
        expect(() => parseAuthorizationList(`Digest ${s}`)).not.toThrow();
      }),
      { numRuns: 2000 },
    );
  });

  it('reads back what a UAC would write for any parameter values (property)', () => {
    const text = fc.string({ minLength: 0, maxLength: 30 });
    fc.assert(
      fc.property(text, text, text, text, (username, realm, uri, cnonce) => {
        const q = (v: string) => `"${v.replace(/(["\\])/g, '\\$1')}"`;
        const value = `Digest username=${q(username)}, realm=${q(realm)}, nonce="n", uri=${q(uri)}, response="r", qop=auth, nc=00000001, cnonce=${q(cnonce)}`;
        expect(parseAuthorization(value)).toEqual({ username, realm, nonce: 'n', uri, response: 'r', qop: 'auth', nc: '00000001', cnonce });
      }),
    );
  });
});

describe('verifying credentials', () => {
  const nonce = createNonce(SECRET, T0);

  it('accepts the right password with qop=auth', () => {
    expect(verify(uacCredentials({ nonce }))).toBe('ok');
  });

  it('accepts an RFC 2069 response (no qop) from an old UAC', () => {
    expect(verify(uacCredentials({ nonce, qop: undefined }))).toBe('ok');
  });

  it('accepts an upper-case hex response, and a stored HA1 instead of the password', () => {
    const c = uacCredentials({ nonce });
    expect(verify({ ...c, response: c.response.toUpperCase() })).toBe('ok');
    expect(
      verifyDigest({
        credentials: c,
        method: 'INVITE',
        ha1: digestHa1('acme', REALM, 'pa55word'),
        realm: REALM,
        secret: SECRET,
        nowMs: T0,
        maxNonceAgeMs: MAX_AGE,
      }),
    ).toBe('ok');
  });

  it('round-trips through the header text: challenge, UAC answer, parse, verify', () => {
    const challenge = challengeHeader({ realm: REALM, nonce });
    const offered = parseAuthorization(challenge.replace('Digest', 'Digest username="x", uri="/", response="y",'));
    expect(offered?.nonce).toBe(nonce);
    const c = uacCredentials({ nonce: offered!.nonce, realm: offered!.realm });
    const header =
      `Digest username="${c.username}", realm="${c.realm}", nonce="${c.nonce}", uri="${c.uri}", ` +
      `response="${c.response}", algorithm=MD5, qop=auth, nc=${c.nc}, cnonce="${c.cnonce}"`;
    expect(verify(parseAuthorization(header)!)).toBe('ok');
  });

  it('is bad-response for a wrong password', () => {
    expect(verify(uacCredentials({ nonce, password: 'guess' }))).toBe('bad-response');
  });

  it('is bad-response when the method or any signed field was changed in transit', () => {
    const c = uacCredentials({ nonce });
    expect(verify(c, { method: 'BYE' })).toBe('bad-response');
    expect(verify({ ...c, uri: 'sip:+15559999999@edge.example.net' })).toBe('bad-response');
    expect(verify({ ...c, username: 'other' })).toBe('bad-response');
    expect(verify({ ...c, nc: '00000002' })).toBe('bad-response');
    expect(verify({ ...c, cnonce: 'other' })).toBe('bad-response');
  });

  it('is bad-response for what we do not offer: other algorithms, auth-int, qop without nc/cnonce, non-hex responses', () => {
    const c = uacCredentials({ nonce });
    expect(verify({ ...c, algorithm: 'SHA-256' })).toBe('bad-response');
    expect(verify({ ...c, algorithm: 'MD5-sess' })).toBe('bad-response');
    expect(verify({ ...c, qop: 'auth-int' })).toBe('bad-response');
    const { nc: _nc, ...noNc } = c;
    expect(verify(noNc)).toBe('bad-response');
    expect(verify({ ...c, nc: 'zz' })).toBe('bad-response');
    expect(verify({ ...c, cnonce: '' })).toBe('bad-response');
    expect(verify({ ...c, response: 'not-hex' })).toBe('bad-response');
    expect(verify({ ...c, response: `${c.response}00` })).toBe('bad-response');
    expect(verify({ ...c, algorithm: 'md5' })).toBe('ok');
  });

  it('is wrong-realm for credentials made for another realm, whatever else they hold', () => {
    expect(verify(uacCredentials({ nonce, realm: 'other.example.org' }))).toBe('wrong-realm');
  });

  it('is bad-nonce for a nonce we did not make or one that was tampered with', () => {
    expect(verify(uacCredentials({ nonce: 'dcd98b7102dd2f0e8b11d0f600bfb0c093' }))).toBe('bad-nonce');
    expect(verify(uacCredentials({ nonce: createNonce('someone-else', T0) }))).toBe('bad-nonce');
    const forged = `${(T0 + 500).toString(16)}.${nonce.split('.')[1]}`;
    expect(verify(uacCredentials({ nonce: forged }))).toBe('bad-nonce');
  });

  it('is stale-nonce for an old nonce with the right password, so the UAC can retry silently', () => {
    expect(verify(uacCredentials({ nonce }), { nowMs: T0 + MAX_AGE + 1 })).toBe('stale-nonce');
  });

  it('is bad-response, not stale-nonce, for an old nonce with the wrong password (RFC 2617 3.2.1)', () => {
    expect(verify(uacCredentials({ nonce, password: 'guess' }), { nowMs: T0 + MAX_AGE + 1 })).toBe('bad-response');
  });

  it('honours the nonce context', () => {
    const bound = createNonce(SECRET, T0, '192.0.2.10');
    const c = uacCredentials({ nonce: bound });
    const base = { credentials: c, method: 'INVITE', password: 'pa55word', realm: REALM, secret: SECRET, nowMs: T0, maxNonceAgeMs: MAX_AGE };
    expect(verifyDigest({ ...base, nonceContext: '192.0.2.10' })).toBe('ok');
    expect(verifyDigest({ ...base, nonceContext: '198.51.100.1' })).toBe('bad-nonce');
  });
});
