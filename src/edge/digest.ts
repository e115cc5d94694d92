import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/**
 * SIP digest authentication (RFC 3261 section 22, RFC 2617 / RFC 7616 with MD5 and qop=auth, and
 * RFC 2069 responses without qop from old UACs). Pure: no I/O, no clock, no state; node:crypto only.
 *
 * Nonces are stateless: a nonce carries its creation time and an HMAC over it (and over an optional
 * context string, e.g. the caller's source address), so any edge holding the secret can check it
 * and none keeps per-call state. The price of statelessness: a nonce (and a response computed with
 * it) can be replayed until it is `maxAgeMs` old, because nonce counts are not tracked. Keep the
 * maximum age short (tens of seconds) and bind the nonce to the source address when that is stable.
 *
 * Flow at the edge: an INVITE without credentials for our realm gets
 * `challenge.status` + `challenge.challengeHeader: challengeHeader({realm, nonce: createNonce(...)})`;
 * one with credentials is checked with `verifyDigest`; 'stale-nonce' is answered with a fresh
 * challenge carrying `stale: true` (the UAC retries without re-prompting for the password), any
 * other failure with a fresh challenge (or 403 after repeated failures, the caller's choice).
 */

/** Where the challenge and the credentials travel: a proxy (407) or a user agent (401). */
export interface DigestHeaderNames {
  status: 401 | 407;
  reason: string;
  /** The response header carrying the challenge. */
  challengeHeader: string;
  /** The request header carrying the credentials. */
  credentialsHeader: string;
}

/** The edge as a proxy: 407 + Proxy-Authenticate, credentials in Proxy-Authorization (default). */
export const PROXY_DIGEST: Readonly<DigestHeaderNames> = Object.freeze({
  status: 407,
  reason: 'Proxy Authentication Required',
  challengeHeader: 'Proxy-Authenticate',
  credentialsHeader: 'Proxy-Authorization',
});

/** The edge as a user agent (registrar-less): 401 + WWW-Authenticate, credentials in Authorization. */
export const UA_DIGEST: Readonly<DigestHeaderNames> = Object.freeze({
  status: 401,
  reason: 'Unauthorized',
  challengeHeader: 'WWW-Authenticate',
  credentialsHeader: 'Authorization',
});

// ---------------------------------------------------------------------------------------------
// Nonces

/**
 * An HMAC key, or several during a rotation: nonces are created with the first and accepted when
 * any of them signed it.
 */
export type NonceSecret = string | Buffer | readonly (string | Buffer)[];

export type NonceCheck = 'valid' | 'stale' | 'invalid';

/**
 * How far in the future a nonce's timestamp may be and still count (edges sharing a secret may
 * disagree a little about the time). Further ahead means forged or a clock gone wrong: 'invalid'.
 */
export const NONCE_FUTURE_SKEW_MS = 10_000;

const NONCE_RE = /^([0-9a-f]{1,13})\.([0-9a-f]{32})$/;

function secretList(secret: NonceSecret): (string | Buffer)[] {
  const list = typeof secret === 'string' || Buffer.isBuffer(secret) ? [secret] : [...secret];
  if (list.length === 0 || list.some((s) => s.length === 0)) {
    throw new RangeError('digest nonce secret must be non-empty');
  }
  return list;
}

function nonceMac(secret: string | Buffer, tsHex: string, context: string): Buffer {
  // 128 bits of HMAC-SHA256 are plenty for a short-lived nonce.
  return createHmac('sha256', secret).update(`${tsHex}:${context}`).digest().subarray(0, 16);
}

/**
 * A stateless nonce: `<creation time, ms, hex>.<HMAC-SHA256/128 over time and context, hex>`.
 * `context` (default '') binds the nonce to something the request must repeat, such as the
 * source address; checkNonce must then be given the same context.
 */
export function createNonce(secret: NonceSecret, nowMs: number, context = ''): string {
  if (!Number.isSafeInteger(nowMs) || nowMs < 0) throw new RangeError(`createNonce: bad time ${nowMs}`);
  const first = secretList(secret)[0]!;
  const tsHex = nowMs.toString(16);
  return `${tsHex}.${nonceMac(first, tsHex, context).toString('hex')}`;
}

