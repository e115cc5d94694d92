import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { Counter, Gauge, type Registry } from 'prom-client';
import { parseCutOrder, type CutOrder } from '../calls/cut-orders.js';
import { callEndArgs, callStartArgs, defineCallScripts, parseCallRecord, type CallRecord, type CallScripts } from '../calls/records.js';
import { EDGE_PRESENCE_LUA, SLOT_KEY_COUNT, TAKE_SLOT_LUA, takeSlotArgs } from '../calls/channel-slots.js';
import { edgeMember } from '../calls/totals.js';
import type { Logger } from '../log.js';
import { answerWithin } from '../redis/deadline.js';
import { sentinelMasterClient } from '../redis/master-client.js';
import { CALLS_INDEX_KEY, callsKey, cutOrdersKey, edgeAliveKey, edgeCallsKey, EDGES_PRESENT_KEY, setupKey } from '../redis/keys.js';

export interface CallRecorderOptions {
  /** config node_id. */
  node: string;
  masterName: string;
  sentinels: { host: string; port: number }[];
  password?: string;
  queueMax: number;
  livenessTtlMs: number;
  masterTimeoutMs: number;
  logger: Logger;
  /** Where to register this edge's call-record metrics (the edge's registry). */
  registry?: Registry;
}

/**
 * `at`: when the call ended, on this edge's clock (a replayed event keeps it). `slot`: the call
 * holds a channel while it is set up (taken or renewed); `slot-end`: it gives it back.
 */
type CallEvent =
  | { kind: 'start'; record: CallRecord }
  | { kind: 'end'; callId: string; account: string; at: number }
  | { kind: 'slot' | 'slot-end'; callId: string; account: string };

/** A channel slot asked of the master: taken, the limit reached, or no answer in time (or no account there). */
export type SlotAnswer = { taken: true; inUse: number } | { taken: false; inUse: number } | { taken: undefined; why: string };

interface SlotScripts {
  takeSlot(...args: (string | number)[]): Promise<[number, number]>;
  edgePresence(key: string, node: string, ttlMs: number): Promise<number>;
}

/** One command per event: keys and arguments from callStartArgs / callEndArgs / takeSlotArgs. */
type RecordingClient = Redis & CallScripts & SlotScripts;

const BATCH = 64;
const RETRY_MS = 200;
/** How long the end of a call is remembered, so a reconciliation can replay it with its time (the debit). */
const ENDED_MEMORY_MS = 10 * 60_000;
const ENDED_MEMORY_MAX = 100_000;

/**
 * The edge's calls in progress, recorded on the Redis master (see src/calls/records.ts):
 * an answered call (the proxy's result) adds a record, cdr:stop or a failed attempt removes it, and `edge:{node}:alive` is
 * renewed while this process runs. Call routing never waits for any of it: events go into a
 * bounded in-memory queue that a single drainer sends in order, through Sentinel, whenever a
 * master is reachable. A full queue drops the event, counts and logs it, and once the queue has
 * drained the edge re-asserts its calls from its own memory (resync), so the records end up exact.
 *
 * A write the master acknowledged can still be lost: a master failed over before it replicated
 * (Redis replication is asynchronous). So at every liveness renewal, with nothing queued, the
 * edge also reconciles this process's own records (its per-edge hash, one read): a call ended
 * here but still recorded is ended again, with its end time (so its debit is not lost), and a
 * call in progress here but missing is recorded again. The randomized soak found such a lost end:
 * a record left forever, whose growing cost had the controller block a funded account.
 */
