import { setTimeout as sleep } from 'node:timers/promises';
import type { RedisNode } from '../../src/dev/topology.js';
import type { Logger } from '../../src/log.js';
import { EMPTY_MASTER_REFUSED } from '../../src/admin/dataset-command.js';
import type { EdgeRestart, FaultWindow } from './history.js';
import type { Operator } from './operator.js';
import type { PlannedFault } from './schedule.js';
import type { SoakSystem } from './system.js';
import { readAudit } from '../../src/control/audit.js';
import { LEASE_KEY } from '../../src/redis/keys.js';
import { parseEvidence } from './redis-history.js';

/**
 * The nemesis: runs the planned faults against the running system. Each fault takes the parts it
 * breaks (a node, the master, the topology's shape, the dataset, an edge, the SIP server, the
 * controllers) and waits for them while another fault holds them, so faults overlap wherever the
 * parts allow and never undo each other's work. Each restores what it broke in a finally, and
 * the operator's part of a recovery (re-provisioning, `dataset init`) is played as the README's
 * contract says. Every window is recorded for the checker and the report.
 */

/** Longest wait for the parts a fault needs; past it the fault is recorded as skipped. */
const ACQUIRE_TIMEOUT_MS = 60_000;
/** Longest drain of an orderly edge restart (the long calls last 30 s) before it is killed. */
const DRAIN_GRACE_MS = 60_000;
/** Longest wait of a cut-* fault for the controller's next cut. */
const CUT_WAIT_MS = 60_000;
/** Re-provisioning and `dataset init` tried again this many times when a failover took the accounts. */
const REPROVISION_ATTEMPTS = 5;

export class Nemesis {
  readonly windows: FaultWindow[] = [];
  readonly edgeRestarts: EdgeRestart[] = [];
  private readonly held = new Set<string>();
  private readonly waiters: (() => void)[] = [];
  private readonly running = new Set<Promise<void>>();

  constructor(
    private readonly system: SoakSystem,
    private readonly operator: Operator,
    private readonly logger: Logger,
  ) {}

  /** Starts a fault (not awaited: faults overlap); drain() waits for all of them. */
  start(fault: PlannedFault): void {
    const p = this.run(fault).finally(() => this.running.delete(p));
    this.running.add(p);
  }

  async drain(): Promise<void> {
    while (this.running.size > 0) await Promise.all([...this.running]);
  }

