import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../src/dev/ports.js';

/**
 * SIPp runner for tests: spawns `sipp` bounded in time (its own -timeout plus a hard kill), with
 * -trace_msg and -trace_stat into a private temp dir, and returns the exit code, the call counts
 * and the message trace. Every process started here is killed by `stopAllSipp()` (call it in
 * afterAll/afterEach) even if a test fails half-way.
 */

const SIPP_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../sipp');

export interface SippOptions {
  /** A scenario in sipp/ (name without .xml), or a path to an XML file. */
  scenario: string;
  /** {{NAME}} substitutions in the scenario text (TIMEWAIT defaults to 500). */
  vars?: Record<string, string>;
  /** host:port to send calls to (UAC); omit for a UAS. */
  remote?: string;
  /** Local SIP port; default a free one. */
  port?: number;
  /** u1 (UDP, one socket, default) or t1 (TCP, one connection). */
  transport?: 'u1' | 't1';
  /** -m: calls to place (UAC) or answer (UAS) before exiting. Default 1. */
  calls?: number;
  /** -r: calls per second (UAC). Default 10. */
  rate?: number;
  /** -l: limit of simultaneous calls (UAC). */
  limit?: number;
  /** -s: user part of the Request-URI; the test app dispatches on it. */
  service?: string;
  /** Hard bound on the run, ms. Default 20000. */
  timeoutMs?: number;
  /** -lost: percentage of packets SIPp drops on purpose. */
  lost?: number;
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

export interface SippResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** True when the hard bound killed it. */
  killed: boolean;
  successful: number;
  failed: number;
  messages: TracedMessage[];
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

export async function startSipp(opts: SippOptions): Promise<SippProcess> {
  const port = opts.port ?? (await freePort({ udp: true }));
  const mediaPort = await freePort({ udp: true });
  const dir = mkdtempSync(path.join(tmpdir(), 'sipp-'));
  const scenarioPath = prepareScenario(opts.scenario, { TIMEWAIT: '500', ...opts.vars }, dir);
  const timeoutMs = opts.timeoutMs ?? 20_000;
  const msgFile = path.join(dir, 'messages.log');
  const statFile = path.join(dir, 'stats.csv');
  const args = [
    ...(opts.remote ? [opts.remote] : []),
    '-sf', scenarioPath,
    '-i', '127.0.0.1',
    '-p', String(port),
    '-mp', String(mediaPort),
    '-t', opts.transport ?? 'u1',
    '-m', String(opts.calls ?? 1),
    '-timeout', `${Math.ceil(timeoutMs / 1000)}s`,
    '-timeout_error',
    '-nostdin',
    '-trace_msg', '-message_file', msgFile,
    '-trace_stat', '-stf', statFile, '-fd', '1',
    ...(opts.remote ? ['-r', String(opts.rate ?? 10)] : []),
    ...(opts.limit ? ['-l', String(opts.limit)] : []),
    ...(opts.service ? ['-s', opts.service] : []),
    ...(opts.lost ? ['-lost', String(opts.lost)] : []),
    ...(opts.extraArgs ?? []),
  ];
  const child = spawn('sipp', args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir });
  running.add(child);
  let output = '';
  const keep = (b: Buffer) => {
    output = (output + b.toString('utf8')).slice(-8000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let killed = false;
  const hard = setTimeout(() => {
    killed = true;
    child.kill('SIGKILL');
  }, timeoutMs + 3000);

  const done = new Promise<SippResult>((resolve) => {
    child.once('error', (err) => {
      output += `\nspawn error: ${err.message}`;
    });
    child.once('close', (code, signal) => {
      clearTimeout(hard);
      running.delete(child);
      const result: SippResult = {
        exitCode: code,
        signal,
        killed,
        ...readStats(statFile),
        messages: existsSync(msgFile) ? parseTrace(readFileSync(msgFile, 'utf8')) : [],
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

export async function runSipp(opts: SippOptions): Promise<SippResult> {
  return (await startSipp(opts)).done;
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

function prepareScenario(scenario: string, vars: Record<string, string>, dir: string): string {
  const src = scenario.endsWith('.xml') ? scenario : path.join(SIPP_DIR, `${scenario}.xml`);
  let text = readFileSync(src, 'utf8');
  for (const [k, v] of Object.entries(vars)) text = text.split(`{{${k}}}`).join(v);
  const out = path.join(dir, path.basename(src));
  writeFileSync(out, text);
  return out;
}

function readStats(file: string): { successful: number; failed: number } {
  if (!existsSync(file)) return { successful: 0, failed: 0 };
  const lines = readFileSync(file, 'utf8').trim().split('\n');
  const head = lines[0]?.split(';') ?? [];
  const last = lines[lines.length - 1]?.split(';') ?? [];
  const col = (name: string) => {
    const i = head.indexOf(name);
    return i >= 0 ? Number(last[i]) || 0 : 0;
  };
  return { successful: col('SuccessfulCall(C)'), failed: col('FailedCall(C)') };
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
