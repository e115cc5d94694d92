import { execFile } from 'node:child_process';
import { writeFileSync, readFileSync } from 'node:fs';
import { encodeAccount } from '../../src/accounts/account.js';
import { reindexArgs } from '../../src/calls/totals.js';
import type { Topology } from '../../src/dev/topology.js';
import type { Logger } from '../../src/log.js';
import { builtCli, childEnv } from '../cli-process.js';
import type { OperatorAction, OperatorActionKind, RecordedAccount } from './history.js';
import { accountInput, type Population } from './population.js';
import type { PlannedAction } from './schedule.js';
import type { SoakSystem } from './system.js';
import { accountKey } from '../../src/redis/keys.js';

/**
 * The people and systems around the product, as the soak plays them:
 * - the operator, through `credit-edge` as documented (account set / block / unblock, dataset
 *   init, reload), each command a process of its own;
 * - the provisioning system (billing), which writes and deletes account hashes on the master and
 *   re-provisions them from its own records after a loss.
 * The recorded state of every account (what billing and the operator say it is) lives here: the
 * checker judges the calls against it.
 */
export class Operator {
  /** Every account's recorded state now; null: it does not exist. */
  readonly recorded = new Map<string, RecordedAccount | null>();
  readonly actions: OperatorAction[] = [];

  constructor(
    private readonly system: SoakSystem,
    private readonly population: Population,
    private readonly logger: Logger,
  ) {
    for (const a of population.accounts) this.recorded.set(a.id, a.initial);
  }

  /** The config file `credit-edge account|dataset` commands read (Sentinel addresses): the first controller's. */
  private get cliConfig(): string {
    return this.system.controllers[0]!.configFile;
  }

  /** Runs a planned action on an account chosen among those it fits; undefined when none fits. */
  async act(planned: PlannedAction): Promise<OperatorAction | undefined> {
    const pickFrom = (ids: string[]) => (ids.length === 0 ? undefined : ids[Math.floor(planned.pick * ids.length)]);
    const existing = (pred: (s: RecordedAccount, kind: string) => boolean) =>
      this.population.accounts.filter((a) => {
        const s = this.recorded.get(a.id);
        return s !== null && s !== undefined && pred(s, a.kind);
      }).map((a) => a.id);
    switch (planned.kind) {
      case 'top-up': {
        const id = pickFrom(existing((s, kind) => kind === 'out-of-credit' || kind === 'low-credit'));
        if (!id) return undefined;
        const s = this.recorded.get(id)!;
        const balance = Math.round(((s.balance ?? 0) + (s.ratePerMin !== undefined && s.ratePerMin > 1 ? 1 + planned.pick * 2 : 50)) * 100) / 100;
        return this.cli('top-up', id, { ...s, balance }, ['account', 'set', id, `balance=${balance.toFixed(2)}`]);
      }
      case 'block': {
        const id = pickFrom(existing((s, kind) => kind === 'funded' && !s.operatorBlocked));
        if (!id) return undefined;
        return this.cli('block', id, { ...this.recorded.get(id)!, operatorBlocked: true }, ['account', 'block', id, '--reason', 'soak: operator block']);
      }
      case 'unblock': {
        const id = pickFrom(existing((s) => s.operatorBlocked));
        if (!id) return undefined;
        return this.cli('unblock', id, { ...this.recorded.get(id)!, operatorBlocked: false }, ['account', 'unblock', id, '--reason', 'soak: operator unblock']);
      }
      case 'create': {
        const id = pickFrom(this.population.accounts.filter((a) => this.recorded.get(a.id) === null).map((a) => a.id));
        if (!id) return undefined;
        const state: RecordedAccount = { enabled: true, balance: 50, ratePerMin: 0.012, operatorBlocked: false, maxChannels: undefined };
        return this.cli('create', id, state, ['account', 'set', id, 'enabled=1', 'balance=50.00', 'rate=0.012']);
      }
      case 'delete': {
        const id = pickFrom(existing((s, kind) => kind === 'funded' && !s.operatorBlocked));
        if (!id) return undefined;
        return this.provisioning('delete', id, async (client) => {
          const tx = client.multi();
          tx.del(accountKey(id));
          tx.eval(...reindexArgs(id, accountKey(id)));
          await tx.exec();
        });
      }
      case 'config-reload': {
        const edge = this.system.edges[Math.floor(planned.pick * this.system.edges.length)]!;
        const atMs = Date.now();
        // A live setting an operator tunes: the overload limit, 500 <-> 400.
        const config = JSON.parse(readFileSync(edge.configFile, 'utf8')) as { overload?: { max_in_flight?: number } };
        config.overload = { max_in_flight: config.overload?.max_in_flight === 400 ? 500 : 400 };
        writeFileSync(edge.configFile, JSON.stringify(config, null, 2) + '\n', { mode: 0o600 });
        const r = await run(['reload', '--config', edge.configFile]);
        return this.record({ atMs, doneMs: Date.now(), kind: 'config-reload', ok: r.ok, detail: `${edge.name}: max_in_flight ${config.overload.max_in_flight}: ${r.output}` });
      }
    }
  }

