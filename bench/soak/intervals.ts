/**
 * Closed time intervals [from, to] in ms, for the checker's windows (exemptions, impaired time).
 * `to` may be Infinity: a fault still going on when the run ended.
 */
export interface Interval {
  from: number;
  to: number;
}

/** Sorted, with overlapping or touching intervals joined. */
export function mergeIntervals(intervals: readonly Interval[]): Interval[] {
  const sorted = intervals.filter((i) => i.to >= i.from).sort((a, b) => a.from - b.from);
  const merged: Interval[] = [];
  for (const i of sorted) {
    const last = merged[merged.length - 1];
    if (last && i.from <= last.to) last.to = Math.max(last.to, i.to);
    else merged.push({ ...i });
  }
  return merged;
}

/** The first interval that meets [from, to], if any. */
export function meeting(intervals: readonly Interval[], from: number, to: number = from): Interval | undefined {
  return intervals.find((i) => i.from <= to && i.to >= from);
}

/**
 * The instant at which `healthy` ms of time outside `impaired` (merged) have passed since `from`:
 * a deadline that stops while the system is impaired. Infinity if that never comes.
 */
export function afterHealthyTime(impaired: readonly Interval[], from: number, healthy: number): number {
  let t = from;
  let left = healthy;
  for (const i of impaired) {
    if (i.to <= t) continue;
    if (i.from > t) {
      if (i.from - t >= left) return t + left;
      left -= i.from - t;
    }
    t = Math.max(t, i.to);
    if (t === Infinity) return Infinity;
  }
  return t + left;
}

/** The parts of `span` that no interval of `cover` meets. */
export function subtractIntervals(span: Interval, cover: readonly Interval[]): Interval[] {
  const out: Interval[] = [];
  let t = span.from;
  for (const c of mergeIntervals(cover)) {
    if (c.to < t) continue;
    if (c.from > span.to) break;
    if (c.from > t) out.push({ from: t, to: c.from });
    t = Math.max(t, c.to);
    if (t >= span.to) return out;
  }
  if (t < span.to) out.push({ from: t, to: span.to });
  return out;
}

/** The parts of `span` that some interval of `cover` meets. */
export function intersectIntervals(span: Interval, cover: readonly Interval[]): Interval[] {
  const out: Interval[] = [];
  for (const c of mergeIntervals(cover)) {
    const from = Math.max(span.from, c.from);
    const to = Math.min(span.to, c.to);
    if (from < to) out.push({ from, to });
  }
  return out;
}
