import type { SoakCall } from './history.js';
import type { Interval } from './intervals.js';

/**
 * An account's calls in progress as an edge may have counted them (pure), for its channel limit.
 * The edge counts a call from the moment it routes it (about the INVITE) until it ends, and takes
 * the larger of its own count and the master's records, which also hold the calls of an edge that
 * was killed until the controller removes them. The checker wants the most the edge could have
 * counted, so every doubt widens a call's span.
 */

/** An edge routed it: connected, or an answer from a carrier with no decision of an edge's own, or ringing with no final. */
export function wasRouted(c: SoakCall): boolean {
  if (c.connectedMs !== undefined) return true;
  if (c.decision !== undefined) return false;
  return c.edge !== undefined || (c.status === undefined && c.answerMs !== undefined);
}

/**
 * From the INVITE to the latest it may still have counted: its end (BYE), or the end of the run
 * when no end was traced (a carrier's rejection's own instant is not traced), or later when its
 * record outlived its edge.
 */
export function countedSpan(c: SoakCall, endMs: number, keptUntilMs: number): Interval {
  return { from: c.inviteMs, to: Math.max(c.endedMs ?? endMs, keptUntilMs) };
}

/** The most spans that overlap at one instant of [from, to]. */
export function mostAtOnce(spans: readonly Interval[], from: number, to: number): number {
  // +1 at a span's start (clipped to the window), -1 just after its end; starts before ends at the same instant.
  const events: [number, number][] = [];
  for (const s of spans) {
    if (s.to < from || s.from > to) continue;
    events.push([Math.max(s.from, from), 1], [s.to, -1]);
  }
  events.sort((a, b) => a[0] - b[0] || b[1] - a[1]);
  let now = 0;
  let most = 0;
  for (const [, d] of events) {
    now += d;
    most = Math.max(most, now);
  }
  return most;
}

/** Maximal episodes when more than `limit` spans overlapped, with the most seen in each. */
export function overLimitEpisodes(spans: readonly Interval[], limit: number): { from: number; to: number; most: number }[] {
  const events: [number, number][] = [];
  for (const s of spans) events.push([s.from, 1], [s.to, -1]);
  // Ends before starts at the same instant: a call hung up as the next one was answered is not an overshoot.
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const episodes: { from: number; to: number; most: number }[] = [];
  let now = 0;
  for (const [t, d] of events) {
    now += d;
    const open = episodes[episodes.length - 1];
    if (now > limit) {
      if (open && open.to === Infinity) open.most = Math.max(open.most, now);
      else episodes.push({ from: t, to: Infinity, most: now });
    } else if (open && open.to === Infinity) open.to = t;
  }
  return episodes;
}
