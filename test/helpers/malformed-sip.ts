import { randomBytes } from 'node:crypto';

/**
 * Invalid SIP messages in the spirit of RFC 4475 (SIP torture tests) section 3.1.2, plus the two
 * duplicate-header cases of section 3.3 (multi01, mcl01). The messages are written for these
 * tests, short, addressed to the server under test; each names the RFC case it stands for.
 *
 * `outcome` is what the embedded engine does with it: answer 400 (or 505 for an unknown SIP
 * version) with a Warning, drop it (a response, or no readable request line or top Via), or
 * `accept` it where RFC 4475 allows a liberal reading and drachtio-server takes it too. A
 * refused message never reaches the app. `drachtio` is what drachtio-server v0.9.10 (built from
 * upstream) was seen to do, where that differs.
 */

export type Outcome = 400 | 505 | 'drop' | 'accept';

export interface Target {
  host: string;
  port: number;
}

export interface MalformedCase {
  /** "RFC 4475 3.1.2.7 ltgtruri" */
  rfc: string;
  title: string;
  outcome: Outcome;
  /** drachtio-server's outcome where it differs; 'exits': the server process died on it. */
  drachtio?: Outcome | 'exits';
  /** The Call-ID the message carries (to check it never reached the app). */
  callId: string;
  text: string;
}

interface Parts {
  requestLine?: string;
  method?: string;
  /** Header lines as written (name: value), in order; Content-Length is added unless present. */
  headers?: string[];
  /** Replaces the default header of that name (first match, case-insensitive); null removes it. */
  set?: Record<string, string | null>;
  body?: string;
}

/** A request from 127.0.0.1 toward the target, with the given parts replaced. */
function req(t: Target, callId: string, p: Parts = {}): string {
  const method = p.method ?? 'OPTIONS';
  const ruri = `sip:probe@${t.host}:${t.port}`;
  const defaults: [string, string][] = [
    ['Via', `SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK${randomBytes(6).toString('hex')};rport`],
    ['Max-Forwards', '70'],
    ['From', `<sip:probe@127.0.0.1>;tag=${randomBytes(4).toString('hex')}`],
    ['To', `<${ruri}>`],
    ['Call-ID', callId],
    ['CSeq', `1 ${method}`],
  ];
  const lines: string[] = [];
  for (const [name, value] of defaults) {
    const key = Object.keys(p.set ?? {}).find((k) => k.toLowerCase() === name.toLowerCase());
    if (key === undefined) lines.push(`${name}: ${value}`);
    else if (p.set![key] !== null) lines.push(`${name}: ${p.set![key]}`);
  }
  lines.push(...(p.headers ?? []));
  const body = p.body ?? '';
  if (!lines.some((l) => /^(content-length|l)\s*:/i.test(l))) lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
  return `${p.requestLine ?? `${method} ${ruri} SIP/2.0`}\r\n${lines.join('\r\n')}\r\n\r\n${body}`;
}

function newCallId(label: string): string {
  return `${label}-${randomBytes(6).toString('hex')}`;
}

