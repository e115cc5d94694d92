import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { readAccountState } from '../../src/accounts/account-state.js';
import { StaleCache } from '../../src/accounts/stale-cache.js';
import { startTopology, type Topology } from '../../src/dev/topology.js';
import { readerOver, type ReaderUnderTest } from '../helpers/accounts.js';
import { cli } from '../helpers/cli.js';
import { AUDIT_STREAM, DATASET_KEY } from '../../src/redis/keys.js';

/**
 * The dataset marker with real Redis: what the lookup makes of a lost, a foreign and a re-declared
 * dataset, and the operator's steps (`credit-edge dataset ...`, `account set`) that write it.
 */

let topology: Topology;
let r: ReaderUnderTest;
let configFile: string;

const ACCOUNTS = Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`acct-${i}`, { enabled: true, balance: 10 }]));

async function replicated(): Promise<void> {
  await topology.master.waitForReplicas(2000);
}

beforeAll(async () => {
  topology = await startTopology({ replicas: 2, sentinels: 1 });
  r = await readerOver(topology.replicas);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'credit-edge-dataset-'));
  configFile = path.join(dir, 'credit-edge.yaml');
  fs.writeFileSync(configFile, stringify({ redis: { sentinel: { master_name: topology.masterName, addresses: topology.sentinelAddresses().map((s) => `${s.host}:${s.port}`) } } }));
});

afterAll(async () => {
  await r?.close();
  await topology?.stop();
});

beforeEach(async () => {
  await topology.master.client.flushall();
  await topology.seed(ACCOUNTS);
  expect((await r.reader.lookup('acct-0')).outcome).toBe('found');
});

describe('the lookup and the dataset marker', () => {
  it('a dataset without its marker (FLUSHALL, or accounts written back without it) is unknown, never absent', async () => {
    await topology.master.client.flushall();
    await replicated();
    expect(await r.reader.lookup('acct-0')).toMatchObject({ outcome: 'unknown', cause: 'dataset-missing' });
    await topology.master.client.hset('account:acct-0', { enabled: '1', balance: '5' });
    await replicated();
    expect(await r.reader.lookup('acct-0')).toMatchObject({ outcome: 'unknown', cause: 'dataset-missing' });
  });

  it('another dataset, declared before this edge last saw its own, is unknown (dataset-changed) until an operator accepts it', async () => {
    const known = r.dataset.id;
    await topology.master.client.hset(DATASET_KEY, { id: 'some-older-dataset', created_at: '1000' });
    await replicated();
    expect(await r.reader.lookup('acct-0')).toMatchObject({ outcome: 'unknown', cause: 'dataset-changed' });
    expect(r.dataset.id).toBe(known);

    const { out } = await cli(['dataset', 'accept', '--config', configFile]);
    expect(out).toMatch(/dataset some-older-dataset accepted on master/);
    await replicated();
    expect(await r.reader.lookup('acct-0')).toMatchObject({ outcome: 'found' });
    expect(r.dataset.id).toBe('some-older-dataset');
  });

  it('an operator re-declaring the dataset after the loss (dataset init) makes answers authoritative again', async () => {
    await topology.master.client.flushall();
    await replicated();
    expect(await r.reader.lookup('acct-0')).toMatchObject({ cause: 'dataset-missing' });
    await expect(cli(['dataset', 'init', '--config', configFile])).rejects.toThrow(/refused: the master holds no account/);

    await topology.master.client.hset('account:acct-0', { enabled: '1', balance: '5' });
    const { out } = await cli(['dataset', 'init', '--config', configFile]);
    expect(out).toMatch(/declared on master .* with 1 account/);
    await replicated();
    expect(await r.reader.lookup('acct-0')).toMatchObject({ outcome: 'found' });
    expect(await r.reader.lookup('acct-1')).toMatchObject({ outcome: 'absent' });
    await expect(cli(['dataset', 'init', '--config', configFile])).rejects.toThrow(/is already declared/);

    const audit = await topology.master.client.xrevrange(AUDIT_STREAM, '+', '-', 'COUNT', 1);
    expect(audit[0]![1]).toEqual(expect.arrayContaining(['action', 'dataset-init']));
    expect((await cli(['dataset', 'show', '--config', configFile])).out).toMatch(/1 account key\(s\) now/);
  });

  it('account set on a master without the marker warns; --create-dataset declares it', async () => {
    await topology.master.client.flushall();
    const plain = await cli(['account', 'set', 'acct-new', 'enabled=1', '--config', configFile]);
    expect(plain.out).toMatch(/warning: the master has no dataset marker/);
    expect(await topology.master.client.exists(DATASET_KEY)).toBe(0);
    const creating = await cli(['account', 'set', 'acct-new', 'balance=3', '--create-dataset', '--config', configFile]);
    expect(creating.out).not.toMatch(/warning/);
    expect(await topology.master.client.hget(DATASET_KEY, 'id')).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('the mass-absence guard with real Redis', () => {
  it('holds a mass DEL as unknown (cache answers), and `dataset accept-deletions` releases it through the replicas', async () => {
    const sources = r.sources(new StaleCache({ maxEntries: 100 }));
    const ids = Object.keys(ACCOUNTS);
    for (const id of ids) expect((await readAccountState(sources, id)).lookup.outcome).toBe('found');

    await topology.master.client.del(...ids.map((id) => `account:${id}`));
    await replicated();
    const held = [];
    for (const id of ids) held.push(await readAccountState(sources, id));
    for (const state of held) {
      expect(state.lookup.outcome).toBe('unknown');
      expect(state.cached?.account.enabled).toBe(true);
    }
    expect(sources.guard.state(Date.now()).open).toBe(true);
    expect(held.at(-1)!.lookup).toMatchObject({ cause: 'mass-absence' });

    const { out } = await cli(['dataset', 'accept-deletions', '--config', configFile]);
    expect(out).toMatch(/deletions accepted on master .* acceptance #1/);
    await replicated();
    expect((await readAccountState(sources, 'acct-0')).lookup.outcome).toBe('absent');
    expect(sources.guard.state(Date.now()).open).toBe(false);
    expect(sources.cache.recall('acct-0', Date.now())).toBeUndefined();
  });
});
