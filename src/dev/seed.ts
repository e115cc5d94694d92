import fs from 'node:fs';
import { parse } from 'yaml';
import { z } from 'zod';
import { type AccountInput } from '../accounts/account.js';
import { ACCOUNT_ID_PATTERN } from '../redis/keys.js';

/**
 * Seed files for the dev topology: YAML or JSON (JSON is YAML) of the form
 * `{ accounts: { <id>: { enabled: true, balance: 100, rate: 0.01, max_channels: 10, route: 'default' } } }`.
 * Only `enabled` is required; other fields are written as given (see encodeAccount).
 */

const flag = z.union([z.boolean(), z.literal(0), z.literal(1)]).transform((v) => v === true || v === 1);

const accountSchema = z.looseObject({
  enabled: flag,
  credit_blocked: flag.optional(),
  credit_block_reason: z.string().optional(),
  balance: z.union([z.number(), z.string()]).optional(),
  rate: z.union([z.number(), z.string()]).optional(),
  max_channels: z.number().int().nonnegative().optional(),
  max_cps: z.number().int().nonnegative().optional(),
  route: z.string().optional(),
});

const seedSchema = z.object({
  accounts: z.record(z.string().regex(ACCOUNT_ID_PATTERN, 'not a valid account id'), accountSchema),
});

export type SeedAccounts = Record<string, AccountInput>;

/** Validates parsed seed data; throws naming the offending path. */
export function parseSeed(data: unknown, source = 'seed'): SeedAccounts {
  const result = seedSchema.safeParse(data);
  if (!result.success) {
    const issue = result.error.issues[0];
    const where = issue ? issue.path.join('.') : '';
    throw new Error(`${source}: ${where ? where + ': ' : ''}${issue?.message ?? 'invalid seed data'}`);
  }
  return result.data.accounts as SeedAccounts;
}

/** Reads and validates a YAML or JSON seed file. */
export function loadSeedFile(file: string): SeedAccounts {
  return parseSeed(parse(fs.readFileSync(file, 'utf8')), file);
}
