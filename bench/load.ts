import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startSipp, type RttSample, type SippResult } from '../src/dev/sipp.js';
import type { Logger } from '../src/log.js';
import type { Arm } from './profiles.js';
import { localCopyCounts } from './edge-admin.js';
import { cpuMsOf, peakRssMbOf } from './proc-stats.js';
import type { Rig } from './rig.js';
import { readTrace, type CallTrace } from './trace.js';

/**
 * Drives one arm: a SIPp UAC (sipp/edge-uac.xml) placing `cps` calls per second for `durationS`
 * seconds, one account per call from an injection file, with its message trace on; the arm's
 * faults fired on schedule meanwhile; the CPU time of the edge process (and of the SIP server
 * process, when it is ours) read from /proc at the arm's start and end. Bounded: SIPp has its own -timeout
 * and a hard kill, and every fault is awaited (each restores what it broke in a finally).
 */

export interface FaultWindow {
  label: string;
  startMs: number;
  endMs: number | undefined;
  marks: { label: string; atMs: number }[];
  /** Figures the fault measured itself (e.g. seconds to the first cache-served answer). */
  figures: Record<string, number>;
  error?: string;
}

export interface ArmResult {
  arm: Arm;
  /** Wall clock (ms since the epoch) when SIPp was started. */
  t0Ms: number;
  endMs: number;
  calls: CallTrace[];
  /** SIPp's own rtd samples (whole ms), the cross-check. */
  rtt: RttSample[];
  sipp: Pick<SippResult, 'exitCode' | 'signal' | 'killed' | 'successful' | 'failed'>;
  faults: FaultWindow[];
  /** Over the measured phase: CPU ms of the edge process and of our SIP server process (null: not ours or gone). */
  cpu: { edgeMs: number | null; sipServerMs: number | null };
  /** Peak RSS (VmHWM) of the edge process at the arm's end, MB. */
  edgeRssMb: number | null;
  /** The edge's local copy hits and misses so far, read at the arm's start and end and at each fault's start and end. */
  localCopy: LocalCopySample[];
}

export interface LocalCopySample {
  atMs: number;
  hits: number;
  misses: number;
}

export interface DriveOptions {
  rig: Rig;
  arm: Arm;
  accounts: string[];
  logger: Logger;
  /** Keep the raw message trace at this path (otherwise it is deleted after parsing). */
  keepTraceAs?: string;
  /** Warm-up: no trace, no faults, nothing kept. */
  warmup?: boolean;
}

export async function driveArm(o: DriveOptions): Promise<ArmResult> {
  const { rig, arm } = o;
  const calls = Math.max(1, Math.round(arm.cps * arm.durationS));
  const dir = mkdtempSync(path.join(tmpdir(), 'credit-edge-bench-'));
  const traceFile = path.join(dir, 'messages.log');
  const edgePid = rig.edge.pid;
  const sipPid = rig.sipServer.pid;
  const cpuAtStart = { edge: cpuMsOf(edgePid), sip: sipPid === undefined ? undefined : cpuMsOf(sipPid) };
  try {
    const sipp = await startSipp({
      scenario: 'edge-uac',
      // HOLD 0: a routed call is answered, ACKed and hung up at once; PDD is all that is measured.
      vars: { HOLD: '0', TIMEWAIT: '200' },
      remote: rig.sipTarget,
      service: 'callee',
      injection: o.accounts.slice(0, calls).map((a) => [a]),
      calls,
      rate: arm.cps,
      timeoutMs: arm.durationS * 1000 + 20_000,
      traceMessages: false,
      traceRtt: !o.warmup,
      // -trace_msg into a file of ours: src/dev/sipp.ts would parse it into memory without the stamps.
      extraArgs: o.warmup ? [] : ['-trace_msg', '-message_file', traceFile],
    });
    const t0Ms = Date.now();
    const localCopy: LocalCopySample[] = [];
    // Few samples (the edge's /metrics costs it some CPU): phase boundaries only.
    const sampleLocalCopy = async () => {
      if (o.warmup) return;
      const atMs = Date.now();
      const counts = await localCopyCounts(rig.edge.adminUrl).catch(() => undefined);
      if (counts) localCopy.push({ atMs, ...counts });
    };
    await sampleLocalCopy();
    const faults: FaultWindow[] = [];
    const running = (o.warmup ? [] : arm.faults).map(
      (fault) =>
        new Promise<void>((resolve) => {
          setTimeout(() => {
            const w: FaultWindow = { label: fault.label, startMs: Date.now(), endMs: undefined, marks: [], figures: {} };
            faults.push(w);
            o.logger.info({ fault: fault.label }, 'bench: fault start');
            void sampleLocalCopy();
            fault
              .run({ topology: rig.topology, edgeAdmin: rig.edge.adminUrl, sipTarget: rig.sipTarget, mark: (label) => w.marks.push({ label, atMs: Date.now() }), figure: (name, value) => (w.figures[name] = value) })
              .catch((err: unknown) => {
                w.error = err instanceof Error ? err.message : String(err);
                o.logger.error({ fault: fault.label, err }, 'bench: fault failed');
              })
              .finally(() => {
                w.endMs = Date.now();
                void sampleLocalCopy().then(resolve);
              });
          }, fault.atS * 1000);
        }),
    );
    const result = await sipp.done;
    const endMs = Date.now();
    await sampleLocalCopy();
    const cpuAtEnd = { edge: cpuMsOf(edgePid), sip: sipPid === undefined ? undefined : cpuMsOf(sipPid) };
    const edgeRssMb = peakRssMbOf(edgePid) ?? null;
    await Promise.all(running);
    const traces = o.warmup ? [] : await readTrace(traceFile);
    if (o.keepTraceAs && !o.warmup) copyFileSync(traceFile, o.keepTraceAs);
    return {
      arm,
      t0Ms,
      endMs,
      calls: traces,
      rtt: result.rtt,
      sipp: { exitCode: result.exitCode, signal: result.signal, killed: result.killed, successful: result.successful, failed: result.failed },
      faults,
      cpu: { edgeMs: cpuSpent(cpuAtStart.edge, cpuAtEnd.edge), sipServerMs: cpuSpent(cpuAtStart.sip, cpuAtEnd.sip) },
      edgeRssMb,
      localCopy: localCopy.sort((a, b) => a.atMs - b.atMs),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const cpuSpent = (start: number | undefined, end: number | undefined) => (start === undefined || end === undefined ? null : Math.round((end - start) * 10) / 10);