  private async run(fault: PlannedFault): Promise<void> {
    const { topology } = this.system;
    const replicas = () => topology.replicas;
    const pick = <T>(items: T[]) => items[Math.floor(fault.pick * items.length) % items.length]!;
    // The target is chosen when the fault starts: the master and the replicas change with failovers.
    const plan = (): { parts: string[]; target: string; act: (w: FaultWindow) => Promise<void> } | undefined => {
      const node = (n: RedisNode) => `node:${n.name}`;
      switch (fault.kind) {
        case 'replica-restart-empty': {
          const r = pick(replicas());
          return { parts: [node(r), 'shape'], target: r.name, act: () => this.replicaRestartEmpty(r, fault.holdS) };
        }
        case 'replica-freeze': {
          const r = pick(replicas());
          return { parts: [node(r)], target: r.name, act: () => this.holding(fault.holdS, () => r.freeze(), () => r.thaw()) };
        }
        case 'replica-cut': {
          const r = pick(replicas());
          return { parts: [node(r), 'shape'], target: r.name, act: () => this.replicaCut(r, fault.holdS) };
        }
        case 'master-slow':
          return { parts: ['master'], target: topology.master.name, act: () => this.masterSlow(fault.holdS) };
        case 'master-freeze-failover':
          return { parts: ['master', 'shape'], target: topology.master.name, act: (w) => this.masterFreezeFailover(w, fault.holdS) };
        case 'master-restart-empty':
          return { parts: ['master', 'shape', 'dataset'], target: topology.master.name, act: (w) => this.datasetLost(w, fault.holdS, () => topology.restartMasterEmpty()) };
        case 'flushall':
          return { parts: ['master', 'dataset'], target: topology.master.name, act: (w) => this.datasetLost(w, fault.holdS, async () => void (await topology.master.client.flushall())) };
        case 'mass-delete':
          return { parts: ['master', 'dataset'], target: topology.master.name, act: (w) => this.massDelete(w, fault.holdS, fault.pick) };
        case 'edge-kill': {
          const e = pick(this.system.edges);
          return { parts: [`edge:${e.name}`], target: e.name, act: () => this.edgeKill(e, fault.holdS) };
        }
        case 'edge-restart': {
          const e = pick(this.system.edges);
          return { parts: [`edge:${e.name}`], target: e.name, act: (w) => this.edgeRestart(w, e, fault.holdS) };
        }
        case 'sip-server-restart':
          if (!this.system.sipServer.restartable) return undefined;
          return { parts: ['sip-server'], target: 'sip-server', act: () => this.system.sipServer.restart(fault.holdS * 1000) };
        case 'controller-kill':
          return { parts: ['controller'], target: 'acting controller', act: (w) => this.controllerKill(w, fault.holdS) };
        case 'cut-edge-kill':
          return {
            parts: this.system.edges.map((e) => `edge:${e.name}`),
            target: 'the edge ordered to cut',
            act: async (w) => {
              const cut = await this.nextCut(w);
              const e = this.system.edges.find((x) => cut?.edge.startsWith(`${x.name}:`)) ?? pick(this.system.edges);
              w.target = e.name;
              await this.edgeKill(e, fault.holdS);
            },
          };
        case 'cut-controller-kill':
          return { parts: ['controller'], target: 'acting controller', act: async (w) => (await this.nextCut(w), this.controllerKill(w, fault.holdS)) };
        case 'cut-failover':
          return { parts: ['master', 'shape'], target: topology.master.name, act: async (w) => (await this.nextCut(w), this.masterFreezeFailover(w, fault.holdS)) };
      }
    };
    await this.followMaster();
    // The target is planned again once the parts are ours (the topology may have changed while
    // waiting); if it now needs other parts, they are waited for instead.
    let now = plan();
    for (let attempt = 0; ; attempt++) {
      if (!now) {
        this.record({ kind: fault.kind, target: '-', startMs: Date.now(), endMs: Date.now(), marks: [], error: 'skipped: not possible here (an external SIP server is not ours to restart)' });
        return;
      }
      if (!(await this.acquire(now.parts))) {
        this.record({ kind: fault.kind, target: now.target, startMs: Date.now(), endMs: Date.now(), marks: [], error: `skipped: ${now.parts.join(', ')} busy for ${ACQUIRE_TIMEOUT_MS} ms` });
        return;
      }
      await this.followMaster();
      const again = plan();
      if (again && again.parts.join() === now.parts.join()) {
        now = again;
        break;
      }
      this.release(now.parts);
      now = again;
      if (attempt >= 3) return this.record({ kind: fault.kind, target: '-', startMs: Date.now(), endMs: Date.now(), marks: [], error: 'skipped: the topology kept changing' });
    }
    const heldParts = now.parts;
    const w: FaultWindow = { kind: fault.kind, target: now.target, startMs: Date.now(), endMs: undefined, marks: [] };
    this.windows.push(w);
    this.logger.info({ fault: fault.kind, target: now.target, holdS: fault.holdS }, 'soak: fault start');
    try {
      await now.act(w);
    } catch (err) {
      w.error = err instanceof Error ? err.message : String(err);
      this.logger.error({ fault: fault.kind, err }, 'soak: fault failed');
    } finally {
      w.endMs = Date.now();
      this.release(heldParts);
      this.logger.info({ fault: fault.kind, target: now.target, ms: w.endMs - w.startMs }, 'soak: fault end');
    }
  }

  /** The master as Sentinel names it now: faults overlap, and one may have caused a failover another did not wait for. */
  private async followMaster(): Promise<void> {
    const { topology } = this.system;
    const node = topology.nodeAt(await topology.currentMaster().catch(() => ({ host: '', port: 0 })));
    if (node && node !== topology.master) {
      this.logger.warn({ from: topology.master.name, to: node.name }, 'soak: the master moved (a failover no fault waited for)');
      topology.setMaster(node);
    }
  }

  private record(w: FaultWindow): void {
    this.windows.push(w);
    this.logger.warn({ window: w }, 'soak: fault not run');
  }

