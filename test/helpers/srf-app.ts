import Srf from 'drachtio-srf';
import type { EngineUnderTest } from './engine-under-test.js';

/**
 * A small drachtio-srf app for end-to-end tests: a real `Srf` connected to the engine under test
 * (embedded or external drachtio-server), whose INVITE/OPTIONS behaviour each test sets, and
 * which records CDR events.
 */

export type Handler = (req: Srf.SrfRequest, res: Srf.SrfResponse) => void;

export interface CdrEvent {
  type: 'attempt' | 'start' | 'stop';
  source: string;
  detail?: string;
  callId: string;
  status?: number;
}

export interface TestApp {
  srf: Srf;
  hostport: string;
  /** What the app does with the next INVITEs. */
  onInvite: Handler;
  onOptions: Handler;
  cdrs: CdrEvent[];
  stop(): void;
}

export async function connectApp(
  engine: EngineUnderTest,
  opts: { secret?: string; cdrs?: boolean } = {},
): Promise<TestApp> {
  const srf = new Srf();
  const app: TestApp = {
    srf,
    hostport: '',
    onInvite: (_req, res) => res.send(500),
    onOptions: (_req, res) => res.send(200),
    cdrs: [],
    stop: () => {
      try {
        srf.disconnect();
      } catch {
        /* already gone */
      }
    },
  };
  srf.invite((req, res) => app.onInvite(req, res));
  // drachtio-srf has srf.options(); its bundled typings miss it.
  (srf as unknown as { options(h: Handler): void }).options((req, res) => app.onOptions(req, res));
  if (opts.cdrs) {
    const record = (type: CdrEvent['type']) => (...args: unknown[]) => {
      const msg = args[args.length - 1] as Srf.SipMessage & { status?: number };
      app.cdrs.push({
        type,
        source: String(args[0]),
        ...(type !== 'attempt' ? { detail: String(args[2]) } : {}),
        callId: msg.get('Call-ID'),
        ...(msg.status ? { status: msg.status } : {}),
      });
    };
    srf.on('cdr:attempt', record('attempt'));
    srf.on('cdr:start', record('start'));
    srf.on('cdr:stop', record('stop'));
  }
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('app did not connect within 5 s')), 5000);
    srf.on('connect', (err: Error | null, hostport: string) => {
      clearTimeout(timer);
      if (err) return reject(err);
      app.hostport = hostport;
      resolve();
    });
    srf.on('error', () => {
      /* reconnects are srf's business; the connect timeout bounds the test */
    });
    srf.connect({ host: engine.control.host, port: engine.control.port, secret: opts.secret ?? engine.control.secret });
  });
  return app;
}
