import net from 'node:net';
import { randomUUID, timingSafeEqual, createHash } from 'node:crypto';
import type { Logger } from '../log.js';

/**
 * The drachtio wire protocol, server side: apps (drachtio-srf) connect over TCP and exchange
 * frames `<byte length>#<msgId>|<type>|<tokens...>[\r\n<SIP message>]`. This module frames,
 * authenticates (shared secret), keeps route and CDR registrations per app, answers pings and
 * route requests itself, and hands `sip` and `proxy` commands to the engine core.
 */

export interface AppClient {
  readonly id: number;
  readonly remote: string;
  authenticated: boolean;
  /** Verbs this app asked for: "invite", "options", "cdr:attempt", ... */
  readonly verbs: Set<string>;
  closed: boolean;
  /** Sends one frame; a fresh msgId is prepended. */
  send(payload: string): void;
}

export interface ControlOptions {
  host: string;
  port: number;
  secret: string;
  logger: Logger;
  /** What the authenticate reply announces as the SIP address(es), e.g. "udp/127.0.0.1:5060,tcp/...". */
  hostports: () => string;
}

/** Announced version: drachtio-srf enables pings for >= v0.8.2 and parses /^v(\d+)\.(\d+)\.(\d+)/. */
export const ENGINE_VERSION = 'v1.0.0-credit-edge-embedded';

/** Longest frame we accept from an app; a proxy or response command is a few KiB. */
const MAX_FRAME = 1 << 20;

export type CommandHandler = (client: AppClient, msgId: string, tokens: string[], body: string) => void;

export class ControlServer {
  private server?: net.Server;
  private readonly clients = new Set<AppClient & { sock: net.Socket }>();
  private nextId = 1;
  private readonly rr = new Map<string, number>();
  private readonly secretHash: Buffer;
  port = 0;
  onSip: CommandHandler = () => {};
  onProxy: CommandHandler = () => {};
  onClientGone: (client: AppClient) => void = () => {};

  constructor(private readonly opts: ControlOptions) {
    // Compare hashes so the comparison is constant-time whatever the lengths.
    this.secretHash = createHash('sha256').update(opts.secret).digest();
  }

  async start(): Promise<void> {
    const server = net.createServer((sock) => this.accept(sock));
    server.on('error', (err) => this.opts.logger.error({ err }, 'control server error'));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port, this.opts.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    this.port = (server.address() as net.AddressInfo).port;
  }

  async stop(): Promise<void> {
    for (const c of this.clients) c.sock.destroy();
    this.clients.clear();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }

  /** Round-robin among authenticated apps that registered `verb` (drachtio-server does the same). */
  select(verb: string): AppClient | undefined {
    const candidates: AppClient[] = [];
    for (const c of this.clients) if (c.authenticated && !c.closed && c.verbs.has(verb)) candidates.push(c);
    if (candidates.length === 0) return undefined;
    if (candidates.length === 1) return candidates[0];
    const n = (this.rr.get(verb) ?? 0) % candidates.length;
    this.rr.set(verb, n + 1);
    return candidates[n];
  }

  /** Answer to an app command: `response|<their msgId>|<text>`. */
  respond(client: AppClient, msgId: string, text: string): void {
    client.send(`response|${msgId}|${text}`);
  }

  private accept(sock: net.Socket): void {
    sock.setNoDelay(true);
    sock.setKeepAlive(true, 30_000);
    const log = this.opts.logger;
    const client = {
      id: this.nextId++,
      remote: `${sock.remoteAddress}:${sock.remotePort}`,
      authenticated: false,
      verbs: new Set<string>(),
      closed: false,
      sock,
      send(payload: string) {
        if (this.closed) return;
        const s = `${randomUUID()}|${payload}`;
        sock.write(`${Buffer.byteLength(s, 'utf8')}#${s}`);
      },
    };
    this.clients.add(client);
    log.info({ app: client.id, remote: client.remote }, 'app connected');

    let buf: Buffer = Buffer.alloc(0);
    sock.on('data', (chunk: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      while (buf.length) {
        const hash = buf.indexOf(35 /* # */);
        if (hash < 0) {
          if (buf.length > 12) return this.drop(client, 'missing length prefix');
          return;
        }
        const lenText = buf.toString('latin1', 0, hash);
        if (!/^\d{1,7}$/.test(lenText)) return this.drop(client, 'bad length prefix');
        const len = Number(lenText);
        if (len === 0 || len > MAX_FRAME) return this.drop(client, 'bad frame length');
        if (buf.length < hash + 1 + len) return;
        const frame = buf.toString('utf8', hash + 1, hash + 1 + len);
        buf = buf.subarray(hash + 1 + len);
        try {
          this.handle(client, frame);
        } catch (err) {
          log.error({ err, app: client.id }, 'error handling app command');
        }
        if (client.closed) return;
      }
    });
    sock.on('error', (err) => log.debug({ err, app: client.id }, 'app socket error'));
    sock.on('close', () => {
      client.closed = true;
      this.clients.delete(client);
      log.info({ app: client.id }, 'app disconnected');
      this.onClientGone(client);
    });
  }

  private drop(client: AppClient & { sock: net.Socket }, why: string): void {
    this.opts.logger.warn({ app: client.id, why }, 'closing app connection: invalid frame');
    client.closed = true;
    client.sock.destroy();
  }

  private handle(client: AppClient & { sock: net.Socket }, frame: string): void {
    const nl = frame.indexOf('\r\n');
    const leader = nl < 0 ? frame : frame.slice(0, nl);
    const body = nl < 0 ? '' : frame.slice(nl + 2);
    const tokens = leader.split('|');
    const msgId = tokens[0] ?? '';
    const type = tokens[1] ?? '';

    if (type === 'authenticate') {
      if (this.secretMatches(tokens[2] ?? '')) {
        client.authenticated = true;
        this.opts.logger.info({ app: client.id }, 'app authenticated');
        this.respond(client, msgId, `OK|${this.opts.hostports()}|${ENGINE_VERSION}`);
      } else {
        // Never log the offered secret.
        this.opts.logger.warn({ app: client.id, remote: client.remote }, 'app refused: incorrect secret');
        this.respond(client, msgId, 'NO|incorrect secret');
        client.closed = true;
        client.sock.end();
      }
      return;
    }
    if (!client.authenticated) {
      this.respond(client, msgId, 'NO|not authenticated');
      client.closed = true;
      client.sock.end();
      return;
    }
    switch (type) {
      case 'route': {
        const verb = (tokens[2] ?? '').toLowerCase();
        if (!verb) return this.respond(client, msgId, 'NO|Route request includes unsupported verb');
        client.verbs.add(verb);
        this.opts.logger.debug({ app: client.id, verb }, 'route registered');
        return this.respond(client, msgId, 'OK');
      }
      case 'remove_route':
        client.verbs.delete((tokens[2] ?? '').toLowerCase());
        return this.respond(client, msgId, 'OK');
      case 'ping':
        return this.respond(client, msgId, 'OK');
      case 'sip':
        return this.onSip(client, msgId, tokens, body);
      case 'proxy':
        return this.onProxy(client, msgId, tokens, body);
      default:
        this.opts.logger.warn({ app: client.id, type }, 'unknown app command');
        return this.respond(client, msgId, 'NO|Unknown message type');
    }
  }

  private secretMatches(offered: string): boolean {
    const h = createHash('sha256').update(offered).digest();
    return timingSafeEqual(h, this.secretHash);
  }
}
