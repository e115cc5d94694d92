import net from 'node:net';
import { parseAuthorization, type DigestCredentials } from './digest.js';

/**
 * Who is calling: the account an INVITE belongs to, found by the configured methods in order.
 * - `source`: the source address falls in a trunk's CIDR;
 * - `header`: a trusted header (default X-Account-Id), believed only from trusted sources;
 * - `digest`: SIP digest credentials (username = account id), checked once the account is read.
 * Nothing matched: the call is refused (403 Forbidden), or challenged when digest is configured.
 */
export type IdentifyMethod = 'source' | 'header' | 'digest';

export interface IdentifyOptions {
  order: IdentifyMethod[];
  header: string;
  trustedSources: string[];
  trunks: { cidr: string; account: string }[];
}

/** What identification needs of a request, whoever parsed it. */
export interface CallerView {
  sourceAddress: string;
  header(name: string): string | undefined;
}

export type Identity =
  | { kind: 'account'; accountId: string; method: 'source' | 'header' }
  /** Claims to be this account; the digest response is checked against its password. */
  | { kind: 'credentials'; accountId: string; credentials: DigestCredentials }
  /** Nothing matched, and digest is configured: ask for credentials. */
  | { kind: 'challenge' }
  | { kind: 'none' };

const ACCOUNT_ID = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$/;

/** Source addresses whose verdicts are remembered; past it the memory starts over (a flood of new addresses). */
const ADDRESSES_REMEMBERED = 4096;

export class Identifier {
  private readonly trusted: net.BlockList;
  private readonly trunks: { list: net.BlockList; account: string }[];
  /**
   * Per source address: is it trusted, and which trunk's account it is (null: none). Calls come
   * from few addresses (trunks, trusted proxies), and net.BlockList.check builds a SocketAddress
   * on every call. A config reload builds a new Identifier, so nothing outlives its lists.
   */
  private readonly trustedByAddress = new Map<string, boolean>();
  private readonly trunkByAddress = new Map<string, string | null>();

  constructor(private readonly options: IdentifyOptions) {
    this.trusted = blockList(options.trustedSources);
    this.trunks = options.trunks.map((trunk) => ({ list: blockList([trunk.cidr]), account: trunk.account }));
  }

  identify(caller: CallerView): Identity {
    for (const method of this.options.order) {
      const identity = this.byMethod(method, caller);
      if (identity) return identity;
    }
    return this.options.order.includes('digest') ? { kind: 'challenge' } : { kind: 'none' };
  }

  private byMethod(method: IdentifyMethod, caller: CallerView): Identity | undefined {
    switch (method) {
      case 'source': {
        const account = remembered(this.trunkByAddress, caller.sourceAddress, (address) => this.trunks.find((t) => matches(t.list, address))?.account ?? null);
        return account === null ? undefined : { kind: 'account', accountId: account, method: 'source' };
      }
      case 'header': {
        if (!remembered(this.trustedByAddress, caller.sourceAddress, (address) => matches(this.trusted, address))) return undefined;
        const value = caller.header(this.options.header)?.trim();
        return value && ACCOUNT_ID.test(value) ? { kind: 'account', accountId: value, method: 'header' } : undefined;
      }
      case 'digest': {
        const credentials = parseAuthorization(caller.header('Proxy-Authorization'));
        return credentials && ACCOUNT_ID.test(credentials.username) ? { kind: 'credentials', accountId: credentials.username, credentials } : undefined;
      }
    }
  }
}

/** The verdict for `address`, worked out once and then remembered (up to ADDRESSES_REMEMBERED addresses). */
function remembered<T>(memory: Map<string, T>, address: string, work: (address: string) => T): T {
  const known = memory.get(address);
  if (known !== undefined) return known;
  const verdict = work(address);
  if (memory.size >= ADDRESSES_REMEMBERED) memory.clear();
  memory.set(address, verdict);
  return verdict;
}

function blockList(cidrs: string[]): net.BlockList {
  const list = new net.BlockList();
  for (const cidr of cidrs) {
    const [address, bits] = cidr.split('/') as [string, string | undefined];
    const family = net.isIPv6(address) ? 'ipv6' : 'ipv4';
    if (!net.isIP(address)) throw new Error(`not an IP address or CIDR: ${cidr}`);
    list.addSubnet(address, bits === undefined ? (family === 'ipv4' ? 32 : 128) : Number(bits), family);
  }
  return list;
}

function matches(list: net.BlockList, address: string): boolean {
  if (!net.isIP(address)) return false;
  return list.check(address, net.isIPv6(address) ? 'ipv6' : 'ipv4');
}