export class CallRecorder {
  /** This process; call records carry it so a restarted edge's old calls are told apart. */
  readonly instance = randomBytes(6).toString('hex');
  private readonly client: RecordingClient;
  /** Routed but not answered yet: what the record will say once the call is answered. */
  private readonly pending = new Map<string, { account: string; rate?: number }>();
  /** Answered and recorded (or queued to be). */
  private readonly active = new Map<string, CallRecord>();
  /** Calls being set up that hold a channel slot (Call-ID -> account). */
  private readonly slots = new Map<string, string>();
  /** The edges present on the master at the last renewal, and when this edge was first counted there (its peers count it from their next renewal). */
  private presence?: { edges: number; renewedAt: number; since: number };
  private queue: CallEvent[] = [];
  private draining = false;
  private needResync = false;
  private needReconcile = false;
  /** Calls ended here lately (Call-ID -> end time), oldest first: the reconciliation replays their ends with it. */
  private readonly recentlyEnded = new Map<string, number>();
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly livenessTimer: NodeJS.Timeout;
  private lastDropLog = 0;
  private droppedSinceLog = 0;
  private closed = false;
  private readonly logger: Logger;
  readonly metrics: { queued: Gauge; dropped: Counter; written: Counter; resyncs: Counter };

  constructor(private readonly o: CallRecorderOptions) {
    this.logger = o.logger.child({ part: 'call-records', node: o.node });
    // The queue is ours, bounded and in order: the client keeps none.
    this.client = sentinelMasterClient({
      sentinels: o.sentinels,
      masterName: o.masterName,
      ...(o.password !== undefined && { password: o.password }),
      timeoutMs: o.masterTimeoutMs,
      connectionName: `credit-edge-calls-${o.node}`,
    }) as RecordingClient;
    defineCallScripts(this.client);
    this.client.defineCommand('takeSlot', { numberOfKeys: SLOT_KEY_COUNT, lua: TAKE_SLOT_LUA });
    this.client.defineCommand('edgePresence', { numberOfKeys: 1, lua: EDGE_PRESENCE_LUA });
    this.client.on('ready', () => {
      this.logger.info('call records: master reachable');
      void this.renewLiveness().then(() => this.drain());
    });
    this.client.on('error', (err: Error) => this.logger.debug({ err: err.message }, 'call records: master connection error'));
    this.livenessTimer = setInterval(() => void this.renewLiveness(), this.renewalIntervalMs);
    this.livenessTimer.unref();

    const registers = o.registry ? [o.registry] : [];
    this.metrics = {
      queued: new Gauge({ name: 'credit_edge_call_events_queued', help: 'Call events waiting for the master', registers }),
      dropped: new Counter({ name: 'credit_edge_call_events_dropped_total', help: 'Call events dropped because the queue was full (a resync follows)', registers }),
      written: new Counter({ name: 'credit_edge_call_events_written_total', help: 'Call events written on the master', registers }),
      resyncs: new Counter({ name: 'credit_edge_call_records_resyncs_total', help: 'Times this edge re-asserted all its call records', registers }),
    };
    const recorder = this;
    new Gauge({
      name: 'credit_edge_limit_sharing_edges',
      help: 'Edges sharing the limits (channels, calls per second), this one included (0 while not known for sure: every call of a limited account is then decided on the master)',
      registers,
      collect() {
        this.set(recorder.sharingEdges() ?? 0);
      },
    });
  }

  /** The call was routed (proxy started): remember who pays for it, for when it is answered. */
  routed(callId: string, account: string, rate: number | undefined): void {
    this.pending.set(callId, rate === undefined ? { account } : { account, rate });
  }

  /**
   * The proxy reported a 2xx final: the call is answered and its record starts (a repeat, or a
   * call that ended meanwhile, is ignored).
   */
  answered(callId: string): void {
    const routed = this.pending.get(callId);
    if (!routed || this.active.has(callId)) return;
    this.pending.delete(callId);
    const record: CallRecord = { callId, account: routed.account, start: Date.now(), node: this.o.node, instance: this.instance, ...(routed.rate !== undefined && { rate: routed.rate }) };
    this.active.set(callId, record);
    // Its record holds the channel from now on: the start script removes the slot with it.
    this.slots.delete(callId);
    this.enqueue({ kind: 'start', record });
  }

