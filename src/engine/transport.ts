import dgram from 'node:dgram';
import net from 'node:net';
import type { Logger } from '../log.js';
import type { Protocol } from './sip.js';

/**
 * SIP over UDP and TCP on one address and port number. Hands complete messages (one datagram, or
 * one Content-Length-framed chunk of a TCP stream) upward with where they came from, and sends
 * text to an address over either protocol. Knows nothing of SIP beyond framing.
 */

export interface Source {
  protocol: Protocol;
  address: string;
  port: number;
  /** The TCP connection a message came in on: responses go back on it. */
  conn?: net.Socket;
}

export type MessageHandler = (raw: string, byteLength: number, source: Source) => void;
/** Input that cannot be framed at all (TCP stream garbage, oversize): raw text for a last 400 try. */
export type FramingErrorHandler = (raw: string, source: Source, why: string) => void;

export interface TransportOptions {
  host: string;
  port: number;
  logger: Logger;
  /** Largest message accepted on a TCP stream (headers plus body). */
  maxMessageBytes: number;
}

const HEADER_END = Buffer.from('\r\n\r\n');
const CONTENT_LENGTH = /\r\n(?:content-length|l)[ \t]*:[ \t]*([^\r\n]*)/i;

export class Transport {
  private udp?: dgram.Socket;
  private tcp?: net.Server;
  /** Open TCP connections by "address:port" of the peer, for reuse in both directions. */
  private readonly conns = new Map<string, net.Socket>();
  onMessage: MessageHandler = () => {};
  onFramingError: FramingErrorHandler = () => {};
  port = 0;

  constructor(private readonly opts: TransportOptions) {}

  async start(): Promise<void> {
    const { host } = this.opts;
    const tcp = net.createServer((sock) => this.adopt(sock));
    tcp.on('error', (err) => this.opts.logger.error({ err }, 'sip tcp server error'));
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen(this.opts.port, host, () => {
        tcp.off('error', reject);
        resolve();
      });
    });
    this.tcp = tcp;
    this.port = (tcp.address() as net.AddressInfo).port;

    const udp = dgram.createSocket({ type: net.isIPv6(host) ? 'udp6' : 'udp4', recvBufferSize: 4 << 20 });
    udp.on('message', (buf, rinfo) => {
      // latin1 would be cheaper, but SIP bodies and display names may be UTF-8.
      const raw = buf.toString('utf8');
      this.onMessage(raw, buf.length, { protocol: 'udp', address: rinfo.address, port: rinfo.port });
    });
    udp.on('error', (err) => this.opts.logger.error({ err }, 'sip udp socket error'));
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(this.port, host, () => {
        udp.off('error', reject);
        resolve();
      });
    });
    this.udp = udp;
  }

  async stop(): Promise<void> {
    for (const c of this.conns.values()) c.destroy();
    this.conns.clear();
    await Promise.all([
      new Promise<void>((r) => (this.tcp ? this.tcp.close(() => r()) : r())),
      new Promise<void>((r) => {
        if (!this.udp) return r();
        try {
          this.udp.close(() => r());
        } catch {
          r();
        }
      }),
    ]);
  }

  /** Sends one message. For TCP, reuses the given or a pooled connection, or opens one. */
  send(text: string, dest: { protocol: Protocol; address: string; port: number; conn?: net.Socket }): void {
    if (dest.protocol === 'udp') {
      this.udp?.send(text, dest.port, dest.address, (err) => {
        if (err) this.opts.logger.warn({ err, dest: `${dest.address}:${dest.port}` }, 'udp send failed');
      });
      return;
    }
    let conn = dest.conn && !dest.conn.destroyed ? dest.conn : this.conns.get(`${dest.address}:${dest.port}`);
    if (!conn || conn.destroyed) {
      conn = net.connect({ host: dest.address, port: dest.port });
      this.adopt(conn, `${dest.address}:${dest.port}`);
    }
    conn.write(text);
  }

  private adopt(sock: net.Socket, key?: string): void {
    const peer = key ?? `${sock.remoteAddress}:${sock.remotePort}`;
    this.conns.set(peer, sock);
    sock.setNoDelay(true);
    sock.setKeepAlive(true, 30_000);
    let buf: Buffer = Buffer.alloc(0);
    const source = (): Source => ({
      protocol: 'tcp',
      address: sock.remoteAddress ?? peer.slice(0, peer.lastIndexOf(':')),
      port: sock.remotePort ?? Number(peer.slice(peer.lastIndexOf(':') + 1)),
      conn: sock,
    });
    sock.on('data', (chunk: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      for (;;) {
        // Keep-alive CRLFs between messages (RFC 5626) are skipped.
        let skip = 0;
        while (skip < buf.length && (buf[skip] === 13 || buf[skip] === 10)) skip++;
        if (skip) buf = buf.subarray(skip);
        if (!buf.length) return;
        const end = buf.indexOf(HEADER_END);
        if (end < 0) {
          if (buf.length > this.opts.maxMessageBytes) return this.fail(sock, buf, source(), 'headers exceed limit');
          return;
        }
        const head = buf.toString('utf8', 0, end);
        const m = CONTENT_LENGTH.exec(head);
        const clText = m?.[1]?.trim() ?? '0';
        if (!/^\d{1,9}$/.test(clText)) return this.fail(sock, buf, source(), 'bad Content-Length on stream');
        const total = end + 4 + Number(clText);
        if (total > this.opts.maxMessageBytes) return this.fail(sock, buf, source(), 'message exceeds limit');
        if (buf.length < total) return;
        const msg = buf.subarray(0, total);
        buf = buf.subarray(total);
        this.onMessage(msg.toString('utf8'), msg.length, source());
      }
    });
    sock.on('error', (err) => this.opts.logger.debug({ err, peer }, 'sip tcp connection error'));
    sock.on('close', () => {
      if (this.conns.get(peer) === sock) this.conns.delete(peer);
    });
  }

  /** A stream that cannot be framed cannot be resynchronized: report it, then close. */
  private fail(sock: net.Socket, buf: Buffer, source: Source, why: string): void {
    this.onFramingError(buf.toString('utf8', 0, Math.min(buf.length, this.opts.maxMessageBytes)), source, why);
    sock.end();
    setTimeout(() => sock.destroy(), 1000).unref();
    sock.removeAllListeners('data');
  }
}
