import { describe, expect, it } from 'vitest';
import { parseMessage, salvageForBadRequest, SipParseError } from '../../src/engine/sip.js';
import { headerProblem, nameAddrProblem, requestLineProblem } from '../../src/engine/validate.js';
import { malformedCases } from '../helpers/malformed-sip.js';

/**
 * What the engine's parser makes of each RFC 4475 invalid-message case (messages written for
 * these tests, test/helpers/malformed-sip.ts), and that the checks behind it let well-formed
 * traffic through. The same cases go over real sockets in test/e2e/engine-malformed.test.ts.
 */

function outcomeOf(text: string): 400 | 505 | 'drop' | 'accept' {
  try {
    parseMessage(text, Buffer.byteLength(text));
    return 'accept';
  } catch (err) {
    if (!(err instanceof SipParseError)) throw err;
    // The engine answers when the error allows it and a 400 can be addressed (core.onBadInput).
    return err.answerable && salvageForBadRequest(text) ? err.status : 'drop';
  }
}

describe('RFC 4475 invalid messages, as the engine parses them', () => {
  for (const c of malformedCases({ host: '127.0.0.1', port: 5060 })) {
    it(`${c.rfc} (${c.title}): ${c.outcome}`, () => {
      expect(outcomeOf(c.text)).toBe(c.outcome);
    });
  }
});

const VIA = 'Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport';

function request(lines: string[], opts: { method?: string; uri?: string; body?: string } = {}): string {
  const method = opts.method ?? 'INVITE';
  const body = opts.body ?? '';
  const head = [
    `${method} ${opts.uri ?? 'sip:bob@192.0.2.20'} SIP/2.0`,
    VIA,
    'Max-Forwards: 70',
    'From: "Alice" <sip:alice@192.0.2.10>;tag=1928301774',
    'To: <sip:bob@192.0.2.20>',
    'Call-ID: a84b4c76e66710@192.0.2.10',
    `CSeq: 314159 ${method}`,
    ...lines,
    `Content-Length: ${Buffer.byteLength(body)}`,
  ];
  return `${head.join('\r\n')}\r\n\r\n${body}`;
}

