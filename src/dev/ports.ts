import fs from 'node:fs';
import { tcpPortIsFree, udpPortIsFree } from '../engine/free-port.js';

export { freePort, tcpPortIsFree } from '../engine/free-port.js';

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
