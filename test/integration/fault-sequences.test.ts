import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { readAccountState, type AccountSources } from '../../src/accounts/account-state.js';
import { StaleCache } from '../../src/accounts/stale-cache.js';
import { startTopology, type Topology } from '../../src/dev/topology.js';
import { decide } from '../../src/policy/decide.js';
import { DEFAULT_RULES } from '../../src/policy/rules.js';
import { readerOver, type ReaderUnderTest } from '../helpers/accounts.js';

/**
 * The incident's rule as a property over real Redis: whatever sequence of replica faults happens
 * (freeze, cut link, resync from empty, recover), an enabled account with credit is never refused
 * with a 403, and never read as absent.
 */

type Action = 'freeze' | 'thaw' | 'cut' | 'restore' | 'restart';
const RUNS = Number(process.env.FAULT_SEQUENCE_RUNS ?? 10);

let topology: Topology;
let r: ReaderUnderTest;
const rules = { ...DEFAULT_RULES, routes: { default: ['sip:127.0.0.1:5090'] } };

beforeAll(async () => {
  topology = await startTopology({ replicas: 2, sentinels: 0 });
  await topology.seed({ 'acct-ok': { enabled: true, balance: 50, rate: 0.01, max_channels: 10 } });
  // A probe every 100 ms: the pool learns of faults as it would in production, with races.
  r = await readerOver(topology.replicas, { probeIntervalMs: 100, replicaTimeoutMs: 20 });
});

afterAll(async () => {
  await r?.close();
  await topology?.stop();
});

async function warm(sources: AccountSources): Promise<void> {
  for (let attempt = 0; attempt < 50; attempt++) {
    if ((await readAccountState(sources, 'acct-ok')).lookup.outcome === 'found') return;
    await r.pool.waitInSync(2);
  }
  throw new Error('acct-ok was never found on healthy replicas');
}

/** Applies one fault step if it makes sense in the current state; says whether it did. */
async function apply(action: Action, i: number, frozen: boolean[], cut: boolean[]): Promise<boolean> {
  const node = topology.replicas[i]!;
  if (frozen[i]) {
    if (action !== 'thaw') return false;
    node.thaw();
    frozen[i] = false;
    return false;
  }
  switch (action) {
    case 'freeze':
      node.freeze();
      frozen[i] = true;
      return true;
    case 'cut':
      if (cut[i]) return false;
      await node.cutLink();
      cut[i] = true;
      return true;
    case 'restore':
      if (!cut[i]) return false;
      await node.restoreLink();
      cut[i] = false;
      return false;
    case 'restart':
      await node.restartFromEmpty({ holdSyncMs: 600 });
      cut[i] = false;
      return true;
    case 'thaw':
      return false;
  }
}

describe('sequences of replica faults', () => {
  it('never turn an enabled account with credit into a 403', async () => {
    const sources = r.sources(new StaleCache({ maxEntries: 10 }));
    const outcomes = new Map<string, number>();
    let faults = 0;
    const step = fc.record({ action: fc.constantFrom<Action>('freeze', 'thaw', 'cut', 'restore', 'restart'), replica: fc.constantFrom(0, 1) });
    const fault = fc.record({ action: fc.constantFrom<Action>('freeze', 'cut', 'restart'), replica: fc.constantFrom(0, 1) });

    await fc.assert(
      // Each sequence opens with a fault (nothing is frozen yet, so it always applies).
      fc.asyncProperty(fault, fc.array(step, { minLength: 1, maxLength: 4 }), async (first, rest) => {
        const steps = [first, ...rest];
        const frozen = [false, false];
        const cut = [false, false];
        // The cache is warm, as on any edge that has carried calls for the account (a busy
        // machine may time out a first read: warm-up retries).
        await warm(sources);
        try {
          for (const { action, replica: i } of steps) {
            if (await apply(action, i, frozen, cut)) faults++;
            for (let k = 0; k < 5; k++) {
              const state = await readAccountState(sources, 'acct-ok');
              const decision = decide({ ...state, callsInProgress: { known: true, count: 0 } }, rules);
              const label = state.lookup.outcome === 'unknown' ? `unknown:${state.lookup.cause}` : state.lookup.outcome;
              outcomes.set(label, (outcomes.get(label) ?? 0) + 1);
              expect(state.lookup.outcome, JSON.stringify(state.lookup)).not.toBe('absent');
              expect(decision.action === 'reject' ? decision.status : 'route').not.toBe(403);
              expect(decision.action, `cache is warm: ${JSON.stringify(decision)}`).toBe('route');
            }
          }
        } finally {
          for (const i of [0, 1]) {
            const node = topology.replicas[i]!;
            if (frozen[i]) node.thaw();
            if (cut[i]) await node.restoreLink();
            await node.waitForSync();
          }
          await r.pool.waitInSync(2);
        }
      }),
      { numRuns: RUNS, endOnFailure: true },
    );
    // The property was exercised through real faults, not only through healthy reads.
    expect(faults).toBeGreaterThanOrEqual(RUNS);
    console.log('lookup outcomes across fault sequences:', Object.fromEntries(outcomes));
  }, 180_000);
});
