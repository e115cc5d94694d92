import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { onProcessExit } from './exit-cleanup.js';
import { freePort } from './ports.js';

/**
 * SIPp runner for the demo (a UAS as the downstream carrier), the benchmark (UAC load) and the
 * tests: spawns `sipp` with a scenario from the project's sipp/ directory, bounded in time (its own
 * -timeout plus a hard kill), with -trace_stat (and by default -trace_msg) into a private temp
 * dir, and returns the exit code, the call counts, the last statistics row and the message trace.
 *
 * Every SIPp started here is killed by `stopAllSipp()`, and in any case when the Node process
 * exits (exit-cleanup hook), so a failed test or a crashed demo never leaves one behind. Each child
 * runs in its own process group, so a Ctrl-C in the terminal reaches only the parent, which stops
 * its SIPps in order.
 */

/** The directory holding package.json: the project root from src/dev and from dist/src/dev alike. */
export function packageRoot(from: string = path.dirname(fileURLToPath(import.meta.url))): string {
  let dir = from;
  for (;;) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${from}`);
    dir = parent;
  }
}

/** The project's sipp/ directory (scenarios, injection files). */
export function sippDir(): string {
  return path.join(packageRoot(), 'sipp');
}

/** A scenario name in sipp/ (without .xml) or a path to an XML file, as an absolute path. */
export function scenarioPath(scenario: string): string {
  return scenario.endsWith('.xml') ? path.resolve(scenario) : path.join(sippDir(), `${scenario}.xml`);
}

export type SippTransport = 'u1' | 'un' | 't1' | 'tn';

export interface SippOptions {
  /** A scenario in sipp/ (name without .xml), or a path to an XML file. */
  scenario: string;
  /**
   * {{NAME}} substitutions in the scenario text, made before SIPp reads it (so values may hold SIPp
   * keywords, and several lines). TIMEWAIT defaults to '500', EXTRA_HEADERS to ''. A placeholder
   * alone on its line with the value '' removes the line; one left without a value is an error
   * before SIPp starts.
   */
  vars?: Record<string, string>;
  /** SIPp generic keywords: `-key NAME VALUE`, used in the scenario as [NAME]. */
  keys?: Record<string, string>;
  /**
   * Injection file (-inf): one row of fields per call, used in the scenario as [field0],
   * [field1], ... (e.g. the account of each call). Rows are taken in order (SEQUENTIAL).
   */
  injection?: string[][];
  /** Digest credentials for [authentication] (-au / -ap). */
  auth?: { username: string; password: string };
  /** host:port to send calls to (UAC); omit for a UAS. */
  remote?: string;
  /** Local address; default 127.0.0.1. */
  localIp?: string;
  /** Local SIP port; default a free one. */
  port?: number;
  /** u1 (UDP, one socket, default), un (UDP, a socket per call), t1 / tn (TCP). */
  transport?: SippTransport;
  /** -m: calls to place (UAC) or answer (UAS) before exiting. Default 1; 0 means no limit. */
  calls?: number;
  /** -r: calls per second (UAC). Default 10. */
  rate?: number;
  /** -l: limit of simultaneous calls (UAC). */
  limit?: number;
  /** -s: user part of the Request-URI; apps may dispatch on it. */
  service?: string;
  /**
   * Hard bound on the run, ms. Default 20000. 0 means unbounded (a demo UAS that runs until
   * stop()); bounded runs also pass SIPp -timeout with -timeout_error.
   */
  timeoutMs?: number;
  /** -lost: percentage of packets SIPp drops on purpose. */
  lost?: number;
  /** -trace_msg into the result's `messages`. Default true; turn off for load. */
  traceMessages?: boolean;
  /**
   * -trace_rtt: every response time measurement (rtd) of every call, into the result's `rtt`
   * (the benchmark's PDD samples). SIPp writes whole milliseconds; the averages in `stats`
   * ('ResponseTime<rtd>(C)') are no finer. Default false.
   */
  traceRtt?: boolean;
  extraArgs?: string[];
}

export interface TracedMessage {
  direction: 'sent' | 'received';
  text: string;
  /** Request method, or undefined for a response. */
  method?: string;
  status?: number;
  reason?: string;
  /** Header values by lowercase name, repeated headers in order. */
  headers: Record<string, string[]>;
}

export interface RttSample {
  /** When the measurement ended, ms since SIPp started. */
  atMs: number;
  /** The measured response time, ms (SIPp writes whole milliseconds). */
  ms: number;
  /** The rtd's name (or number) in the scenario. */
  rtd: string;
}

export interface SippResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** True when the hard bound killed it. */
  killed: boolean;
  successful: number;
  failed: number;
  /** The last -trace_stat row by column name (e.g. 'CallRate(P)', 'ResponseTimepdd(C)'), or {}. */
  stats: Record<string, string>;
  messages: TracedMessage[];
  rtt: RttSample[];
  /** The last 8000 characters of SIPp's stdout and stderr. */
  output: string;
}

export interface SippProcess {
  port: number;
  pid: number;
  done: Promise<SippResult>;
  /** Kills it (SIGTERM, then SIGKILL) and returns what it did so far. */
  stop(): Promise<SippResult>;
}

const running = new Set<ChildProcess>();

/** The command-line arguments for `sipp`, given a prepared scenario file and the ports. */
export function sippArgs(
  opts: SippOptions,
  files: { scenario: string; port: number; mediaPort: number; messages: string; stats: string; injection?: string },
): string[] {
  const timeoutMs = opts.timeoutMs ?? 20_000;
  const traceMessages = opts.traceMessages ?? true;
  return [
    ...(opts.remote ? [opts.remote] : []),
    '-sf', files.scenario,
    '-i', opts.localIp ?? '127.0.0.1',
    '-p', String(files.port),
    '-mp', String(files.mediaPort),
    '-t', opts.transport ?? 'u1',
    ...((opts.calls ?? 1) > 0 ? ['-m', String(opts.calls ?? 1)] : []),
    ...(timeoutMs > 0 ? ['-timeout', `${Math.ceil(timeoutMs / 1000)}s`, '-timeout_error'] : []),
    '-nostdin',
    ...(traceMessages ? ['-trace_msg', '-message_file', files.messages] : []),
    '-trace_stat', '-stf', files.stats, '-fd', '1',
    ...(opts.traceRtt ? ['-trace_rtt', '-rtt_freq', '1'] : []),
    ...(opts.remote ? ['-r', String(opts.rate ?? 10)] : []),
    ...(opts.limit ? ['-l', String(opts.limit)] : []),
    ...(opts.service ? ['-s', opts.service] : []),
    ...(files.injection ? ['-inf', files.injection] : []),
    ...(opts.auth ? ['-au', opts.auth.username, '-ap', opts.auth.password] : []),
    ...Object.entries(opts.keys ?? {}).flatMap(([k, v]) => ['-key', k, v]),
    ...(opts.lost ? ['-lost', String(opts.lost)] : []),
    ...(opts.extraArgs ?? []),
  ];
}

export async function startSipp(opts: SippOptions): Promise<SippProcess> {
  const port = opts.port ?? (await freePort({ udp: true, host: opts.localIp ?? '127.0.0.1' }));
  const mediaPort = await freePort({ udp: true, host: opts.localIp ?? '127.0.0.1' });
  const dir = mkdtempSync(path.join(tmpdir(), 'sipp-'));
  let scenario: string;
  try {
    scenario = prepareScenario(opts.scenario, { TIMEWAIT: '500', EXTRA_HEADERS: '', ...opts.vars }, dir);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const timeoutMs = opts.timeoutMs ?? 20_000;
  const msgFile = path.join(dir, 'messages.log');
  const statFile = path.join(dir, 'stats.csv');
  let injection: string | undefined;
  if (opts.injection) {
    injection = path.join(dir, 'injection.csv');
    writeFileSync(injection, ['SEQUENTIAL', ...opts.injection.map((row) => `${row.join(';')};`)].join('\n') + '\n');
  }
  const args = sippArgs(opts, { scenario, port, mediaPort, messages: msgFile, stats: statFile, ...(injection && { injection }) });
  const child = spawn('sipp', args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir, detached: true });
  running.add(child);
  const unregisterExit = onProcessExit(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  let output = '';
  const keep = (b: Buffer) => {
    output = (output + b.toString('utf8')).slice(-8000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let killed = false;
  const hard =
    timeoutMs > 0
      ? setTimeout(() => {
          killed = true;
          child.kill('SIGKILL');
        }, timeoutMs + 3000)
      : undefined;

  const done = new Promise<SippResult>((resolve) => {
    child.once('error', (err) => {
      output += `\nspawn error: ${err.message}`;
    });
    child.once('close', (code, signal) => {
      if (hard) clearTimeout(hard);
      running.delete(child);
      unregisterExit();
      const result: SippResult = {
        exitCode: code,
        signal,
        killed,
        ...readStats(statFile),
        messages: existsSync(msgFile) ? parseTrace(readFileSync(msgFile, 'utf8')) : [],
        rtt: opts.traceRtt ? readRtt(dir) : [],
        output,
      };
      rmSync(dir, { recursive: true, force: true });
      resolve(result);
    });
  });
  return {
    port,
    pid: child.pid ?? -1,
    done,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 2000);
        const r = await done;
        clearTimeout(t);
        return r;
      }
      return done;
    },
  };
}

/** SIPp's exit code when it cannot bind its socket. */
const SIPP_BIND_FAILED = 254;

/**
 * Runs SIPp to the end. A free port picked here can be taken by another process before SIPp binds
 * it (tests run in parallel): that run never started, so it is tried again on a new port.
 */
export async function runSipp(opts: SippOptions): Promise<SippResult> {
  for (let attempt = 1; ; attempt++) {
    const result = await (await startSipp(opts)).done;
    if (result.exitCode !== SIPP_BIND_FAILED || opts.port !== undefined || attempt === 3) return result;
  }
}

/**
 * Starts a SIPp that keeps running (a carrier UAS) and makes sure it bound its port: the same
 * race as runSipp's (a free port taken before SIPp binds it) would otherwise leave a dead carrier
 * and calls timing out (408) later. Tried again on a new port; any other early exit is an error.
 */
export async function startListeningSipp(opts: SippOptions): Promise<SippProcess> {
  for (let attempt = 1; ; attempt++) {
    const sipp = await startSipp(opts);
    const early = await Promise.race([sipp.done, new Promise<undefined>((resolve) => setTimeout(resolve, 300, undefined))]);
    if (early === undefined) return sipp;
    if (early.exitCode !== SIPP_BIND_FAILED || opts.port !== undefined || attempt === 3) {
      throw new Error(`SIPp ${opts.scenario} exited as it started (code ${early.exitCode}): ${early.output.slice(-300)}`);
    }
  }
}

/** Kills every SIPp this module started and that is still running (by its own PID). */
export async function stopAllSipp(): Promise<void> {
  const waits: Promise<void>[] = [];
  for (const child of running) {
    waits.push(new Promise((r) => child.once('close', () => r())));
    child.kill('SIGKILL');
  }
  await Promise.all(waits);
}

/** Copies the scenario into `dir` with {{NAME}} placeholders filled in; returns the copy's path. */
export function prepareScenario(scenario: string, vars: Record<string, string>, dir: string): string {
  const src = scenarioPath(scenario);
  let text = readFileSync(src, 'utf8');
  for (const [k, v] of Object.entries(vars)) {
    // A placeholder alone on its line with an empty value takes the line with it: an empty line in
    // a message template would end the SIP headers early (SIPp keeps empty lines).
    if (v === '') text = text.replace(new RegExp(`^[ \\t]*\\{\\{${escapeRegExp(k)}\\}\\}[ \\t]*\\r?\\n`, 'gm'), '');
    text = text.split(`{{${k}}}`).join(v);
  }
  const missing = [...new Set([...text.matchAll(/\{\{([A-Za-z0-9_]+)\}\}/g)].map((m) => m[1]))];
  if (missing.length > 0) throw new Error(`SIPp scenario ${src} needs vars: ${missing.join(', ')}`);
  const out = path.join(dir, path.basename(src));
  writeFileSync(out, text);
  return out;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function readStats(file: string): { successful: number; failed: number; stats: Record<string, string> } {
  if (!existsSync(file)) return { successful: 0, failed: 0, stats: {} };
  const lines = readFileSync(file, 'utf8').trim().split('\n');
  const head = lines[0]?.split(';') ?? [];
  const last = lines.length > 1 ? (lines[lines.length - 1]?.split(';') ?? []) : [];
  const stats: Record<string, string> = {};
  head.forEach((name, i) => {
    if (name !== '' && last[i] !== undefined) stats[name] = last[i]!;
  });
  const col = (name: string) => Number(stats[name]) || 0;
  return { successful: col('SuccessfulCall(C)'), failed: col('FailedCall(C)'), stats };
}

/** Reads SIPp's <scenario>_<pid>_rtt.csv from its working directory. */
function readRtt(dir: string): RttSample[] {
  const file = readdirSync(dir).find((f) => f.endsWith('_rtt.csv'));
  return file ? parseRtt(readFileSync(path.join(dir, file), 'utf8')) : [];
}

/**
 * Parses SIPp 3.6's -trace_rtt file: a `Date_ms;response_time_ms;rtd_no` header, then one row per
 * measurement (time since SIPp started, whole milliseconds, the rtd's name).
 */
export function parseRtt(text: string): RttSample[] {
  const out: RttSample[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(';');
    if (f.length < 3) continue;
    const atMs = Number(f[0]);
    const ms = Number(f[1]);
    if (f[0] === '' || f[1] === '' || !Number.isFinite(atMs) || !Number.isFinite(ms)) continue; // the header line
    out.push({ atMs, ms, rtd: f[2]! });
  }
  return out;
}

/** Parses SIPp's -trace_msg log: blocks introduced by a dashed line and "... message sent/received". */
export function parseTrace(log: string): TracedMessage[] {
  const out: TracedMessage[] = [];
  const blocks = log.split(/^-{20,}.*$/m);
  for (const block of blocks) {
    const m = /^\s*\S+ message (sent|received)[^\n]*\n\n?([\s\S]*)$/.exec(block);
    if (!m) continue;
    const text = m[2]!.replace(/\n+$/, '\n');
    const lines = text.split(/\r?\n/);
    const first = lines[0] ?? '';
    const msg: TracedMessage = { direction: m[1] === 'sent' ? 'sent' : 'received', text, headers: {} };
    const st = /^SIP\/2\.0 (\d{3}) ?(.*)$/.exec(first);
    if (st) {
      msg.status = Number(st[1]);
      msg.reason = st[2]!.trim();
    } else {
      msg.method = first.split(' ')[0];
    }
    for (const line of lines.slice(1)) {
      if (line.trim() === '') break;
      const h = /^([^:\s]+)\s*:\s*(.*)$/.exec(line);
      if (!h) continue;
      const name = h[1]!.toLowerCase();
      (msg.headers[name] ??= []).push(h[2]!.trim());
    }
    out.push(msg);
  }
  return out;
}
