import dgram from 'node:dgram';
import net from 'node:net';
import { randomBytes } from 'node:crypto';

/**
 * Raw SIP over UDP/TCP for tests that need to send what no well-behaved UA would (malformed
 * input) or a quick OPTIONS: sends bytes, collects what comes back for a while.
 */

export interface RawReply {
  status: number;
  reason: string;
  text: string;
}

/** Each reply with its whole text (status line to the next reply), for header checks. */
function parseReplies(text: string): RawReply[] {
  const matches = [...text.matchAll(/SIP\/2\.0 (\d{3}) ([^\r\n]*)\r\n/g)];
  return matches.map((m, i) => ({
    status: Number(m[1]),
    reason: m[2]!,
    text: text.slice(m.index, matches[i + 1]?.index ?? text.length),
  }));
}

/** Sends one datagram from a fresh socket and gathers replies until a final arrives or waitMs. */
export async function udpExchange(target: { host: string; port: number }, data: string | Buffer, waitMs = 1500): Promise<RawReply[]> {
  const sock = dgram.createSocket('udp4');
  const replies: RawReply[] = [];
  try {
    await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', () => resolve()));
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, waitMs);
      sock.on('message', (buf) => {
        const r = parseReplies(buf.toString('utf8'));
        replies.push(...r);
        if (r.some((x) => x.status >= 200)) {
          clearTimeout(timer);
          resolve();
        }
      });
      sock.send(data, target.port, target.host);
    });
  } finally {
    sock.close();
  }
  return replies;
}

/** Same over a fresh TCP connection; also reports whether the engine closed the connection. */
export async function tcpExchange(
  target: { host: string; port: number },
  data: string | Buffer,
  waitMs = 1500,
): Promise<{ replies: RawReply[]; closed: boolean }> {
  const sock = net.connect({ host: target.host, port: target.port });
  let text = '';
  let closed = false;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, waitMs);
    sock.on('data', (b) => {
      text += b.toString('utf8');
      if (parseReplies(text).some((x) => x.status >= 200)) {
        clearTimeout(timer);
        resolve();
      }
    });
    sock.on('close', () => {
      closed = true;
      clearTimeout(timer);
      resolve();
    });
    sock.on('error', () => {});
    sock.write(data);
  });
  sock.destroy();
  return { replies: parseReplies(text), closed };
}

/** A well-formed out-of-dialog request (OPTIONS by default) toward target. */
export function request(
  target: { host: string; port: number },
  opts: { method?: string; user?: string; transport?: 'UDP' | 'TCP'; extra?: string[]; omit?: string[]; body?: string; contentLength?: string } = {},
): string {
  const method = opts.method ?? 'OPTIONS';
  const callId = randomBytes(8).toString('hex');
  const ruri = `sip:${opts.user ?? 'probe'}@${target.host}:${target.port}`;
  const body = opts.body ?? '';
  const headers: [string, string][] = [
    ['Via', `SIP/2.0/${opts.transport ?? 'UDP'} 127.0.0.1:5999;branch=z9hG4bK${randomBytes(6).toString('hex')};rport`],
    ['From', `<sip:probe@127.0.0.1>;tag=${randomBytes(4).toString('hex')}`],
    ['To', `<${ruri}>`],
    ['Call-ID', callId],
    ['CSeq', `1 ${method}`],
    ['Max-Forwards', '70'],
    ...(opts.extra ?? []).map((l): [string, string] => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]),
    ['Content-Length', opts.contentLength ?? String(Buffer.byteLength(body))],
  ];
  const lines = headers.filter(([n]) => !(opts.omit ?? []).includes(n)).map(([n, v]) => `${n}: ${v}`);
  return `${method} ${ruri} SIP/2.0\r\n${lines.join('\r\n')}\r\n\r\n${body}`;
}
