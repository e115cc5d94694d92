import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';

/**
 * Per-call times from SIPp's -trace_msg log. SIPp 3.6 opens each message block with a dashed line
 * carrying the wall-clock time with microseconds, in local time:
 *
 *   ----------------------------------------------- 2026-11-25 03:12:21.612110
 *   UDP message sent (514 bytes):
 *   <blank>
 *   INVITE sip:callee@127.0.0.1:36691 SIP/2.0
 *   ...
 *
 * (received blocks say `UDP message received [239] bytes :`). SIPp takes the stamp with
 * gettimeofday() right after sendto() returns (socket.cpp, write()) and when it processes a received
 * message (process_message()), so PDD here spans the same two instants as SIPp's own rtd, without
 * rtd's whole milliseconds.
 */

export interface CallTrace {
  callId: string;
  /** X-Account-Id of the INVITE. */
  account: string | undefined;
  /** First INVITE sent (retransmissions ignored), µs since the epoch. */
  inviteUs: number | undefined;
  /** First 18x or final (>= 200) response to the INVITE, µs since the epoch. */
  answerUs: number | undefined;
  /** The status of that first answer (180, 183, 403, 503...). */
  answerStatus: number | undefined;
  /** The final response to the INVITE. */
  finalStatus: number | undefined;
  finalReason: string | undefined;
  /** X-Credit-Decision of the final response, when the edge answered itself. */
  decision: string | undefined;
  /** 200 OK to the INVITE received: the call connected (µs since the epoch). */
  connectedUs: number | undefined;
  /** The first BYE of the call, sent or received: the call ended (µs since the epoch). */
  byeUs: number | undefined;
  /** That first BYE came from the network (the edge ended the call), not from this SIPp. */
  byeReceived: boolean;
  /** Its Reason header (RFC 3326), when it had one. */
  byeReason: string | undefined;
  /** BYEs received, retransmissions not counted (distinct Via branches): more than one, the call was ended twice. */
  byesReceived: number;
  /** Contact of the final 2xx: the carrier that answered (host:port). */
  answeredBy: string | undefined;
}

/** PDD of a call in ms (fractional), or undefined when it had no answer. */
export function pddMs(call: CallTrace): number | undefined {
  return call.inviteUs !== undefined && call.answerUs !== undefined ? (call.answerUs - call.inviteUs) / 1000 : undefined;
}

const BLOCK = /^-{20,}\s+(\d{4})-(\d\d)-(\d\d)\s+(\d\d):(\d\d):(\d\d)\.(\d{1,6})\s*$/;
const DIRECTION = /message (sent|received)/;

/** Wall-clock stamp of a block header, as µs since the epoch (SIPp writes local time). */
export function stampUs(line: string): number | undefined {
  const m = BLOCK.exec(line);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, frac] = m;
  const ms = new Date(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)).getTime();
  return ms * 1000 + Number(frac!.padEnd(6, '0'));
}

interface Block {
  at: number;
  sent: boolean;
  lines: string[];
}

/** Via branches of the BYEs each call received, to tell a second BYE from a retransmission. */
type ByeBranches = Map<string, Set<string>>;

/** Streams the log (it can be tens of MB) and folds it into one record per Call-ID. */
export async function readTrace(file: string): Promise<CallTrace[]> {
  const calls = new Map<string, CallTrace>();
  const byeBranches: ByeBranches = new Map();
  let block: Block | undefined;
  const flush = () => {
    if (block) fold(calls, byeBranches, block);
    block = undefined;
  };
  const rl = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
  for await (const line of rl) {
    const at = line.startsWith('-----') ? stampUs(line) : undefined;
    if (at !== undefined) {
      flush();
      block = { at, sent: false, lines: [] };
      continue;
    }
    if (!block) continue;
    if (block.lines.length === 0 && line.trim() === '') continue;
    const dir = block.lines.length === 0 && !line.startsWith('SIP/2.0') && DIRECTION.exec(line);
    if (dir) {
      block.sent = dir[1] === 'sent';
      continue;
    }
    // Headers end at the first blank line after the start line: the body is not needed.
    if (block.lines.length > 0 && line.trim() === '') {
      flush();
      continue;
    }
    block.lines.push(line);
  }
  flush();
  return [...calls.values()].sort((a, b) => (a.inviteUs ?? Infinity) - (b.inviteUs ?? Infinity));
}

function header(lines: string[], name: string): string | undefined {
  const prefix = name.toLowerCase() + ':';
  for (const l of lines) if (l.toLowerCase().startsWith(prefix)) return l.slice(prefix.length).trim();
  return undefined;
}

function fold(calls: Map<string, CallTrace>, byeBranches: ByeBranches, block: Block): void {
  const [start, ...headers] = block.lines;
  const callId = start && header(headers, 'Call-ID');
  if (!start || !callId) return;
  let call = calls.get(callId);
  if (!call) {
    call = { callId, account: undefined, inviteUs: undefined, answerUs: undefined, answerStatus: undefined, finalStatus: undefined, finalReason: undefined, decision: undefined, connectedUs: undefined, byeUs: undefined, byeReceived: false, byeReason: undefined, byesReceived: 0, answeredBy: undefined };
    calls.set(callId, call);
  }
  const status = /^SIP\/2\.0 (\d{3}) ?(.*)$/.exec(start);
  if (!status) {
    if (block.sent && start.startsWith('INVITE ') && call.inviteUs === undefined) {
      call.inviteUs = block.at;
      call.account = header(headers, 'X-Account-Id');
    }
    if (!start.startsWith('BYE ')) return;
    if (call.byeUs === undefined) {
      call.byeUs = block.at;
      call.byeReceived = !block.sent;
      call.byeReason = header(headers, 'Reason');
    }
    if (!block.sent) {
      const branches = byeBranches.get(callId) ?? new Set<string>();
      branches.add(/branch=([^;\s,]+)/i.exec(header(headers, 'Via') ?? '')?.[1] ?? '');
      byeBranches.set(callId, branches);
      call.byesReceived = branches.size;
    }
    return;
  }
  if (block.sent || !/\bINVITE\b/i.test(header(headers, 'CSeq') ?? '')) return;
  const code = Number(status[1]);
  if (code >= 180 && call.answerUs === undefined) {
    call.answerUs = block.at;
    call.answerStatus = code;
  }
  if (code >= 200 && code < 300 && call.connectedUs === undefined) {
    call.connectedUs = block.at;
    call.answeredBy = /<?sips?:(?:[^@>;]*@)?([^>;]+)/.exec(header(headers, 'Contact') ?? '')?.[1];
  }
  if (code >= 200 && call.finalStatus === undefined) {
    call.finalStatus = code;
    call.finalReason = status[2]!.trim();
    call.decision = header(headers, 'X-Credit-Decision');
  }
}
