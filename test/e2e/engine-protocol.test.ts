import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { engineUnderTest, type EngineUnderTest } from '../helpers/engine-under-test.js';
import { connectApp, type TestApp } from '../helpers/srf-app.js';
import { request, udpExchange } from '../helpers/sip-raw.js';

/**
 * The app side of the engine: drachtio wire protocol (authenticate, routes, pings, reconnects)
 * and what the SIP side sees when apps come and go. Runs against the embedded engine, or against
 * drachtio-server when DRACHTIO_HOST is set.
 */

let engine: EngineUnderTest;
const apps: TestApp[] = [];

beforeAll(async () => {
  engine = await engineUnderTest();
});
afterAll(async () => {
  for (const a of apps) a.stop();
  await engine.stop();
});

async function app(opts: Parameters<typeof connectApp>[1] = {}): Promise<TestApp> {
  const a = await connectApp(engine, opts);
  apps.push(a);
  return a;
}

/** Sends one raw wire frame and returns the first reply frame (or '' if the socket closed). */
function rawFrame(payload: string, until?: RegExp): Promise<{ reply: string; closed: boolean }> {
  return new Promise((resolve) => {
    const sock = net.connect(engine.control.port, engine.control.host);
    let data = '';
    const timer = setTimeout(() => finish(false), 2000);
    const finish = (closed: boolean) => {
      clearTimeout(timer);
      sock.destroy();
      resolve({ reply: data, closed });
    };
    sock.on('data', (b) => {
      data += b.toString('utf8');
      if (until?.test(data)) finish(false);
    });
    sock.on('close', () => finish(true));
    sock.on('error', () => {});
    sock.write(payload);
  });
}

describe('engine wire protocol', () => {
  it('authenticates an app with the shared secret and tells it the SIP address', async () => {
    const a = await app();
    expect(a.hostport).toMatch(/udp\/[\d.]+:\d+/);
    a.stop();
  });

  it('refuses a wrong secret and closes the connection', async () => {
    const msg = 'abc|authenticate|not-the-secret|';
    const { reply, closed } = await rawFrame(`${Buffer.byteLength(msg)}#${msg}`);
    expect(reply).toMatch(/\|response\|abc\|NO/);
    expect(reply).not.toContain('not-the-secret');
    expect(closed).toBe(true);
  });

  it('a drachtio-srf app with a wrong secret gets a connect error', async () => {
    await expect(connectApp(engine, { secret: 'wrong' })).rejects.toThrow(/authenticate/);
  });

  it('closes a connection that sends a frame without a length prefix', async () => {
    const { closed } = await rawFrame('hello there, this is not a frame#at all');
    expect(closed).toBe(true);
    // ...and keeps serving other apps.
    const a = await app();
    a.stop();
  });

  it('answers OPTIONS through the app, and 503 when no app routes the method', async () => {
    const a = await app();
    a.onOptions = (_req, res) => res.send(200, { headers: { 'X-Handled-By': 'test-app' } });
    const ok = await udpExchange(engine.sip, request(engine.sip));
    expect(ok.at(-1)?.status).toBe(200);

    const none = await udpExchange(engine.sip, request(engine.sip, { method: 'MESSAGE' }));
    expect(none.at(-1)?.status).toBe(503);
    a.stop();
  });

  it('survives an app disconnecting and serves the app that reconnects', async () => {
    const first = await app();
    first.onOptions = (_req, res) => res.send(200);
    expect((await udpExchange(engine.sip, request(engine.sip))).at(-1)?.status).toBe(200);
    first.stop();
    await new Promise((r) => setTimeout(r, 200));
    // Nobody routes OPTIONS now: what drachtio-server answers then.
    expect((await udpExchange(engine.sip, request(engine.sip))).at(-1)?.status).toBe(503);

    const second = await app();
    second.onOptions = (_req, res) => res.send(200, 'Back Again', {});
    const back = await udpExchange(engine.sip, request(engine.sip));
    expect(back.at(-1)).toMatchObject({ status: 200, reason: 'Back Again' });
    second.stop();
  });

  it('answers pings', async () => {
    const auth = `p1|authenticate|${engine.control.secret}|`;
    const ping = 'p2|ping';
    const { reply } = await rawFrame(`${Buffer.byteLength(auth)}#${auth}${Buffer.byteLength(ping)}#${ping}`, /\|response\|p2\|/);
    expect(reply).toMatch(/\|response\|p1\|OK/);
    expect(reply).toMatch(/\|response\|p2\|OK/);
  });
});
