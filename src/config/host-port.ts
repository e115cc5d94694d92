/** `host:port` (the config's way of writing an address; IPv6 hosts in brackets) split in two. */
export function splitHostPort(value: string): { host: string; port: number } {
  const at = value.lastIndexOf(':');
  return { host: value.slice(0, at), port: Number(value.slice(at + 1)) };
}

/** splitHostPort for input that has not been validated yet (CLI options): throws on nonsense. */
export function parseHostPort(value: string): { host: string; port: number } {
  const address = splitHostPort(value);
  if (!address.host || !Number.isInteger(address.port) || address.port < 0 || address.port > 65535) {
    throw new Error(`expected host:port, got "${value}"`);
  }
  return address;
}
