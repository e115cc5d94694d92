import fs from 'node:fs';
import net from 'node:net';
import dgram from 'node:dgram';

/** Asks the kernel for a free TCP port on 127.0.0.1. */
function freeTcpPort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, host, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function udpPortIsFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket('udp4');
    socket.once('error', () => resolve(false));
    socket.bind(port, host, () => socket.close(() => resolve(true)));
  });
}

/**
 * A port that is free on 127.0.0.1 right now, for TCP and, with `udp: true`, for UDP too (SIP
 * listens on both with one number). Tests use it so that ports someone else holds never matter.
 */
export async function freePort(options: { udp?: boolean; host?: string } = {}): Promise<number> {
  const host = options.host ?? '127.0.0.1';
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await freeTcpPort(host);
    if (!options.udp || (await udpPortIsFree(host, port))) return port;
  }
  throw new Error('no free port found after 50 attempts');
}

/** Whether `port` is free for TCP on `host` right now. */
export function tcpPortIsFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

/** The low end of the kernel's ephemeral port range (Linux; 32768 when it cannot be read). */
function ephemeralLow(): number {
  try {
    const low = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 10_001 ? low : 32768;
  } catch {
    return 32768;
  }
}

/**
 * A free port chosen *below* the kernel's ephemeral range, for a port that must be fixed before
 * the process that listens on it starts (seconds later): a port from freePort() can meanwhile be
 * handed to anyone's bind(0) or outgoing connection, one below that range cannot.
 */
export async function freePortAhead(options: { udp?: boolean; host?: string } = {}): Promise<number> {
  const host = options.host ?? '127.0.0.1';
  const high = ephemeralLow() - 1;
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 10_000 + Math.floor(Math.random() * (high - 10_000));
    if ((await tcpPortIsFree(host, port)) && (!options.udp || (await udpPortIsFree(host, port)))) return port;
  }
  throw new Error('no free port found below the ephemeral range after 50 attempts');
}
