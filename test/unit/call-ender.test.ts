import { describe, expect, it } from 'vitest';
import { ENDING_CSEQ, endingByes, headerList, seenDialog, uriOf, type Headers } from '../../src/edge/call-ender.js';

/** What the BYEs that end a proxied call say, from the INVITE and the 2xx the edge saw. */

const headers = (h: Record<string, string>): Headers => ({ get: (name) => h[name] });
const invite = headers({
  From: '"Alice" <sip:alice@carrier-a.example>;tag=a1',
  To: '<sip:bob@edge.example>',
  Contact: '<sip:alice@192.0.2.10:5060;transport=udp>',
  // One proxy between the caller and the edge (the caller's carrier).
  'Record-Route': '<sip:sbc-a.example;lr>',
});
const answer = headers({
  To: '<sip:bob@edge.example>;tag=b2',
  Contact: '"Bob" <sip:bob@198.51.100.20:5080>;expires=3600',
  // The route's carrier, the edge itself, then the caller's carrier (the INVITE's order).
  'Record-Route': '<sip:sbc-b.example;lr>, <sip:edge.example;lr>, <sip:sbc-a.example;lr>',
});

describe('the BYEs that end a proxied call', () => {
  const dialog = seenDialog('call-1', 'acct-1', invite, answer)!;
  const [toCallee, toCaller] = endingByes(dialog, 'Q.850;cause=16');

  it('towards the callee: as the caller would send it, to its Contact, through the proxies beyond the edge', () => {
    expect(toCallee).toEqual({
      leg: 'callee',
      uri: 'sip:bob@198.51.100.20:5080',
      routes: ['<sip:sbc-b.example;lr>'],
      headers: { 'Call-ID': 'call-1', CSeq: `${ENDING_CSEQ} BYE`, 'Max-Forwards': '70', Reason: 'Q.850;cause=16', From: '"Alice" <sip:alice@carrier-a.example>;tag=a1', To: '<sip:bob@edge.example>;tag=b2' },
    });
  });

  it('towards the caller: as the callee would send it (From and To swapped), to its Contact, through the proxies before the edge', () => {
    expect(toCaller).toMatchObject({
      leg: 'caller',
      uri: 'sip:alice@192.0.2.10:5060;transport=udp',
      routes: ['<sip:sbc-a.example;lr>'],
      headers: { From: '<sip:bob@edge.example>;tag=b2', To: '"Alice" <sip:alice@carrier-a.example>;tag=a1', CSeq: `${ENDING_CSEQ} BYE` },
    });
  });

  it('parties reached directly: no route set either way', () => {
    const direct = seenDialog('c', 'a', headers({ From: '<sip:a@h>;tag=1', Contact: '<sip:a@10.0.0.1>' }), headers({ To: '<sip:b@h>;tag=2', Contact: '<sip:b@10.0.0.2>', 'Record-Route': '<sip:edge;lr>' }))!;
    expect(endingByes(direct, 'r').map((b) => b.routes)).toEqual([[], []]);
  });

  it('the CSeq is the highest RFC 3261 allows, so it is above any in-dialog request the edge did not see', () => {
    expect(ENDING_CSEQ).toBe(2 ** 31 - 1);
  });

  it('a 2xx without a To tag or a Contact, or an INVITE without a Contact: nothing to end it with', () => {
    expect(seenDialog('c', 'a', invite, headers({ To: '<sip:b@h>', Contact: '<sip:b@h>' }))).toBeUndefined();
    expect(seenDialog('c', 'a', invite, headers({ To: '<sip:b@h>;tag=2' }))).toBeUndefined();
    expect(seenDialog('c', 'a', headers({ From: '<sip:a@h>;tag=1' }), answer)).toBeUndefined();
  });
});

describe('reading SIP header values', () => {
  it('the URI of a name-addr or an addr-spec', () => {
    expect(uriOf('"A, B" <sip:a@h;transport=tcp>;expires=60')).toBe('sip:a@h;transport=tcp');
    expect(uriOf('sip:a@h;expires=60')).toBe('sip:a@h');
    expect(uriOf('*')).toBeUndefined();
    expect(uriOf(undefined)).toBeUndefined();
  });

  it('list headers split at commas outside <> and quotes, repeated headers joined', () => {
    expect(headerList('<sip:a;lr>, "x, y" <sip:b;lr>,<sip:c,d;lr>')).toEqual(['<sip:a;lr>', '"x, y" <sip:b;lr>', '<sip:c,d;lr>']);
    expect(headerList(['<sip:a;lr>', '<sip:b;lr>'])).toEqual(['<sip:a;lr>', '<sip:b;lr>']);
    expect(headerList(undefined)).toEqual([]);
  });
});