/**
 * 'valid' when one of our secrets signed the nonce (for this context) and it is at most `maxAgeMs`
 * old; 'stale' when signed but older; 'invalid' for anything else (not ours, tampered, malformed,
 * from another context, or dated more than NONCE_FUTURE_SKEW_MS in the future).
 */
export function checkNonce(nonce: string, secret: NonceSecret, nowMs: number, maxAgeMs: number, context = ''): NonceCheck {
  const secrets = secretList(secret);
  if (typeof nonce !== 'string') return 'invalid';
  const m = NONCE_RE.exec(nonce);
  if (!m) return 'invalid';
  const tsHex = m[1]!;
  const mac = Buffer.from(m[2]!, 'hex');
  // Re-encode the time so that "0001a" and "1a" are not two spellings of one signed nonce.
  const ts = parseInt(tsHex, 16);
  if (!Number.isSafeInteger(ts) || ts.toString(16) !== tsHex) return 'invalid';
  const signed = secrets.some((s) => timingSafeEqual(nonceMac(s, tsHex, context), mac));
  if (!signed) return 'invalid';
  if (ts > nowMs + NONCE_FUTURE_SKEW_MS) return 'invalid';
  return nowMs - ts > maxAgeMs ? 'stale' : 'valid';
}

// ---------------------------------------------------------------------------------------------
// Challenge

export interface ChallengeOptions {
  realm: string;
  nonce: string;
  /** The previous credentials carried a stale nonce but were otherwise right. */
  stale?: boolean;
  opaque?: string;
}

function quote(value: string): string {
  // RFC 7230 quoted-string: backslash-escape '"' and '\'; CR/LF could split the header, drop them.
  return `"${value.replace(/[\r\n]/g, '').replace(/(["\\])/g, '\\$1')}"`;
}

/** The value of a Proxy-Authenticate / WWW-Authenticate header offering MD5 with qop=auth. */
export function challengeHeader(opts: ChallengeOptions): string {
  const parts = [`Digest realm=${quote(opts.realm)}`, `nonce=${quote(opts.nonce)}`];
  if (opts.opaque !== undefined) parts.push(`opaque=${quote(opts.opaque)}`);
  parts.push('algorithm=MD5', 'qop="auth"');
  if (opts.stale) parts.push('stale=true');
  return parts.join(', ');
}

// ---------------------------------------------------------------------------------------------
// Credentials

/** The parameters of one Digest credential; names are matched case-insensitively. */
export interface DigestCredentials {
  username: string;
  realm: string;
  nonce: string;
  uri: string;
  response: string;
  qop?: string;
  nc?: string;
  cnonce?: string;
  algorithm?: string;
  opaque?: string;
}

const FIELDS = ['username', 'realm', 'nonce', 'uri', 'response', 'qop', 'nc', 'cnonce', 'algorithm', 'opaque'] as const;
const REQUIRED = ['username', 'realm', 'nonce', 'uri', 'response'] as const;

/** Longer header values are not credentials anyone sends: refused without parsing. */
export const MAX_CREDENTIALS_LENGTH = 8192;

// RFC 7230 tchar.
const TCHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;
const isWs = (c: string | undefined) => c === ' ' || c === '\t' || c === '\r' || c === '\n';

interface Challenge {
  scheme: string;
  params: Map<string, string>;
  /** A parameter name appeared twice: the credential is ambiguous and must be refused. */
  duplicate: boolean;
}

/**
 * Tokenizes `#( auth-scheme [ 1*SP #auth-param ] )` (RFC 7235), which covers one credential and
 * several folded into one value by a SIP stack. Returns undefined on a syntax error (unterminated
 * quote, stray characters). Non-Digest schemes with token68 payloads (Basic) are skipped over.
 */
