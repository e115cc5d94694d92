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

export function udpPortIsFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket('udp4');
    socket.once('error', () => resolve(false));
    socket.bind(port, host, () => socket.close(() => resolve(true)));
  });
}

/**
 * A port that is free on 127.0.0.1 right now, for TCP and, with `udp: true`, for UDP too (SIP
 * listens on both with one number): the engine's port 0, and tests, so that ports someone else
 * holds never matter.
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
