import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { isLoopback } from '../config/schema.js';
import type { Logger } from '../log.js';
import { splitHostPort } from '../config/host-port.js';

/**
 * The admin HTTP API (node:http, JSON). /healthz and /metrics are open (probes and Prometheus);
 * everything else needs `Authorization: Bearer <token>` whenever a token is set, and a token must
 * be set to listen beyond loopback. The token is never logged nor echoed.
 */

export interface AdminReply {
  status: number;
  body: unknown;
}

export type AdminHandler = (params: { match: RegExpExecArray; body: string }) => Promise<AdminReply> | AdminReply;

export interface AdminOptions {
  /** host:port; port 0 picks a free one. */
  listen: string;
  /** Read at each request, so a reload can change it. */
  token: () => string | undefined;
  logger: Logger;
}

export interface AdminServer {
  readonly host: string;
  readonly port: number;
  /** Adds a route (exact method, anchored path pattern); later components add theirs. */
  route(method: 'GET' | 'POST', path: RegExp, handler: AdminHandler): void;
  /** Adds a registry to what /metrics serves (e.g. the credit controller's). */
  addRegistry(registry: Registry): void;
  stop(): Promise<void>;
}

const OPEN_PATHS = new Set(['/healthz', '/metrics']);
const MAX_BODY_BYTES = 64 * 1024;

export async function startAdmin(options: AdminOptions): Promise<AdminServer> {
  const { logger } = options;
  const { host, port } = splitHostPort(options.listen);
  if (!isLoopback(options.listen) && !options.token()) {
    throw new Error(`admin API: refusing to listen on ${options.listen} (beyond loopback) without admin.token`);
  }
  const routes: { method: string; path: RegExp; handler: AdminHandler }[] = [];
  const registries: Registry[] = [];

  routes.push({ method: 'GET', path: /^\/healthz$/, handler: () => ({ status: 200, body: { status: 'ok' } }) });

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://admin');
    const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      const text = typeof body === 'string' ? body : JSON.stringify(body, null, 2) + '\n';
      res.writeHead(status, { 'Content-Type': typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/json', ...headers });
      res.end(text);
    };
    const token = options.token();
    if (token !== undefined && !OPEN_PATHS.has(url.pathname) && !bearerMatches(req.headers.authorization, token)) {
      logger.warn({ path: url.pathname, from: req.socket.remoteAddress }, 'admin request refused: missing or wrong token');
      return send(401, { error: 'a bearer token is required' }, { 'WWW-Authenticate': 'Bearer' });
    }
    if (url.pathname === '/metrics' && req.method === 'GET') {
      void metricsText(registries).then(
        (text) => send(200, text, { 'Content-Type': registries[0]?.contentType ?? 'text/plain; version=0.0.4' }),
        (err: unknown) => send(500, { error: (err as Error).message }),
      );
      return;
    }
    const matching = routes.filter((r) => r.path.test(url.pathname));
    const chosen = matching.find((r) => r.method === req.method);
    if (!chosen) return send(matching.length > 0 ? 405 : 404, { error: matching.length > 0 ? 'method not allowed' : 'not found' });

    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      body += chunk;
      if (body.length > MAX_BODY_BYTES) req.destroy();
    });
    req.on('end', () => {
      void (async () => {
        try {
          const reply = await chosen.handler({ match: chosen.path.exec(url.pathname)!, body });
          send(reply.status, reply.body);
        } catch (err) {
          logger.error({ err, path: url.pathname }, 'admin request failed');
          send(500, { error: (err as Error).message });
        }
      })();
    });
  });
  // Slow or idle clients must not pile up sockets on an operator port.
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;
  logger.info({ listen: `${host}:${bound.port}`, auth: options.token() === undefined ? 'none' : 'bearer token' }, 'admin API listening');

  return {
    host,
    port: bound.port,
    route: (method, path, handler) => routes.push({ method, path, handler }),
    addRegistry: (registry) => registries.push(registry),
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Compares hashes so the time taken says nothing about the token. */
function bearerMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer\s+(\S+)$/i.exec(header ?? '');
  if (!m) return false;
  const hash = (s: string) => crypto.createHash('sha256').update(s).digest();
  return crypto.timingSafeEqual(hash(m[1]!), hash(token));
}

async function metricsText(registries: Registry[]): Promise<string> {
  const texts = await Promise.all(registries.map((r) => r.metrics()));
  return texts.join('\n');
}