function tokenize(input: string): Challenge[] | undefined {
  const s = input;
  let i = 0;
  const skipWs = () => {
    while (isWs(s[i])) i++;
  };
  const token = (): string => {
    const start = i;
    while (i < s.length && TCHAR.test(s[i]!)) i++;
    return s.slice(start, i);
  };
  const quoted = (): string | undefined => {
    // s[i] === '"'
    i++;
    let out = '';
    while (i < s.length) {
      const c = s[i]!;
      if (c === '"') {
        i++;
        return out;
      }
      if (c === '\\') {
        if (i + 1 >= s.length) return undefined;
        out += s[i + 1];
        i += 2;
        continue;
      }
      out += c;
      i++;
    }
    return undefined; // unterminated
  };
  /** At a list element: is it `token =` (a parameter) rather than the start of a new scheme? */
  const atParam = (): boolean => {
    const save = i;
    const name = token();
    skipWs();
    let isParam = name.length > 0 && s[i] === '=';
    if (isParam) {
      // `name=value`, not base64 padding ("QWxh==", "QWxhZA=" at the end of a token68).
      i++;
      skipWs();
      isParam = s[i] === '"' || (i < s.length && TCHAR.test(s[i]!) && s[i] !== '=');
    }
    i = save;
    return isParam;
  };

  const out: Challenge[] = [];
  skipWs();
  while (i < s.length) {
    while (s[i] === ',' || isWs(s[i])) i++;
    if (i >= s.length) break;
    const scheme = token();
    if (!scheme) return undefined;
    const current: Challenge = { scheme, params: new Map(), duplicate: false };
    out.push(current);
    if (i < s.length && !isWs(s[i]) && s[i] !== ',') return undefined;
    skipWs();
    // token68 (e.g. Basic's base64): a run of token68 characters not followed by '='-param syntax.
    if (i < s.length && s[i] !== ',' && !atParam()) {
      const m = /^[A-Za-z0-9\-._~+/]+=*/.exec(s.slice(i));
      if (!m) return undefined;
      i += m[0].length;
      skipWs();
      if (i < s.length && s[i] !== ',') return undefined;
      continue;
    }
    // #auth-param, until the end or a list element that is not a parameter (the next scheme).
    for (;;) {
      while (s[i] === ',' || isWs(s[i])) i++;
      if (i >= s.length || !atParam()) break;
      const name = token().toLowerCase();
      skipWs();
      i++; // '='
      skipWs();
      let value: string | undefined;
      if (s[i] === '"') value = quoted();
      else {
        value = token();
        if (!value) return undefined;
      }
      if (value === undefined) return undefined;
      if (current.params.has(name)) current.duplicate = true;
      current.params.set(name, value);
      skipWs();
      if (i < s.length && s[i] !== ',') return undefined;
    }
  }
  return out;
}

function toCredentials(c: Challenge): DigestCredentials | undefined {
  if (c.scheme.toLowerCase() !== 'digest' || c.duplicate) return undefined;
  for (const k of REQUIRED) if (c.params.get(k) === undefined) return undefined;
  const cred: Partial<Record<(typeof FIELDS)[number], string>> = {};
  for (const k of FIELDS) {
    const v = c.params.get(k);
    if (v !== undefined) cred[k] = v;
  }
  return cred as DigestCredentials;
}

/**
 * Every Digest credential in a header value (a SIP stack may fold repeated Proxy-Authorization
 * headers into one comma-separated value). Credentials missing a required parameter (username,
 * realm, nonce, uri, response) or repeating one are left out; other schemes are skipped. Never
 * throws: garbage yields [].
 */
export function parseAuthorizationList(value: unknown): DigestCredentials[] {
  if (typeof value !== 'string' || value.length > MAX_CREDENTIALS_LENGTH) return [];
  try {
    const list = tokenize(value);
    if (!list) return [];
    return list.map(toCredentials).filter((c): c is DigestCredentials => c !== undefined);
  } catch {
    return [];
  }
}

/**
 * The Digest credential in a Proxy-Authorization / Authorization value (the first, when several
 * are folded together), or undefined when there is none, it is malformed, or it lacks one of
 * username, realm, nonce, uri, response. Parameter names are case-insensitive; quoted values may
 * hold commas, spaces and backslash escapes. Never throws.
 */
export function parseAuthorization(value: unknown): DigestCredentials | undefined {
  return parseAuthorizationList(value)[0];
}

/**
 * The credential meant for `realm` among one or more header values, else the first Digest
 * credential (which verifyDigest will then report as 'wrong-realm'), else undefined.
 */
export function selectCredentials(values: string | readonly string[] | undefined, realm: string): DigestCredentials | undefined {
  const all = (typeof values === 'string' ? [values] : (values ?? [])).flatMap((v) => parseAuthorizationList(v));
  return all.find((c) => c.realm === realm) ?? all[0];
}