  /** cdr:stop or a failed attempt; unknown or repeated Call-IDs are ignored. */
  ended(callId: string): void {
    this.pending.delete(callId);
    this.releaseSlot(callId);
    const record = this.active.get(callId);
    if (!record) return;
    this.active.delete(callId);
    const at = Date.now();
    this.recentlyEnded.set(callId, at);
    if (this.recentlyEnded.size > ENDED_MEMORY_MAX) this.recentlyEnded.delete(this.recentlyEnded.keys().next().value!);
    this.enqueue({ kind: 'end', callId, account: record.account, at });
  }

  /**
   * Takes a channel slot for a call near its account's limit, atomically on the master (records
   * and slots counted against `max_channels` there, or against `limit`, the edge's, when the
   * master has no such account): before the call is proxied. Undefined `taken` when the master
   * did not answer within `timeoutMs`: the caller falls back to its own count. Unless refused,
   * the call holds the slot until it is answered or ends (a late answer may still have taken it):
   * ended() gives it back.
   */
  async takeSlot(callId: string, account: string, limit: number, timeoutMs: number): Promise<SlotAnswer> {
    if (this.client.status !== 'ready') return { taken: undefined, why: `master not connected (${this.client.status})` };
    this.slots.set(callId, account);
    try {
      const reply = await answerWithin(this.client.takeSlot(...takeSlotArgs(account, callId, this.o.livenessTtlMs, limit)), timeoutMs);
      if (reply === 'late') return { taken: undefined, why: `no answer from the master within ${timeoutMs} ms` };
      const [taken, inUse] = reply;
      if (taken === 0) this.slots.delete(callId);
      return { taken: taken === 1, inUse } as SlotAnswer;
    } catch (err) {
      return { taken: undefined, why: (err as Error).message };
    }
  }

  /**
   * A call admitted from memory, far below its account's limit: its slot is written at once, so
   * that the other edges count it, on the connection that takes slots near the limit (so any
   * later take of this edge counts it). Queued only when that write fails.
   */
  holdSlot(callId: string, account: string): void {
    this.slots.set(callId, account);
    const retry = () => {
      if (this.slots.get(callId) === account) this.enqueue({ kind: 'slot', callId, account });
    };
    if (this.client.status !== 'ready') return retry();
    this.client.takeSlot(...takeSlotArgs(account, callId, this.o.livenessTtlMs, undefined)).catch(retry);
  }

  private releaseSlot(callId: string): void {
    const account = this.slots.get(callId);
    if (account === undefined) return;
    this.slots.delete(callId);
    this.enqueue({ kind: 'slot-end', callId, account });
  }

  get queued(): number {
    return this.queue.length;
  }

  private enqueue(event: CallEvent): void {
    if (this.queue.length >= this.o.queueMax) {
      this.metrics.dropped.inc();
      this.needResync = true;
      this.droppedSinceLog++;
      // Never silent, but one line per second at most: the queue fills only when the master is away.
      if (Date.now() - this.lastDropLog >= 1000) {
        this.logger.error({ dropped: this.droppedSinceLog, queueMax: this.o.queueMax, callId: event.kind === 'start' ? event.record.callId : event.callId }, 'call event queue full: events dropped; calls will be re-asserted once the master is back');
        this.lastDropLog = Date.now();
        this.droppedSinceLog = 0;
      }
      return;
    }
    this.queue.push(event);
    this.metrics.queued.set(this.queue.length);
    void this.drain();
  }

