import { describe, expect, it } from 'vitest';
import { parseDatasetMarker, type DatasetMarker } from '../../src/accounts/dataset.js';
import { DatasetWatch } from '../../src/accounts/dataset-watch.js';
import { silentLogger } from '../../src/log.js';

const marker = (id: string, createdAt: number, more: Partial<DatasetMarker> = {}): DatasetMarker => ({ id, createdAt, acceptedAt: 0, deletionsAccepted: 0, ...more });

function watch(start = 1_000_000) {
  let now = start;
  const w = new DatasetWatch(silentLogger, () => now);
  return { w, at: (t: number) => (now = t) };
}

describe('the dataset marker as read', () => {
  it('parses the HMGET reply; no id means no marker, and bad numbers read as 0', () => {
    expect(parseDatasetMarker([null, null, null, null])).toBeUndefined();
    expect(parseDatasetMarker(['', '5', null, null])).toBeUndefined();
    expect(parseDatasetMarker(['d1', '1700000000000', null, '2'])).toEqual(marker('d1', 1700000000000, { deletionsAccepted: 2 }));
    expect(parseDatasetMarker(['d1', 'soon', '-4', 'x'])).toEqual(marker('d1', 0));
  });
});

describe('the dataset watch', () => {
  it('adopts the first dataset it sees', () => {
    const { w } = watch();
    expect(w.check('r1', marker('d1', 5))).toBeUndefined();
    expect(w.id).toBe('d1');
  });

  it('says when this process first read a dataset (the mass-absence guard holds absences for a moment after); a replacement does not count again', () => {
    const { w, at } = watch();
    expect(w.readingSince).toBeUndefined();
    w.check('r1', undefined);
    expect(w.readingSince).toBeUndefined();
    at(1_000_500);
    w.check('r1', marker('d1', 5));
    expect(w.readingSince).toBe(1_000_500);
    at(3_000_000);
    w.check('r1', marker('d2', 2_999_000));
    expect(w.id).toBe('d2');
    expect(w.readingSince).toBe(1_000_500);
  });

  it('a replica without the marker answers for a lost dataset: dataset-missing', () => {
    const { w } = watch();
    w.check('r1', marker('d1', 5));
    expect(w.check('r2', undefined)).toBe('dataset-missing');
    expect(w.check('r1', marker('d1', 5))).toBeUndefined();
  });

  it('another dataset declared before this edge last saw its own is dataset-changed (an old or foreign dataset)', () => {
    const { w, at } = watch();
    w.check('r1', marker('d1', 5));
    at(2_000_000);
    w.check('r1', marker('d1', 5));
    expect(w.check('r2', marker('d0', 1_500_000))).toBe('dataset-changed');
    expect(w.id).toBe('d1');
  });

  it('a dataset declared after the old one was last seen is adopted (an operator re-declared it after the loss)', () => {
    const { w, at } = watch();
    w.check('r1', marker('d1', 5));
    at(2_000_000);
    expect(w.check('r1', undefined)).toBe('dataset-missing');
    expect(w.check('r1', marker('d2', 2_000_500))).toBeUndefined();
    expect(w.id).toBe('d2');
    // The old one is now the foreign one.
    expect(w.check('r2', marker('d1', 5))).toBe('dataset-changed');
  });

  it('an operator accepting a changed dataset makes it adopted', () => {
    const { w, at } = watch();
    w.check('r1', marker('d1', 5));
    at(2_000_000);
    w.check('r1', marker('d1', 5));
    expect(w.check('r1', marker('d0', 1_500_000))).toBe('dataset-changed');
    expect(w.check('r1', marker('d0', 1_500_000, { acceptedAt: 2_000_100 }))).toBeUndefined();
    expect(w.id).toBe('d0');
  });

  it('its deletions-accepted mark changes when an operator accepts deletions or the dataset is replaced', () => {
    const { w, at } = watch();
    w.check('r1', marker('d1', 5));
    const first = w.deletionsAcceptedMark;
    w.check('r1', marker('d1', 5, { deletionsAccepted: 1 }));
    const second = w.deletionsAcceptedMark;
    expect(second).not.toBe(first);
    at(2_000_000);
    w.check('r1', marker('d2', 2_000_001, { deletionsAccepted: 1 }));
    expect(w.deletionsAcceptedMark).not.toBe(second);
  });
});
