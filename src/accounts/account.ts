/**
 * The account as the edge reads it, and its Redis layout.
 *
 * One hash per account, `account:{id}`, written by operators (`credit-edge account set`) and the
 * credit controller, read by the edge from the local replicas:
 *
 * | field               | meaning                                              | values            |
 * | ------------------- | ---------------------------------------------------- | ----------------- |
 * | enabled             | the operator's switch; required                      | `1` / `0`         |
 * | credit_blocked      | set by the credit controller; absent means `0`       | `1` / `0`         |
 * | credit_block_reason | why the controller blocked (for people)              | text              |
 * | balance             | prepaid credit left; absent means not credit-limited | decimal           |
 * | rate                | price per minute of one call                         | decimal >= 0      |
 * | max_channels        | most calls in progress at once; absent: no limit     | integer >= 0      |
 * | max_cps             | most calls admitted in any second; absent: the config's default (`limits.default_max_cps`) | integer >= 0 |
 * | route               | route group the calls go to; absent: `default`       | name              |
 * | sip_password        | digest password, when the account authenticates      | text (secret)     |
 *
 * Any other field is kept out of the way (forward compatible). A field that does not parse makes
 * the whole account *unknown* (never blocked): see `parseAccount`.
 */
export interface Account {
  id: string;
  enabled: boolean;
  creditBlocked: boolean;
  creditBlockReason?: string;
  /** Prepaid balance; undefined when the account is not credit-limited. */
  balance?: number;
  /** Price per minute of one call. */
  rate?: number;
  /** Most calls in progress at once; undefined means no limit. */
  maxChannels?: number;
  /** Most calls admitted in any one second; undefined: the deployment's default. */
  maxCps?: number;
  /** Route group name. */
  route: string;
  /** Digest password; a secret: never logged (the logger redacts `sipPassword`). */
  sipPassword?: string;
}

export const DEFAULT_ROUTE_GROUP = 'default';


export class BadAccountValue extends Error {
  constructor(
    readonly field: string,
    readonly value: string | undefined,
  ) {
    super(value === undefined ? `field ${field} is missing` : `field ${field} has a bad value ${JSON.stringify(value.slice(0, 64))}`);
    this.name = 'BadAccountValue';
  }
}

const DECIMAL = /^-?\d{1,15}(\.\d{1,9})?$/;
const COUNT = /^\d{1,9}$/;
const ROUTE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

function flag(fields: Record<string, string>, name: string, fallback?: boolean): boolean {
  const raw = fields[name];
  if (raw === undefined && fallback !== undefined) return fallback;
  if (raw === '1') return true;
  if (raw === '0') return false;
  throw new BadAccountValue(name, raw);
}

function optional<T>(fields: Record<string, string>, name: string, pattern: RegExp, convert: (raw: string) => T): T | undefined {
  const raw = fields[name];
  if (raw === undefined) return undefined;
  if (!pattern.test(raw)) throw new BadAccountValue(name, raw);
  return convert(raw);
}

/**
 * Parses an account hash as HGETALL returns it (a non-empty object). Throws BadAccountValue
 * naming the first field that does not parse; callers turn that into *unknown*.
 */
export function parseAccount(id: string, fields: Record<string, string>): Account {
  const account: Account = {
    id,
    enabled: flag(fields, 'enabled'),
    creditBlocked: flag(fields, 'credit_blocked', false),
    route: optional(fields, 'route', ROUTE_NAME, String) ?? DEFAULT_ROUTE_GROUP,
  };
  const balance = optional(fields, 'balance', DECIMAL, Number);
  if (balance !== undefined) account.balance = balance;
  const rate = optional(fields, 'rate', DECIMAL, Number);
  if (rate !== undefined) {
    if (rate < 0) throw new BadAccountValue('rate', fields.rate);
    account.rate = rate;
  }
  const maxChannels = optional(fields, 'max_channels', COUNT, Number);
  if (maxChannels !== undefined) account.maxChannels = maxChannels;
  const maxCps = optional(fields, 'max_cps', COUNT, Number);
  if (maxCps !== undefined) account.maxCps = maxCps;
  if (fields.credit_block_reason !== undefined) account.creditBlockReason = fields.credit_block_reason;
  if (fields.sip_password !== undefined) account.sipPassword = fields.sip_password;
  return account;
}

/** What an operator or a seed file gives for an account. */
export interface AccountInput {
  enabled: boolean;
  credit_blocked?: boolean;
  credit_block_reason?: string;
  balance?: number | string;
  rate?: number | string;
  max_channels?: number;
  max_cps?: number;
  route?: string;
  /** Extra fields written as they are (e.g. raw bad values in tests). */
  [field: string]: unknown;
}

/** Turns account input into the hash fields to HSET; round-trips through parseAccount. */
export function encodeAccount(input: AccountInput): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const [name, value] of Object.entries(input)) {
    if (value === undefined) continue;
    fields[name] = typeof value === 'boolean' ? (value ? '1' : '0') : String(value);
  }
  return fields;
}