  /** Sends queued events in order, a batch at a time; on failure keeps them and tries again later. */
  private async drain(): Promise<void> {
    if (this.draining || this.closed || this.client.status !== 'ready') return;
    this.draining = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.slice(0, BATCH);
        const pipeline = this.client.pipeline();
        const p = pipeline as unknown as RecordingClient;
        for (const e of batch) {
          if (e.kind === 'start') p.callStart(...callStartArgs(e.record));
          else if (e.kind === 'end') p.callEnd(...callEndArgs(e.account, e.callId, e.at, { node: this.o.node, instance: this.instance }));
          else if (e.kind === 'slot') p.takeSlot(...takeSlotArgs(e.account, e.callId, this.o.livenessTtlMs, undefined));
          else p.zrem(setupKey(e.account), e.callId);
        }
        let done = 0;
        try {
          const results = (await pipeline.exec()) ?? [];
          while (done < results.length && !results[done]![0]) done++;
        } catch (err) {
          this.logger.debug({ err: (err as Error).message }, 'call events not written yet');
        }
        // Replaying from the first event not confirmed is safe: every event sets a field to a state.
        this.queue.splice(0, done);
        this.metrics.written.inc(done);
        this.metrics.queued.set(this.queue.length);
        if (done < batch.length) {
          this.retryLater();
          return;
        }
      }
      if (this.needResync) await this.resync();
      else if (this.needReconcile) await this.reconcile();
    } finally {
      this.draining = false;
    }
  }

  private retryLater(): void {
    if (this.retryTimer || this.closed) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.drain();
    }, RETRY_MS);
  }

  /**
   * Renews `edge:{node}:alive`. If it had lapsed (or another process of this node wrote it), the
   * controller may have removed this edge's calls: re-assert them.
   */
  private async renewLiveness(): Promise<void> {
    if (this.closed || this.client.status !== 'ready') return;
    try {
      const previous = await this.client.set(edgeAliveKey(this.o.node), this.instance, 'PX', this.o.livenessTtlMs, 'GET');
      const edges = await this.client.edgePresence(EDGES_PRESENT_KEY, this.o.node, this.o.livenessTtlMs);
      const now = Date.now();
      // Lapsed (renewals failing for a TTL): the peers stopped counting this edge; they count it
      // again only from their next renewal, so it is counted afresh from now.
      const counted = this.presence && now - this.presence.renewedAt <= this.o.livenessTtlMs;
      this.presence = { edges, renewedAt: now, since: counted ? this.presence!.since : now };
      // The slots of calls still ringing live as long as this process does.
      for (const [callId, account] of this.slots) this.enqueue({ kind: 'slot', callId, account });
      if (previous !== this.instance) {
        if (previous !== null || this.active.size > 0) this.logger.warn({ previous }, 'edge liveness had lapsed or was taken over: re-asserting call records');
        this.needResync = true;
      } else {
        this.needReconcile = true;
      }
      void this.drain();
    } catch (err) {
      this.logger.debug({ err: (err as Error).message }, 'liveness not renewed');
    }
  }

  /**
   * Makes this node's records on the master exactly the calls this process carries: writes every
   * active call, removes records of this node that are not (ended while events were dropped, or
   * left by an earlier process of this node). Runs only with an empty queue, inside the drainer.
   */
  private async resync(): Promise<void> {
    try {
      const accounts = await this.client.smembers(CALLS_INDEX_KEY);
      const reads = this.client.pipeline();
      for (const account of accounts) reads.hgetall(callsKey(account));
      const hashes = (await reads.exec()) ?? [];
      const writes = this.client.pipeline() as unknown as RecordingClient & { exec(): Promise<[Error | null, unknown][] | null> };
      let removed = 0;
      accounts.forEach((account, i) => {
        const [err, fields] = hashes[i] ?? [new Error('no reply'), null];
        if (err) throw err;
        for (const [callId, raw] of Object.entries(fields as Record<string, string>)) {
          const record = parseCallRecord(raw);
          if (record?.node !== this.o.node || this.active.has(callId)) continue;
          // Ended here while its event was dropped: debited to its remembered end. Left by an
          // earlier process of this node: debited up to now, as the controller does for a dead
          // edge's calls (the process is gone, and so is the call's end time). Not charging them
          // would let the account's next call run past its credit unblocked (the soak found it).
          const endedAt = record.instance === this.instance ? this.recentlyEnded.get(callId) : Date.now();
          writes.callEnd(...callEndArgs(account, callId, endedAt, record));
          removed++;
        }
      });
      for (const record of this.active.values()) writes.callStart(...callStartArgs(record));
      const results = (await writes.exec()) ?? [];
      const failed = results.find(([e]) => e);
      if (failed) throw failed[0] as Error;
      this.needResync = false;
      this.metrics.resyncs.inc();
      this.logger.info({ asserted: this.active.size, removed }, 'call records re-asserted');
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'call records resync failed; will retry');
      this.retryLater();
    }
  }

  /**
   * Makes this process's records on the master its calls in progress, from its per-edge hash:
   * ends recorded calls that ended here (replayed with their end time: the debit), records calls
   * in progress that are missing. Inside the drainer, with nothing queued.
   */
  private async reconcile(): Promise<void> {
    try {
      const recorded = await this.client.hgetall(edgeCallsKey(edgeMember(this.o.node, this.instance)));
      const writes = this.client.pipeline() as unknown as RecordingClient & { exec(): Promise<[Error | null, unknown][] | null> };
      let ended = 0;
      let restored = 0;
      for (const [callId, account] of Object.entries(recorded)) {
        if (this.active.has(callId)) continue;
        writes.callEnd(...callEndArgs(account, callId, this.recentlyEnded.get(callId), { node: this.o.node, instance: this.instance }));
        ended++;
      }
      for (const record of this.active.values()) {
        if (recorded[record.callId] !== undefined) continue;
        writes.callStart(...callStartArgs(record));
        restored++;
      }
      if (ended + restored > 0) {
        const results = (await writes.exec()) ?? [];
        const failed = results.find(([e]) => e);
        if (failed) throw failed[0] as Error;
        this.logger.warn({ ended, restored }, 'call records reconciled: the master had lost writes (a failover before they replicated)');
      }
      this.needReconcile = false;
      const forgetBefore = Date.now() - ENDED_MEMORY_MS;
      for (const [callId, at] of this.recentlyEnded) {
        if (at >= forgetBefore) break;
        this.recentlyEnded.delete(callId);
      }
    } catch (err) {
      this.logger.debug({ err: (err as Error).message }, 'call records not reconciled yet');
    }
  }

  /**
   * How many edges share the limits (this one included), or undefined while that is not known
   * for sure: until every peer has counted this edge (a liveness TTL after it was first counted,
   * or counted again after its presence lapsed: each renews three times in it), or once the last
   * renewal is older than the TTL (a peer may have joined since).
   */
  sharingEdges(now = Date.now()): number | undefined {
    const p = this.presence;
    if (!p || now - p.renewedAt > this.o.livenessTtlMs || now - p.since < this.o.livenessTtlMs) return undefined;
    return p.edges;
  }

  private get renewalIntervalMs(): number {
    return Math.max(50, Math.floor(this.o.livenessTtlMs / 3));
  }

  /** The edge's connection to the current master (it follows Sentinel), for the other writes the edge makes there. */
  get master(): Redis {
    return this.client;
  }

  /** The account of a call this process answered and has not ended; undefined for any other. */
  accountOf(callId: string): string | undefined {
    return this.active.get(callId)?.account;
  }

  /**
   * The controller's orders to end calls this process carries (Call-ID -> order); orders that do
   * not parse are left out (and never acted on). Throws when the master does not answer.
   */
  async cutOrders(): Promise<Map<string, CutOrder>> {
    const raw = await this.client.hgetall(cutOrdersKey(edgeMember(this.o.node, this.instance)));
    const orders = new Map<string, CutOrder>();
    for (const [callId, value] of Object.entries(raw)) {
      const order = parseCutOrder(value);
      if (order) orders.set(callId, order);
      else this.logger.warn({ callId }, 'cut order that does not parse: ignored');
    }
    return orders;
  }

  /** Tries to write what is queued within `ms`, then disconnects. The liveness key expires by itself. */
  async stop(ms = 1000): Promise<void> {
    const deadline = Date.now() + ms;
    while (this.queue.length > 0 && this.client.status === 'ready' && Date.now() < deadline) {
      await this.drain();
      if (this.queue.length > 0) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    this.closed = true;
    clearInterval(this.livenessTimer);
    clearTimeout(this.retryTimer);
    this.client.disconnect();
  }
}
