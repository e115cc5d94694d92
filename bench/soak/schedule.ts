import { prng } from '../accounts.js';
import type { FaultKind, OperatorActionKind } from './history.js';

/**
 * The soak's random schedules, pure functions of the seed: the same seed gives the same faults at
 * the same offsets, and the same operator actions. Faults arrive with exponential gaps (a Poisson
 * process), so they overlap as real outages do; the kinds come in rounds, each kind once per round
 * in a shuffled order, so a short run still meets every kind.
 */

export const FAULT_KINDS: FaultKind[] = [
  'replica-restart-empty',
  'replica-freeze',
  'master-slow',
  'master-freeze-failover',
  'master-restart-empty',
  'flushall',
  'mass-delete',
  'edge-kill',
  'edge-restart',
  'sip-server-restart',
  'controller-kill',
  'replica-cut',
  'cut-edge-kill',
  'cut-controller-kill',
  'cut-failover',
];

export interface PlannedFault {
  /** Seconds from the start of the calls. */
  atS: number;
  kind: FaultKind;
  /** How long the fault is held before it is undone (its own restore time comes on top). */
  holdS: number;
  /** In [0, 1): chooses the target among those available when the fault starts. */
  pick: number;
}

/** Hold time ranges per kind, seconds. */
const HOLD_S: Record<FaultKind, [number, number]> = {
  'replica-restart-empty': [1, 3],
  'replica-freeze': [2, 8],
  // Bursts below Sentinel's down-after (1 s here): latency, not a failover.
  'master-slow': [0.3, 0.8],
  'master-freeze-failover': [2, 5],
  'master-restart-empty': [2, 8],
  flushall: [2, 8],
  'mass-delete': [2, 6],
  'edge-kill': [1, 5],
  'edge-restart': [1, 5],
  'sip-server-restart': [1, 3],
  'controller-kill': [2, 8],
  'replica-cut': [3, 10],
  'cut-edge-kill': [1, 5],
  'cut-controller-kill': [2, 8],
  'cut-failover': [2, 5],
};

export interface ScheduleWindow {
  seed: number;
  /** The calls' duration, seconds. */
  durationS: number;
  /** Healthy seconds before the first event. */
  quietStartS: number;
  /** Seconds at the end with no new event, for the last ones to be undone and the system to settle. */
  quietEndS: number;
  /** Mean gap between events, seconds. */
  meanGapS: number;
}

export function planFaults(o: ScheduleWindow & { kinds?: FaultKind[] }): PlannedFault[] {
  const rand = prng(o.seed * 7919 + 1);
  const kinds = o.kinds ?? FAULT_KINDS;
  const out: PlannedFault[] = [];
  let round: FaultKind[] = [];
  for (const atS of arrivals(rand, o)) {
    if (round.length === 0) round = shuffle(kinds, rand);
    const kind = round.pop()!;
    const [lo, hi] = HOLD_S[kind];
    out.push({ atS, kind, holdS: Math.round((lo + rand() * (hi - lo)) * 10) / 10, pick: rand() });
  }
  return out;
}

export interface PlannedAction {
  atS: number;
  kind: OperatorActionKind;
  pick: number;
}

/** Operator actions, their kinds weighted as an operator's day: top-ups first, a reload now and then. */
export function planOperatorActions(o: ScheduleWindow): PlannedAction[] {
  const rand = prng(o.seed * 104_729 + 3);
  const weights: [OperatorActionKind, number][] = [
    ['top-up', 0.3],
    ['block', 0.15],
    ['unblock', 0.15],
    ['delete', 0.1],
    ['create', 0.15],
    ['config-reload', 0.15],
  ];
  return arrivals(rand, o).map((atS) => {
    let u = rand();
    let kind = weights[0]![0];
    for (const [k, w] of weights) {
      kind = k;
      if ((u -= w) < 0) break;
    }
    return { atS, kind, pick: rand() };
  });
}

function arrivals(rand: () => number, o: ScheduleWindow): number[] {
  const out: number[] = [];
  const end = o.durationS - o.quietEndS;
  for (let t = o.quietStartS - Math.log(1 - rand()) * o.meanGapS * 0.5; t < end; t += -Math.log(1 - rand()) * o.meanGapS) out.push(Math.round(t * 10) / 10);
  return out;
}

function shuffle<T>(items: T[], rand: () => number): T[] {
  const a = [...items];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}
