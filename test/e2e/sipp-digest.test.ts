import dgram from 'node:dgram';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  PROXY_DIGEST,
  UA_DIGEST,
  challengeHeader,
  createNonce,
  selectCredentials,
  verifyDigest,
  type DigestHeaderNames,
  type DigestVerdict,
} from '../../src/edge/digest.js';
import { runSipp, stopAllSipp, type SippResult } from '../helpers/sipp.js';

/**
 * sipp/uac-auth.xml against a minimal raw-UDP challenger that uses src/edge/digest.ts: SIPp's own
 * digest implementation ([authentication]) and ours must agree, and the scenario must walk the
 * 407/401 -> ACK -> INVITE with credentials -> final -> ACK (and ACK/BYE through the record-route
 * for a 200) sequence. The edge's real challenge path gets its own end-to-end tests with the app.
 */

const SECRET = 'e2e-digest-secret';
const REALM = 'edge.test';
const PASSWORD = 'Circle Of Life';

interface Challenger {
  target: string;
  verdicts: DigestVerdict[];
  /** Raw requests as received. */
  requests: string[];
  close(): void;
}

async function challenger(opts: { names: DigestHeaderNames; answer: number }): Promise<Challenger> {
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', () => resolve()));
  const port = sock.address().port;
  const c: Challenger = { target: `127.0.0.1:${port}`, verdicts: [], requests: [], close: () => sock.close() };
  sock.on('message', (buf, rinfo) => {
    const text = buf.toString('utf8');
    c.requests.push(text);
    const lines = text.split('\r\n\r\n')[0]!.split('\r\n');
    const method = lines[0]!.split(' ')[0];
    const all = (name: string) =>
      lines.filter((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`)).map((l) => l.slice(name.length + 1).trim());
    const reply = (status: number, reason: string, extra: string[] = []) => {
      const to = all('To')[0] ?? '';
      const out = [
        `SIP/2.0 ${status} ${reason}`,
        ...all('Via').map((v) => `Via: ${v}`),
        `From: ${all('From')[0]}`,
        `To: ${to}${/;tag=/.test(to) ? '' : ';tag=challenger'}`,
        `Call-ID: ${all('Call-ID')[0]}`,
        `CSeq: ${all('CSeq')[0]}`,
        ...extra,
        'Content-Length: 0',
        '',
        '',
      ];
      sock.send(out.join('\r\n'), rinfo.port, rinfo.address);
    };
    if (method === 'INVITE') {
      const credentials = selectCredentials(all(opts.names.credentialsHeader), REALM);
      if (!credentials) {
        const nonce = createNonce(SECRET, Date.now());
        reply(opts.names.status, opts.names.reason, [`${opts.names.challengeHeader}: ${challengeHeader({ realm: REALM, nonce })}`]);
        return;
      }
      const verdict = verifyDigest({
        credentials,
        method: 'INVITE',
        password: PASSWORD,
        realm: REALM,
        secret: SECRET,
        nowMs: Date.now(),
        maxNonceAgeMs: 30_000,
      });
      c.verdicts.push(verdict);
      if (verdict !== 'ok') reply(403, 'Forbidden');
      else if (opts.answer === 200) reply(200, 'OK', [`Record-Route: <sip:127.0.0.1:${port};lr>`, `Contact: <sip:uas@127.0.0.1:${port}>`]);
      else reply(opts.answer, 'Final');
    } else if (method === 'BYE') {
      reply(200, 'OK');
    }
  });
  return c;
}

let open: Challenger | undefined;
afterEach(async () => {
  await stopAllSipp();
  open?.close();
  open = undefined;
});
afterAll(stopAllSipp);

function assertOk(r: SippResult): void {
  if (r.exitCode !== 0 || r.failed > 0) throw new Error(`sipp exit ${r.exitCode}, failed ${r.failed}\n${r.output.slice(-2500)}`);
}

const sentMethods = (r: SippResult) => r.messages.filter((m) => m.direction === 'sent').map((m) => m.method ?? String(m.status));

describe('sipp/uac-auth.xml with src/edge/digest.ts', () => {
  it('answers a 407 with Proxy-Authorization that verifyDigest accepts, then takes the expected final (486)', async () => {
    open = await challenger({ names: PROXY_DIGEST, answer: 486 });
    const r = await runSipp({
      scenario: 'uac-auth',
      vars: { FINAL: '486', EXTRA_HEADERS: 'X-Account: acme' },
      auth: { username: 'Mufasa', password: PASSWORD },
      remote: open.target,
      service: 'acct1',
    });
    assertOk(r);
    expect(open.verdicts).toEqual(['ok']);
    expect(sentMethods(r)).toEqual(['INVITE', 'ACK', 'INVITE', 'ACK']);
    const [first, ack1, second, ack2] = r.messages.filter((m) => m.direction === 'sent');
    expect(first!.headers['proxy-authorization']).toBeUndefined();
    expect(first!.headers['x-account']).toEqual(['acme']);
    expect(ack1!.headers.cseq).toEqual(['1 ACK']);
    expect(second!.headers.cseq).toEqual(['2 INVITE']);
    expect(second!.headers['call-id']).toEqual(first!.headers['call-id']);
    expect(second!.headers.via?.[0]).not.toEqual(first!.headers.via?.[0]);
    expect(second!.headers['proxy-authorization']?.[0]).toMatch(/^Digest .*username="Mufasa"/);
    expect(second!.headers['x-account']).toEqual(['acme']);
    expect(ack2!.headers.cseq).toEqual(['2 ACK']);
    expect(ack2!.headers.via).toEqual(second!.headers.via);
  });

  it('completes a call after the challenge: ACK and BYE go through the record-route', async () => {
    open = await challenger({ names: PROXY_DIGEST, answer: 200 });
    const r = await runSipp({ scenario: 'uac-auth', vars: { FINAL: '200' }, auth: { username: 'acme', password: PASSWORD }, remote: open.target, service: 'acct1' });
    assertOk(r);
    expect(open.verdicts).toEqual(['ok']);
    expect(sentMethods(r)).toEqual(['INVITE', 'ACK', 'INVITE', 'ACK', 'BYE']);
    const bye = r.messages.find((m) => m.method === 'BYE')!;
    expect(bye.text.split('\n')[0]).toMatch(/^BYE sip:uas@/);
    expect(bye.headers.route).toEqual([`<sip:${open.target};lr>`]);
    expect(bye.headers.cseq).toEqual(['3 BYE']);
    // Without EXTRA_HEADERS the line is gone, not left empty (which would end the headers).
    expect(open.requests[0]).toMatch(/Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n$/);
  });

  it('a wrong password is bad-response on our side', async () => {
    open = await challenger({ names: PROXY_DIGEST, answer: 200 });
    const r = await runSipp({ scenario: 'uac-auth', vars: { FINAL: '403' }, auth: { username: 'acme', password: 'guess' }, remote: open.target, service: 'acct1' });
    assertOk(r);
    expect(open.verdicts).toEqual(['bad-response']);
  });

  it('answers a 401 (user-agent mode) with Authorization', async () => {
    open = await challenger({ names: UA_DIGEST, answer: 480 });
    const r = await runSipp({ scenario: 'uac-auth', vars: { FINAL: '480' }, auth: { username: 'acme', password: PASSWORD }, remote: open.target, service: 'acct1' });
    assertOk(r);
    expect(open.verdicts).toEqual(['ok']);
    const second = r.messages.filter((m) => m.method === 'INVITE')[1]!;
    expect(second.headers.authorization?.[0]).toMatch(/^Digest /);
    expect(second.headers['proxy-authorization']).toBeUndefined();
  });

  it('fails when the final response is not the expected one', async () => {
    open = await challenger({ names: PROXY_DIGEST, answer: 200 });
    const r = await runSipp({ scenario: 'uac-auth', vars: { FINAL: '403' }, auth: { username: 'acme', password: PASSWORD }, remote: open.target, service: 'acct1', timeoutMs: 5000 });
    expect(r.exitCode).not.toBe(0);
    expect(r.failed).toBe(1);
  });
});
