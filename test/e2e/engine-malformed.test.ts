import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { engineUnderTest, type EngineUnderTest } from '../helpers/engine-under-test.js';
import { connectApp, type TestApp } from '../helpers/srf-app.js';
import { request, tcpExchange, udpExchange } from '../helpers/sip-raw.js';
import { runSipp, stopAllSipp } from '../helpers/sipp.js';
import { malformedCases } from '../helpers/malformed-sip.js';

/**
 * Malformed input never takes the engine down: a request that can be answered gets 400, anything
 * else is dropped, and the next well-formed request and call are served as usual.
 */

let engine: EngineUnderTest;
let app: TestApp;
/** Call-IDs of every request the app was handed. */
const seenByApp = new Set<string>();

beforeAll(async () => {
  engine = await engineUnderTest();
  app = await connectApp(engine);
  app.onOptions = (req, res) => {
    seenByApp.add(req.get('Call-ID'));
    res.send(200);
  };
  // drachtio-srf has srf.register(); its bundled typings miss it.
  (app.srf as unknown as { register(h: (req: { get(n: string): string }, res: { send(s: number): void }) => void): void }).register(
    (req, res) => {
      seenByApp.add(req.get('Call-ID'));
      res.send(200);
    },
  );
});
afterAll(async () => {
  await stopAllSipp();
  app?.stop();
  await engine?.stop();
});

/** 400 or silence: the two acceptable outcomes for bad input. */
function badRequestOrDrop(replies: { status: number }[]): void {
  const finalStatuses = replies.filter((r) => r.status >= 200).map((r) => r.status);
  expect(finalStatuses.every((s) => s === 400)).toBe(true);
}

async function stillServing(): Promise<void> {
  const ok = await udpExchange(engine.sip, request(engine.sip));
  expect(ok.at(-1)?.status).toBe(200);
}

describe('malformed SIP input', () => {
  it('a truncated request (headers cut off) gets 400 or is dropped', async () => {
    const full = request(engine.sip);
    badRequestOrDrop(await udpExchange(engine.sip, full.slice(0, Math.floor(full.length / 2)), 600));
    await stillServing();
  });

  it('missing mandatory headers get 400', async () => {
    for (const omit of ['Call-ID', 'CSeq', 'From']) {
      const replies = await udpExchange(engine.sip, request(engine.sip, { omit: [omit] }));
      expect(replies.at(-1)?.status, `without ${omit}`).toBe(400);
    }
    await stillServing();
  });

  it('a bad Content-Length gets 400', async () => {
    const notNumber = await udpExchange(engine.sip, request(engine.sip, { contentLength: 'abc' }));
    expect(notNumber.at(-1)?.status).toBe(400);
    const tooLong = await udpExchange(engine.sip, request(engine.sip, { body: 'v=0\r\n', contentLength: '500' }));
    expect(tooLong.at(-1)?.status).toBe(400);
    await stillServing();
  });

  it('binary garbage is dropped', async () => {
    for (let i = 0; i < 20; i++) {
      const replies = await udpExchange(engine.sip, randomBytes(64 + i * 50), 100);
      expect(replies).toEqual([]);
    }
    await stillServing();
  });

  it('garbage that looks like a request line but has junk header lines gets 400', async () => {
    const text = `INVITE sip:x@${engine.sip.host} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKjunk\r\n\u0001\u0002 no colon here\r\n\r\n`;
    badRequestOrDrop(await udpExchange(engine.sip, text, 600));
    await stillServing();
  });

  it('a malformed ACK or response is never answered', async () => {
    expect(await udpExchange(engine.sip, `ACK sip:x@${engine.sip.host} SIP/2.0\r\nVia: bogus\r\n\r\n`, 400)).toEqual([]);
    expect(await udpExchange(engine.sip, 'SIP/2.0 200 OK\r\nVia: nothing useful\r\n\r\n', 400)).toEqual([]);
    await stillServing();
  });

  it('a 64 KiB header line gets 400 or is dropped, over UDP and over TCP', async () => {
    const huge = 'X-Huge: ' + 'a'.repeat(64 * 1024);
    // UDP cannot carry 64 KiB + headers in one datagram; the largest that fits.
    const udpHuge = 'X-Huge: ' + 'a'.repeat(60 * 1024);
    badRequestOrDrop(await udpExchange(engine.sip, request(engine.sip, { extra: [udpHuge] }), 800));
    const tcp = await tcpExchange(engine.sip, request(engine.sip, { transport: 'TCP', extra: [huge] }), 1500);
    badRequestOrDrop(tcp.replies);
    await stillServing();
  });

  it('a well-formed request over TCP is still answered, and a SIPp call still completes', async () => {
    const tcp = await tcpExchange(engine.sip, request(engine.sip, { transport: 'TCP' }));
    expect(tcp.replies.at(-1)?.status).toBe(200);
    app.onInvite = (_req, res) => res.send(486, 'Busy Here', {});
    const r = await runSipp({ scenario: 'uac-expect-final', vars: { CODE: '486' }, remote: engine.sipTarget, service: 'after-garbage' });
    expect(r.exitCode, r.output.slice(-1500)).toBe(0);
  });
});

describe('RFC 4475 invalid messages (test/helpers/malformed-sip.ts)', () => {
  for (const c of malformedCases({ host: '127.0.0.1', port: 0 })) {
    it(`${c.rfc}: ${c.title}`, async () => {
      if (engine.external && c.drachtio === 'exits') {
        // Sent to the embedded engine only: drachtio-server v0.9.10 exits on this one, which
        // would fail every test after it (src/engine/README.md).
        return;
      }
      app.onInvite = (req, res) => {
        seenByApp.add(req.get('Call-ID'));
        res.send(486, 'Busy Here', {});
      };
      const sent = malformedCases(engine.sip).find((x) => x.rfc === c.rfc && x.title === c.title)!;
      const replies = await udpExchange(engine.sip, sent.text, 800);
      const finals = replies.filter((r) => r.status >= 200);
      // What holds on both servers: refused (400/505 or silence) and never handed to the app,
      // or, where RFC 4475 allows the liberal reading and both servers take it, answered by the app.
      const outcome = engine.external ? (c.drachtio ?? c.outcome) : c.outcome;
      if (outcome === 'accept') {
        expect(seenByApp.has(sent.callId), 'the app got it').toBe(true);
        expect(finals.at(-1)?.status).toBe(sent.text.startsWith('OPTIONS') ? 200 : 486);
      } else {
        expect(seenByApp.has(sent.callId), 'never reaches the app').toBe(false);
        if (outcome === 'drop') expect(finals).toEqual([]);
        else {
          expect(finals.map((r) => r.status)).toEqual([outcome]);
          // drachtio-server names the bad header in its reason phrase instead ("Bad From Header").
          if (!engine.external) expect(finals[0]!.text).toMatch(/\r\nWarning: 399 - "[^"\r\n]+"\r\n/);
        }
      }
      await stillServing();
    });
  }
});
