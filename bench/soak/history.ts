/**
 * What the soak's checker judges from: everything recorded from the outside while the system ran,
 * never the edges' own logs. SIPp's message traces give the calls; the runner's own records give
 * the accounts' definitions, the operator actions and the nemesis' faults; the Redis history gives
 * which node was master when (Sentinel's +switch-master events), what the controllers wrote where
 * (MONITOR on every node) and the audit stream (controller and operator blocks). All times are ms
 * since the epoch (fractions allowed), all from this machine's clock.
 */

/** What an account is meant to be, as the soak defines it (and its operator changes it). */
export interface RecordedAccount {
  enabled: boolean;
  /** Balance in currency units; undefined: no balance field (not credit-limited). */
  balance: number | undefined;
  /** Price per minute of one call; undefined: no rate. */
  ratePerMin: number | undefined;
  /** An operator's credit block (`credit-edge account block`). Controller blocks come from the audit. */
  operatorBlocked: boolean;
  /** Most calls in progress at once; undefined: no limit. */
  maxChannels: number | undefined;
}

/** The soak's account kinds: which stream calls them and what they should get. */
export type SoakAccountKind = 'funded' | 'disabled' | 'out-of-credit' | 'absent' | 'low-credit' | 'channel-limited';

export interface AccountDefinition {
  id: string;
  kind: SoakAccountKind;
  /** null: the account does not exist in Redis at the start (kind 'absent', or created later by the operator). */
  initial: RecordedAccount | null;
}

export type OperatorActionKind = 'top-up' | 'block' | 'unblock' | 'delete' | 'create' | 'config-reload';

/** One operator action, done through `credit-edge` at `atMs` (the command's start; it took effect by `doneMs`). */
export interface OperatorAction {
  atMs: number;
  doneMs: number;
  kind: OperatorActionKind;
  /** The account changed; undefined for a config reload. */
  account?: string;
  /** The account's recorded state after the action; null: deleted. Undefined for a config reload. */
  after?: RecordedAccount | null;
  /** false: the command failed (e.g. no master during a fault); the recorded state did not change. */
  ok: boolean;
  detail?: string;
}

/** The call streams SIPp places. */
export type CallStream = 'short' | 'long';

/** One call, from SIPp's message trace (the caller's side). */
export interface SoakCall {
  callId: string;
  stream: CallStream;
  account: string;
  /** First INVITE sent. */
  inviteMs: number;
  /** First 18x or final answer to the INVITE; undefined: none. */
  answerMs: number | undefined;
  /** The final status to the INVITE; undefined: none came. */
  status: number | undefined;
  /** The final response's reason phrase (e.g. 'Out Of Call Credit', 'Forbidden'). */
  phrase: string | undefined;
  /** X-Credit-Decision of the final response, when an edge answered itself. */
  decision: string | undefined;
  /**
   * The edge that decided the call (node id): from `edge=` in X-Credit-Decision for the edge's own
   * answers, from the carrier that answered for routed calls (each edge routes to its own carrier).
   * undefined: no edge answered (the SIP server itself, or no answer).
   */
  edge: string | undefined;
  /** When the call was connected (200 OK to the INVITE received); undefined: not connected. */
  connectedMs: number | undefined;
  /** When it ended (BYE sent or received); undefined: never ended while traced. */
  endedMs: number | undefined;
  /** Who ended it: 'network' when the caller received the BYE (the edge cut it; carriers here never hang up first). */
  endedBy?: 'caller' | 'network';
  /** The Reason header of the network's BYE. */
  endReason?: string;
  /** BYEs the caller received, retransmissions not counted. */
  byesReceived?: number;
}

/** The nemesis' fault kinds. */
export type FaultKind =
  | 'replica-restart-empty'
  | 'replica-freeze'
  | 'master-slow'
  | 'master-freeze-failover'
  | 'master-restart-empty'
  | 'flushall'
  | 'mass-delete'
  | 'edge-kill'
  | 'edge-restart'
  | 'sip-server-restart'
  | 'controller-kill'
  | 'replica-cut'
  // The next three wait for the controller's next cut (its audit entry) and strike at once.
  | 'cut-edge-kill'
  | 'cut-controller-kill'
  | 'cut-failover';

