import { describe, expect, it } from 'vitest';
import { FAULT_KINDS, planFaults, planOperatorActions } from '../../bench/soak/schedule.js';

const window = { seed: 1, durationS: 1800, quietStartS: 20, quietEndS: 90, meanGapS: 20 };

describe('the soak schedule', () => {
  it('is a function of the seed: the same seed gives the same faults and actions, another seed others', () => {
    expect(planFaults(window)).toEqual(planFaults({ ...window }));
    expect(planOperatorActions(window)).toEqual(planOperatorActions({ ...window }));
    expect(planFaults({ ...window, seed: 2 })).not.toEqual(planFaults(window));
  });

  it('places events only between the quiet start and the quiet end, about one per mean gap', () => {
    const faults = planFaults(window);
    expect(faults.every((f) => f.atS >= 0 && f.atS < window.durationS - window.quietEndS)).toBe(true);
    expect(faults.length).toBeGreaterThan(40);
    expect(faults.length).toBeLessThan(130);
    expect([...faults].sort((a, b) => a.atS - b.atS)).toEqual(faults);
  });

  it('meets every fault kind once per round, in a shuffled order', () => {
    const faults = planFaults(window);
    const firstRound = faults.slice(0, FAULT_KINDS.length).map((f) => f.kind);
    expect(new Set(firstRound)).toEqual(new Set(FAULT_KINDS));
    expect(firstRound).not.toEqual(planFaults({ ...window, seed: 5 }).slice(0, FAULT_KINDS.length).map((f) => f.kind));
  });

  it('holds each fault for a bounded time and picks its target from [0, 1)', () => {
    for (const f of planFaults(window)) {
      expect(f.holdS).toBeGreaterThan(0);
      expect(f.holdS).toBeLessThanOrEqual(10);
      expect(f.pick).toBeGreaterThanOrEqual(0);
      expect(f.pick).toBeLessThan(1);
    }
  });
});