  /** The provisioning system re-writes accounts from its records (all, or some): after a loss. */
  async reprovision(ids?: string[]): Promise<void> {
    const master = await this.master();
    const list = ids ?? [...this.recorded.keys()];
    const tx = master.multi();
    for (const id of list) {
      const state = this.recorded.get(id);
      if (!state) continue;
      tx.del(accountKey(id));
      tx.hset(accountKey(id), encodeAccount(accountInput(state)));
      tx.eval(...reindexArgs(id, accountKey(id)));
    }
    await tx.exec();
  }

  /** The provisioning system deletes accounts by accident (a bad script): nothing recorded changes. */
  async massDelete(share: number, pick: number): Promise<string[]> {
    const existing = [...this.recorded.entries()].filter(([, s]) => s !== null).map(([id]) => id);
    const start = Math.floor(pick * existing.length);
    const victims = existing.filter((_, i) => (i - start + existing.length) % existing.length < existing.length * share);
    const master = await this.master();
    const tx = master.multi();
    for (const id of victims) tx.del(accountKey(id));
    await tx.exec();
    return victims;
  }

  /** `credit-edge dataset init`, as the contract says after re-provisioning. */
  async datasetInit(): Promise<{ ok: boolean; output: string }> {
    return run(['dataset', 'init', '--config', this.cliConfig]);
  }

  private async master() {
    const address = await this.system.topology.currentMaster();
    const node = this.system.topology.nodeAt(address);
    if (!node) throw new Error(`Sentinel names ${address.host}:${address.port}, not a node of this topology`);
    return node.client;
  }

  private async cli(kind: OperatorActionKind, account: string, after: RecordedAccount, args: string[]): Promise<OperatorAction> {
    const atMs = Date.now();
    const r = await run([...args, '--config', this.cliConfig]);
    if (r.ok) this.recorded.set(account, after);
    return this.record({ atMs, doneMs: Date.now(), kind, account, after, ok: r.ok, ...(!r.ok && { detail: r.output }) });
  }

  private async provisioning(kind: OperatorActionKind, account: string, write: (client: Awaited<ReturnType<Operator['master']>>) => Promise<void>): Promise<OperatorAction> {
    const atMs = Date.now();
    try {
      await write(await this.master());
      this.recorded.set(account, null);
      return this.record({ atMs, doneMs: Date.now(), kind, account, after: null, ok: true });
    } catch (err) {
      return this.record({ atMs, doneMs: Date.now(), kind, account, after: null, ok: false, detail: (err as Error).message });
    }
  }

  private record(action: OperatorAction): OperatorAction {
    this.actions.push(action);
    this.logger.info({ action }, 'soak: operator action');
    return action;
  }
}

/** One `credit-edge` command, bounded (15 s), its output kept for the record. */
function run(args: string[]): Promise<{ ok: boolean; output: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [builtCli(), ...args], { timeout: 15_000, env: childEnv() }, (err, stdout, stderr) => {
      resolve({ ok: !err, output: `${stdout}${stderr}`.trim().slice(0, 500) });
    });
  });
}