describe('well-formed messages pass the checks', () => {
  const valid: [string, string][] = [
    ['a plain INVITE', request([])],
    ['compact header names', request(['m: <sip:alice@192.0.2.10>', 'c: application/sdp'], { body: 'v=0\r\n' })],
    ['a quoted display name with a comma and an escaped quote', request(['Contact: "Smith, \\"Al\\"" <sip:alice@192.0.2.10>'])],
    ['token display names', request(['Contact: Alice Smith <sip:alice@192.0.2.10;transport=tcp>;expires=60'])],
    ['an addr-spec with header parameters', request(['Contact: sip:alice@192.0.2.10;expires=60;q=0.5'])],
    ['two Contacts, on one line and on two', request(['Contact: <sip:a@192.0.2.10>, <sip:b@192.0.2.10>', 'Contact: <sip:c@192.0.2.10>'])],
    ['a quoted parameter holding <>', request(['Contact: <sip:a@192.0.2.10>;+sip.instance="<urn:uuid:00000000-0000-1000-8000-000A95A0E128>"'])],
    ['a Via list over two lines, IPv6 and received/rport', request(['Via: SIP/2.0/TCP [2001:db8::1]:5061;branch=z9hG4bKabc;received=2001:db8::1'])],
    ['Date in GMT and Expires as a number', request(['Date: Sat, 13 Nov 2010 23:29:00 GMT', 'Expires: 3600'])],
    ['a large Max-Forwards (treated as given, as drachtio-server does)', request([]).replace('Max-Forwards: 70', 'Max-Forwards: 300')],
    ['Contact * in REGISTER', request(['Contact: *', 'Expires: 0'], { method: 'REGISTER', uri: 'sip:192.0.2.20' })],
    ['a tel: Request-URI', request([], { uri: 'tel:+15551234567' })],
    ['a Content-Type with parameters', request(['Content-Type: multipart/mixed; boundary="unique boundary 1"'], { body: 'x' })],
  ];
  for (const [name, text] of valid) {
    it(name, () => {
      expect(() => parseMessage(text, Buffer.byteLength(text))).not.toThrow();
    });
  }

  it('a response with the usual headers', () => {
    const text = [
      'SIP/2.0 180 Ringing',
      VIA,
      'From: "Alice" <sip:alice@192.0.2.10>;tag=1928301774',
      'To: <sip:bob@192.0.2.20>;tag=a6c85cf',
      'Call-ID: a84b4c76e66710@192.0.2.10',
      'CSeq: 314159 INVITE',
      'Contact: <sip:bob@192.0.2.20>',
      'Record-Route: <sip:192.0.2.30;lr>',
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n');
    expect(() => parseMessage(text, Buffer.byteLength(text))).not.toThrow();
  });
});

describe('the checks, one by one', () => {
  it('request line', () => {
    expect(requestLineProblem('INVITE sip:bob@192.0.2.20 SIP/2.0')).toBeUndefined();
    expect(requestLineProblem('INVITE sip:bob@192.0.2.20 SIP/2.0  ')).toBeUndefined();
    expect(requestLineProblem('INVITE sip:bob@192.0.2.20 SIP/3.0')).toMatchObject({ status: 505 });
    expect(requestLineProblem('INVITE  sip:bob@192.0.2.20 SIP/2.0')?.why).toMatch(/more than one SP/);
    expect(requestLineProblem('INVITE <sip:bob@192.0.2.20> SIP/2.0')?.why).toMatch(/<>/);
    expect(requestLineProblem('INVITE sip:bob@ SIP/2.0')?.why).toMatch(/host/);
    expect(requestLineProblem('INVITE bob SIP/2.0')?.why).toMatch(/scheme/);
  });

  it('name-addr and addr-spec', () => {
    expect(nameAddrProblem('<sip:a@b>;tag=1')).toBeUndefined();
    expect(nameAddrProblem('"A" < sip:a@b >')).toBeUndefined();
    expect(nameAddrProblem('"A <sip:a@b>')).toMatch(/unterminated/);
    expect(nameAddrProblem('A, B <sip:a@b>')).toMatch(/non-token/);
    expect(nameAddrProblem('<sip:a@b>;;tag=1')).toMatch(/parameters/);
    expect(nameAddrProblem('<sip:a@b')).toMatch(/unclosed/);
    expect(nameAddrProblem('sip:a@b?Subject=x')).toMatch(/<>/);
  });

  it('header section: each single-value field once, compact forms included', () => {
    const h = { via: VIA.slice(5), from: '<sip:a@b>;tag=1', to: '<sip:c@d>', 'call-id': 'x', cseq: '1 INVITE' };
    const head = (extra: string) => `INVITE sip:c@d SIP/2.0\r\nVia: ${h.via}\r\nCall-ID: x\r\n${extra}`;
    expect(headerProblem(head('CSeq: 1 INVITE'), h, 'INVITE')).toBeUndefined();
    expect(headerProblem(head('i: y'), h, 'INVITE')?.why).toBe('more than one call-id header');
    expect(headerProblem(head(''), { ...h, via: 'SIP/2.0/UDP 192.0.2.1;;' }, 'INVITE')).toMatchObject({ answerable: false });
    expect(headerProblem(head(''), { ...h, via: `${h.via},garbage` }, 'INVITE')).toMatchObject({ answerable: true });
    expect(headerProblem(head(''), { ...h, 'max-forwards': '4294967296' }, 'INVITE')?.why).toMatch(/Max-Forwards/);
    expect(headerProblem(head(''), { ...h, contact: '*' }, 'INVITE')?.why).toMatch(/outside REGISTER/);
    expect(headerProblem(head(''), { ...h, expires: 'soon' }, 'INVITE')?.why).toMatch(/Expires/);
    expect(headerProblem(head(''), { ...h, 'content-type': '///' }, 'INVITE')?.why).toMatch(/Content-Type/);
  });
});