export function malformedCases(t: Target): MalformedCase[] {
  const at = `${t.host}:${t.port}`;
  const sdp = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n';
  const c = (
    rfc: string,
    title: string,
    outcome: Outcome,
    build: (callId: string) => string,
    drachtio?: MalformedCase['drachtio'],
  ): MalformedCase => {
    const callId = newCallId(rfc.split(' ').at(-1)!);
    return { rfc, title, outcome, callId, text: build(callId), ...(drachtio !== undefined ? { drachtio } : {}) };
  };
  return [
    c('RFC 4475 3.1.2.1 badinv01', 'extraneous header field separators', 400, (id) =>
      req(t, id, {
        method: 'INVITE',
        set: { From: '<sip:probe@127.0.0.1>;;,;tag=1a2b', To: `sip:probe@${at};;,;` },
        headers: ['Contact: "Probe" <sip:probe@127.0.0.1:5999>;;;;,;', 'Content-Type: application/sdp'],
        body: sdp,
      }),
    ),
    c('RFC 4475 3.1.2.2 clerr', 'Content-Length larger than the message', 400, (id) =>
      req(t, id, { method: 'INVITE', headers: ['Content-Type: application/sdp', 'Content-Length: 9999'], body: sdp }),
    ),
    c('RFC 4475 3.1.2.3 ncl', 'negative Content-Length', 400, (id) =>
      req(t, id, { method: 'INVITE', headers: ['Content-Type: application/sdp', 'Content-Length: -999'], body: sdp }),
    ),
    c('RFC 4475 3.1.2.4 scalar02', 'request scalar fields with overlarge values', 400, (id) =>
      req(t, id, {
        method: 'REGISTER',
        requestLine: `REGISTER sip:${at} SIP/2.0`,
        set: { CSeq: '36893488147419103232 REGISTER', 'Max-Forwards': '300' },
        headers: ['Expires: 18446744073709551616', 'Contact: <sip:probe@127.0.0.1:5999>;expires=280297596632815'],
      }),
    ),
    c('RFC 4475 3.1.2.5 scalarlg', 'response scalar fields with overlarge values', 'drop', (id) =>
      [
        'SIP/2.0 503 Service Unavailable',
        `Via: SIP/2.0/UDP ${at};branch=z9hG4bKnotours`,
        `From: <sip:probe@127.0.0.1>;tag=11`,
        `To: <sip:probe@${at}>;tag=22`,
        `Call-ID: ${id}`,
        'CSeq: 18446744073709551617 INVITE',
        'Retry-After: 18446744073709551617',
        'Warning: 1812 overture "the warn-code has four digits"',
        'Content-Length: 0',
        '',
        '',
      ].join('\r\n'),
    ),
    c('RFC 4475 3.1.2.6 quotbal', 'unterminated quoted string in a display name', 400, (id) =>
      req(t, id, { method: 'INVITE', set: { To: `"Probe Target <sip:probe@${at}>` } }),
    ),
    c('RFC 4475 3.1.2.7 ltgtruri', '<> enclosing the Request-URI', 400, (id) =>
      req(t, id, { method: 'INVITE', requestLine: `INVITE <sip:probe@${at}> SIP/2.0` }),
    ),
    c('RFC 4475 3.1.2.8 lwsruri', 'LWS inside the Request-URI', 'drop', (id) =>
      req(t, id, { method: 'INVITE', requestLine: `INVITE sip:probe@${at}; lr SIP/2.0` }),
    ),
    // drachtio-server passes it on after its 100 Trying; drachtio-srf cannot parse the request
    // line, so the app never sees it and the caller never gets a final response.
    c(
      'RFC 4475 3.1.2.9 lwsstart',
      'several SP between request-line elements',
      400,
      (id) => req(t, id, { method: 'INVITE', requestLine: `INVITE  sip:probe@${at}   SIP/2.0` }),
      'drop',
    ),
    c('RFC 4475 3.1.2.10 trws', 'SP at the end of the request line', 'accept', (id) =>
      req(t, id, { requestLine: `OPTIONS sip:probe@${at} SIP/2.0  ` }),
    ),
    // Accepted, and never forwarded: a proxied request's Request-URI becomes the target's.
    c('RFC 4475 3.1.2.11 escruri', 'escaped headers in the Request-URI', 'accept', (id) =>
      req(t, id, { method: 'INVITE', requestLine: `INVITE sip:probe@${at}?Route=%3Csip:elsewhere.invalid%3E SIP/2.0` }),
    ),
    c('RFC 4475 3.1.2.12 baddate', 'Date with a time zone other than GMT', 400, (id) =>
      req(t, id, { method: 'INVITE', headers: ['Date: Sun, 29 Nov 2026 16:00:00 EST'] }),
    ),
    c('RFC 4475 3.1.2.13 regbadct', 'REGISTER Contact URI with headers not enclosed in <>', 400, (id) =>
      req(t, id, {
        method: 'REGISTER',
        requestLine: `REGISTER sip:${at} SIP/2.0`,
        headers: ['Contact: sip:probe@127.0.0.1:5999?Route=%3Csip:elsewhere.invalid%3E'],
      }),
    ),
    c('RFC 4475 3.1.2.14 badaspec', 'spaces inside an addr-spec', 'accept', (id) =>
      req(t, id, { method: 'INVITE', set: { To: `"Probe" < sip:probe@${at} >` } }),
    ),
    c('RFC 4475 3.1.2.15 baddn', 'non-token characters in an unquoted display name', 400, (id) =>
      req(t, id, { method: 'INVITE', set: { From: 'Probe, Caller <sip:probe@127.0.0.1>;tag=98a7' } }),
    ),
    // drachtio-server answers 505 too, but to the Via's sent-by (port 5999 here) rather than the
    // source port rport asks for: the sender of this test sees nothing.
    c(
      'RFC 4475 3.1.2.16 badvers',
      'unknown SIP version',
      505,
      (id) => req(t, id, { requestLine: `OPTIONS sip:probe@${at} SIP/7.0` }),
      'drop',
    ),
    c('RFC 4475 3.1.2.17 mismatch01', 'request line and CSeq method differ', 400, (id) =>
      req(t, id, { set: { CSeq: '1 INVITE' } }),
    ),
    c('RFC 4475 3.1.2.18 mismatch02', 'unknown method, CSeq names another', 400, (id) =>
      req(t, id, { method: 'NEWMETHOD', set: { CSeq: '1 INVITE' } }),
    ),
    c('RFC 4475 3.1.2.19 bigcode', 'overlarge response code', 'drop', (id) =>
      [
        'SIP/2.0 4294967301 not a status code',
        `Via: SIP/2.0/UDP ${at};branch=z9hG4bKnotours`,
        `From: <sip:probe@127.0.0.1>;tag=11`,
        `To: <sip:probe@${at}>;tag=22`,
        `Call-ID: ${id}`,
        'CSeq: 1 INVITE',
        'Content-Length: 0',
        '',
        '',
      ].join('\r\n'),
    ),
    ...(['To', 'From', 'Call-ID', 'CSeq', 'Max-Forwards'] as const).map((name) =>
      c(`RFC 4475 3.3.8 multi01`, `two ${name} header fields`, 400, (id) => {
        const second: Record<string, string> = {
          To: `<sip:other@${at}>`,
          From: '<sip:other@127.0.0.1>;tag=2nd',
          'Call-ID': `${id}-second`,
          CSeq: '2 INVITE',
          'Max-Forwards': '69',
        };
        return req(t, id, { method: 'INVITE', headers: [`${name}: ${second[name]}`] });
      }),
    ),
    c('RFC 4475 3.3.9 mcl01', 'two Content-Length header fields', 400, (id) =>
      req(t, id, { method: 'INVITE', headers: ['Content-Type: application/sdp', 'Content-Length: 0', `Content-Length: ${sdp.length}`], body: sdp }),
    ),
    // Not an RFC 4475 case: `*` is a Contact only in a REGISTER removing every binding (RFC 3261
    // 10.2.2). drachtio-server v0.9.10 passes such an INVITE to the app and exits when the app
    // answers it.
    c('RFC 3261 10.2.2', 'Contact * in an INVITE', 400, (id) => req(t, id, { method: 'INVITE', headers: ['Contact: *'] }), 'exits'),
  ];
}