// ---------------------------------------------------------------------------------------------
// Responses

export function md5Hex(text: string): string {
  return createHash('md5').update(text, 'utf8').digest('hex');
}

/** HA1 = MD5(username:realm:password), what a credential store may keep instead of the password. */
export function digestHa1(username: string, realm: string, password: string): string {
  return md5Hex(`${username}:${realm}:${password}`);
}

export interface ResponseInput {
  ha1: string;
  method: string;
  uri: string;
  nonce: string;
  /** 'auth', or undefined for an RFC 2069 response. */
  qop?: string | undefined;
  nc?: string | undefined;
  cnonce?: string | undefined;
}

/**
 * The expected `response`: MD5(HA1:nonce:nc:cnonce:qop:HA2) with qop, MD5(HA1:nonce:HA2) without,
 * HA2 = MD5(method:uri). Lowercase hex.
 */
export function digestResponse(input: ResponseInput): string {
  const ha2 = md5Hex(`${input.method}:${input.uri}`);
  const ha1 = input.ha1.toLowerCase();
  if (input.qop === undefined) return md5Hex(`${ha1}:${input.nonce}:${ha2}`);
  return md5Hex(`${ha1}:${input.nonce}:${input.nc ?? ''}:${input.cnonce ?? ''}:${input.qop}:${ha2}`);
}

export type DigestVerdict = 'ok' | 'stale-nonce' | 'bad-nonce' | 'wrong-realm' | 'bad-response';

interface VerifyCommon {
  credentials: DigestCredentials;
  /** The request's method (INVITE): HA2 covers it. */
  method: string;
  /** Our realm; credentials for another realm are 'wrong-realm'. */
  realm: string;
  secret: NonceSecret;
  nowMs: number;
  maxNonceAgeMs: number;
  /** The context the nonce was created with (see createNonce). */
  nonceContext?: string;
}

/** The account's password, or its HA1 (digestHa1(username, realm, password)). */
export type VerifyInput = VerifyCommon & ({ password: string; ha1?: never } | { ha1: string; password?: never });

const HEX32 = /^[0-9a-f]{32}$/;
const NC_RE = /^[0-9a-f]{8}$/i;

/**
 * Checks one Digest credential:
 * - 'wrong-realm': made for another realm (another proxy's challenge, or a stale client config);
 * - 'bad-nonce': the nonce is not one of ours (forged, tampered, other context);
 * - 'bad-response': wrong password, or a credential we do not support (algorithm other than MD5,
 *   qop other than auth, qop=auth without a valid nc or cnonce, response not 32 hex digits);
 * - 'stale-nonce': our nonce, too old, but the response is right for it: re-challenge with
 *   stale=true and the UAC retries without asking for the password (RFC 2617 3.2.1);
 * - 'ok'.
 * The response is compared in constant time. A stale nonce with a wrong response is 'bad-response'.
 */
export function verifyDigest(input: VerifyInput): DigestVerdict {
  const c = input.credentials;
  if (c.realm !== input.realm) return 'wrong-realm';
  const nonce = checkNonce(c.nonce, input.secret, input.nowMs, input.maxNonceAgeMs, input.nonceContext ?? '');
  if (nonce === 'invalid') return 'bad-nonce';

  if (c.algorithm !== undefined && c.algorithm.toLowerCase() !== 'md5') return 'bad-response';
  let qop: string | undefined;
  if (c.qop !== undefined) {
    if (c.qop.toLowerCase() !== 'auth') return 'bad-response';
    if (c.nc === undefined || !NC_RE.test(c.nc) || c.cnonce === undefined || c.cnonce === '') return 'bad-response';
    qop = c.qop;
  }
  const given = c.response.toLowerCase();
  if (!HEX32.test(given)) return 'bad-response';

  const ha1 = input.ha1 ?? digestHa1(c.username, input.realm, input.password ?? '');
  const expected = digestResponse({ ha1, method: input.method, uri: c.uri, nonce: c.nonce, qop, nc: c.nc, cnonce: c.cnonce });
  if (!timingSafeEqual(Buffer.from(expected, 'ascii'), Buffer.from(given, 'ascii'))) return 'bad-response';
  return nonce === 'stale' ? 'stale-nonce' : 'ok';
}
