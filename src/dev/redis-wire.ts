import net from 'node:net';

/**
 * Tiny raw-RESP helpers for the moments a full client gets in the way: readiness probes (no retry
 * machinery, one answer or a timeout) and fire-and-forget commands that block the server.
 */

function encode(args: readonly string[]): string {
  return `*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('');
}

/**
 * Sends one command on a fresh connection and resolves with what `read` makes of the bytes
 * received so far (undefined: not complete yet; an Error: a bad reply), or rejects on a
 * connection error or timeout. No retries, no client state: readiness probes and the like.
 */
function oneReply(host: string, port: number, args: readonly string[], timeoutMs: number, read: (received: Buffer) => string | Error | undefined): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    let received = Buffer.alloc(0);
    const done = (result: string | Error) => {
      clearTimeout(timer);
      socket.destroy();
      if (result instanceof Error) reject(result);
      else resolve(result);
    };
    const timer = setTimeout(() => done(new Error(`no reply from ${host}:${port} within ${timeoutMs} ms`)), timeoutMs);
    socket.once('connect', () => socket.write(encode(args)));
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const result = read(received);
      if (result !== undefined) done(result);
    });
    socket.once('error', (err) => done(err));
    socket.once('close', () => done(new Error(`connection to ${host}:${port} closed without reply`)));
  });
}

/** The first line of the reply ("+PONG", "-LOADING ..."). */
export function firstReplyLine(host: string, port: number, args: readonly string[], timeoutMs: number): Promise<string> {
  return oneReply(host, port, args, timeoutMs, (received) => {
    const end = received.indexOf('\r\n');
    return end < 0 ? undefined : received.subarray(0, end).toString('utf8');
  });
}

/** A bulk-string reply (e.g. INFO); any other reply is an error. */
export function bulkReply(host: string, port: number, args: readonly string[], timeoutMs: number): Promise<string> {
  return oneReply(host, port, args, timeoutMs, (received) => {
    const end = received.indexOf('\r\n');
    if (end < 0) return undefined;
    const head = received.subarray(0, end).toString('utf8');
    if (!head.startsWith('$')) return new Error(`${host}:${port} answered ${head}`);
    const length = Number(head.slice(1));
    return received.length >= end + 2 + length ? received.subarray(end + 2, end + 2 + length).toString('utf8') : undefined;
  });
}

/**
 * Sends one command on its own connection and resolves once it is written, without waiting for the
 * reply (DEBUG SLEEP, DEBUG RELOAD). The socket is unref'd and dropped when the reply comes, so it
 * never holds the process open. The small settle delay lets the server read the command before
 * the caller sends anything else on another connection.
 */
export function sendAndForget(host: string, port: number, args: readonly string[], settleMs = 20): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    socket.unref();
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.write(encode(args), () => setTimeout(resolve, settleMs));
    });
    socket.on('data', () => socket.destroy());
    // After the write, errors (e.g. the node is killed mid-sleep) are expected and ignored.
    socket.on('error', () => undefined);
  });
}

/** Parses INFO output into a flat field map (section headers and blank lines dropped). */
export function parseInfo(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of text.split('\r\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const colon = line.indexOf(':');
    if (colon > 0) fields[line.slice(0, colon)] = line.slice(colon + 1);
  }
  return fields;
}

/** Turns a flat [k1, v1, k2, v2, ...] reply (SENTINEL MASTER, SENTINEL REPLICAS) into a map. */
export function pairsToMap(reply: unknown): Record<string, string> {
  const map: Record<string, string> = {};
  if (!Array.isArray(reply)) return map;
  for (let i = 0; i + 1 < reply.length; i += 2) map[String(reply[i])] = String(reply[i + 1]);
  return map;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Polls `check` until it returns a value other than undefined, or throws after `timeoutMs` with
 * `what` and the last error seen. Errors from `check` count as "not yet".
 */
export async function waitUntil<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const why = lastError instanceof Error ? `: ${lastError.message}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`);
    }
    await sleep(intervalMs);
  }
}