export interface FaultWindow {
  kind: FaultKind;
  /** What it hit: a replica's or an edge's name, 'master', ... */
  target: string;
  startMs: number;
  /** When everything it broke was restored (undefined: the run ended first). */
  endMs: number | undefined;
  /** Instants inside the window (e.g. 'failover to :6390', 'dataset declared'). */
  marks: { label: string; atMs: number }[];
  error?: string;
}

/** An edge process stopped (killed) and started again: its cache and connections begin anew. */
export interface EdgeRestart {
  edge: string;
  /** An orderly stop (SIGTERM): it drained from here (refusing new calls, carrying its calls) until killedMs. */
  drainFromMs?: number;
  /** When the process was gone. */
  killedMs: number;
  /** When the new process was ready (undefined: not back by the end). */
  readyMs: number | undefined;
}

/**
 * From this instant, `address` (host:port) was the master: in `masters`, from the first sign of its
 * promotion (ROLE master, +promoted-slave, +switch-master, or the start); in `sentinelMasters`, from
 * the first sample in which a majority of the Sentinels named it.
 */
export interface MasterEpoch {
  address: string;
  fromMs: number;
}

/** A write command a controller's connection ran on a node (MONITOR on that node, with the server's own timestamp). */
export interface ControllerWrite {
  /** host:port of the node that executed it. */
  node: string;
  atMs: number;
  /** The client's name (credit-controller-<name>). */
  client: string;
  command: string;
}

/** A block or unblock in the audit stream (`audit:credit`), as read from the master during the run. */
export interface AuditRecord {
  /** The stream id's milliseconds: when the master wrote it. */
  atMs: number;
  action: 'block' | 'unblock';
  account: string;
  /** 'controller' for the credit controller's own blocks and lifts, 'operator' for `credit-edge account`. */
  by: 'controller' | 'operator';
}

/** A cut in the audit stream: the controller's order to end one call, as read from the master during the run. */
export interface CutRecord {
  atMs: number;
  account: string;
  callId: string;
  /** `{node}:{instance}` of the edge ordered to end it. */
  edge: string;
  controller: string;
}

/** Call records left on the master at the end, after every call ended and the edges settled. */
export interface FinalRecords {
  /** Call records still present (calls:{account} fields): a leak. */
  leaked: { account: string; callId: string }[];
  /** Per-account totals that disagree with the records (the controller's sums): a ghost. */
  ghosts: { account: string; detail: string }[];
}

export interface SoakSettings {
  /** The edges' cache.max_stale_ms. */
  maxStaleMs: number;
  /** How long a change on the master may take to decide calls on every edge (slack for the checker). */
  propagationMs: number;
  /** The controller's round. */
  roundMs: number;
  /** A dry account must be blocked within this long of controller-healthy time. */
  blockBoundMs: number;
  /** How long after a SIP server or edge restart calls may go unanswered or get the SIP server's 503. */
  restartSettleMs: number;
  /**
   * Optional (added for the checker): how long a call's record may outlive the kill of the edge
   * that carried it (the edge's liveness TTL + the controller's dead-edge grace + a round). Until
   * then the record still counts for the channel limit and the projection, and the controller
   * holds the account as unknown (edge-in-doubt: no block). Undefined: until the end of the run.
   */
  deadEdgeRecordMs?: number;
  /**
   * Optional: a call of an account that certainly ran dry must have ended within this long of
   * controller-healthy time (controller.cut_calls on). Undefined: cuts are not judged.
   */
  cutBoundMs?: number;
}

export interface SoakHistory {
  startMs: number;
  endMs: number;
  settings: SoakSettings;
  accounts: AccountDefinition[];
  operatorActions: OperatorAction[];
  calls: SoakCall[];
  faults: FaultWindow[];
  edgeRestarts: EdgeRestart[];
  masters: MasterEpoch[];
  /** The master a majority of the Sentinels named (GET-MASTER-ADDR-BY-NAME), sampled every 100 ms. */
  sentinelMasters: MasterEpoch[];
  controllerWrites: ControllerWrite[];
  audit: AuditRecord[];
  /** The controller's cuts (optional: histories from before cuts have none). */
  cuts?: CutRecord[];
  finalRecords: FinalRecords;
}