  private async acquire(parts: string[]): Promise<boolean> {
    const deadline = Date.now() + ACQUIRE_TIMEOUT_MS;
    while (parts.some((p) => this.held.has(p))) {
      if (Date.now() > deadline) return false;
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 1000);
      });
    }
    for (const p of parts) this.held.add(p);
    return true;
  }

  private release(parts: string[]): void {
    for (const p of parts) this.held.delete(p);
    for (const wake of this.waiters.splice(0)) wake();
  }

  private async holding(holdS: number, breakIt: () => void | Promise<void>, restore: () => void | Promise<void>): Promise<void> {
    await breakIt();
    try {
      await sleep(holdS * 1000);
    } finally {
      await restore();
    }
  }

  private async replicaRestartEmpty(r: RedisNode, holdS: number): Promise<void> {
    await r.restartFromEmpty({ holdSyncMs: holdS * 1000 });
    await r.waitForSync(60_000);
  }

  private async replicaCut(r: RedisNode, holdS: number): Promise<void> {
    await this.holding(holdS, () => r.cutLink(), () => r.restoreLink());
  }

  private async masterSlow(holdS: number): Promise<void> {
    for (let i = 0; i < 3; i++) {
      await this.system.topology.master.slow(holdS * 1000);
      await sleep(holdS * 1000 + 1000);
    }
  }

  /** The incident's hung master: frozen until Sentinel fails over, thawed later; it comes back as a replica. */
  private async masterFreezeFailover(w: FaultWindow, holdS: number): Promise<void> {
    const { topology } = this.system;
    const old = topology.freezeMaster();
    try {
      const to = await topology.waitForFailover(30_000);
      w.marks.push({ label: `failover to :${to.port}`, atMs: Date.now() });
      await sleep(holdS * 1000);
    } finally {
      old.thaw();
      w.marks.push({ label: `${old.name} thawed`, atMs: Date.now() });
    }
    // Sentinel turns the old master into a replica of the new one; wait until it is in sync.
    await old.waitForSync(60_000);
  }

  /** The dataset lost (master restarted empty, FLUSHALL); after `holdS` billing re-provisions and the operator declares it. */
  private async datasetLost(w: FaultWindow, holdS: number, lose: () => Promise<void>): Promise<void> {
    await lose();
    w.marks.push({ label: 'dataset lost', atMs: Date.now() });
    await sleep(holdS * 1000);
    // As an operator would: a failover between the re-provisioning and `dataset init` can take
    // the accounts with it (written on the old master, which then resyncs from an empty one);
    // init refuses an empty master, so provision again on the one Sentinel names now.
    for (let attempt = 1; ; attempt++) {
      await this.followMaster();
      await this.operator.reprovision();
      w.marks.push({ label: attempt === 1 ? 'accounts re-provisioned' : `accounts re-provisioned (attempt ${attempt})`, atMs: Date.now() });
      const init = await this.operator.datasetInit();
      if (init.ok) break;
      if (attempt >= REPROVISION_ATTEMPTS || !init.output.includes(EMPTY_MASTER_REFUSED)) throw new Error(`dataset init: ${init.output}`);
      await sleep(2000);
    }
    w.marks.push({ label: 'dataset declared', atMs: Date.now() });
  }

  /** A bad provisioning script deletes a third of the accounts; billing restores them after `holdS`. */
  private async massDelete(w: FaultWindow, holdS: number, pick: number): Promise<void> {
    const victims = await this.operator.massDelete(0.3, pick);
    w.marks.push({ label: `${victims.length} accounts deleted`, atMs: Date.now() });
    try {
      await sleep(holdS * 1000);
    } finally {
      await this.operator.reprovision(victims);
      w.marks.push({ label: 'accounts restored', atMs: Date.now() });
    }
  }

  private async edgeKill(edge: SoakSystem['edges'][number], holdS: number): Promise<void> {
    const restart: EdgeRestart = { edge: edge.name, killedMs: Date.now(), readyMs: undefined };
    this.edgeRestarts.push(restart);
    await edge.kill();
    await sleep(holdS * 1000);
    await edge.start();
    restart.readyMs = Date.now();
  }

  /**
   * Waits for the controller's next cut (its audit entry on the master, polled every 50 ms: the
   * edge reads its orders every 500 ms, so the fault mostly strikes before the call is ended).
   * Marks the window either way; with no cut within CUT_WAIT_MS the fault strikes anyway.
   */
  private async nextCut(w: FaultWindow): Promise<{ edge: string; callId: string } | undefined> {
    const client = this.system.topology.master.client;
    const newest = () => readAudit(client, { limit: 50, scan: 50 }).catch(() => []);
    const seen = new Set((await newest()).map((e) => e.id));
    const deadline = Date.now() + CUT_WAIT_MS;
    while (Date.now() < deadline) {
      for (const e of await newest()) {
        if (seen.has(e.id)) continue;
        seen.add(e.id);
        if (e.action !== 'cut') continue;
        const evidence = parseEvidence(e.evidence);
        const cut = { edge: String(evidence.edge ?? ''), callId: String(evidence.callId ?? '') };
        w.marks.push({ label: `cut of ${cut.callId} ordered to ${cut.edge}`, atMs: Date.now() });
        return cut;
      }
      await sleep(50);
    }
    w.marks.push({ label: `no cut within ${CUT_WAIT_MS / 1000} s: struck anyway`, atMs: Date.now() });
    return undefined;
  }

  /** An orderly restart, as a rolling upgrade does it: SIGTERM (the edge drains), down `holdS`, started again. */
  private async edgeRestart(w: FaultWindow, edge: SoakSystem['edges'][number], holdS: number): Promise<void> {
    const restart: EdgeRestart = { edge: edge.name, drainFromMs: Date.now(), killedMs: Infinity, readyMs: undefined };
    this.edgeRestarts.push(restart);
    await edge.stop(DRAIN_GRACE_MS);
    restart.killedMs = Date.now();
    w.marks.push({ label: `drained in ${Math.round(restart.killedMs - restart.drainFromMs!)} ms`, atMs: restart.killedMs });
    await sleep(holdS * 1000);
    await edge.start();
    restart.readyMs = Date.now();
  }

  /** Kills the controller holding the lease (the standby takes over once it expires); started again after `holdS`. */
  private async controllerKill(w: FaultWindow, holdS: number): Promise<void> {
    const holder = (await this.system.topology.master.client.get(LEASE_KEY).catch(() => null)) ?? '';
    const acting = this.system.controllers.find((c) => holder.startsWith(c.name)) ?? this.system.controllers[0]!;
    w.target = acting.name;
    await acting.kill();
    await sleep(holdS * 1000);
    await acting.start();
  }
}
