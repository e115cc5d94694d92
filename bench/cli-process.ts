import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { onProcessExit } from '../src/dev/exit-cleanup.js';
import { packageRoot } from '../src/dev/sipp.js';

/**
 * A `credit-edge` command run as its own Node process, as in production (`node dist/src/cli.js
 * edge ...`, or `node dist/src/dev/cli.js engine ...`), for the benchmark. Its stdout and stderr go to files (never pipes, so the
 * runner's event loop never throttles its logging); stop() ends it by PID (SIGTERM, SIGKILL after
 * a grace), and a process 'exit' hook kills it if the runner dies first.
 */

/** How long stop() waits after SIGTERM: a --cpu-prof process writes its profile on the way out. */
const STOP_GRACE_MS = 10_000;

export interface CliProcess {
  name: string;
  pid: number;
  /** Resolves with the first match of `pattern` in what the process wrote since it started (stdout or stderr). */
  waitForOutput(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
  /** The last lines it wrote, for error messages. */
  tail(lines?: number): string;
  readonly running: boolean;
  /** SIGTERM, then SIGKILL if it is still running after `graceMs` (default 10 s). */
  stop(graceMs?: number): Promise<void>;
  /** SIGKILL (a crash), resolved once it is gone. */
  kill(): Promise<void>;
}

/**
 * The built CLI; the benchmark runs what `npm run build` produced (npm run bench builds first):
 * `credit-edge` (the product), or with `dev` `credit-edge-dev` (its development kit: the engine).
 */
export function builtCli(dev = false): string {
  const cli = path.join(packageRoot(), 'dist', 'src', ...(dev ? ['dev', 'cli.js'] : ['cli.js']));
  if (!existsSync(cli)) throw new Error(`${cli} does not exist: run \`npm run build\` first`);
  return cli;
}

/** The environment for a child: the runner's, without config overrides, so the file says it all. */
export function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('CREDIT_EDGE_') && k !== 'LOG_LEVEL') env[k] = v;
  return { ...env, ...extra };
}

export interface CliOptions {
  name: string;
  args: string[];
  /** Run credit-edge-dev (the development kit) instead of credit-edge. */
  dev?: boolean;
  /** Another build of the CLI to run (its path relative to `cwd`), e.g. an image's layout. */
  script?: string;
  cwd?: string;
  nodeFlags?: string[];
  stdoutFile: string;
  stderrFile: string;
  env?: Record<string, string>;
}

export function startCli(o: CliOptions): CliProcess {
  const size = (file: string) => (existsSync(file) ? statSync(file).size : 0);
  // The files are appended to (one edge per arm): only what this process wrote counts.
  const from = { out: size(o.stdoutFile), err: size(o.stderrFile) };
  const out = openSync(o.stdoutFile, 'a');
  const err = o.stderrFile === o.stdoutFile ? out : openSync(o.stderrFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(process.execPath, [...(o.nodeFlags ?? []), o.script ?? builtCli(o.dev), ...o.args], {
      stdio: ['ignore', out, err],
      ...(o.cwd !== undefined && { cwd: o.cwd }),
      // Its own process group: a Ctrl-C reaches the runner, which then stops it in order.
      detached: true,
      env: childEnv(o.env ?? {}),
    });
  } finally {
    closeSync(out);
    if (err !== out) closeSync(err);
  }
  child.unref();
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${o.name}: could not start ${process.execPath}`);
  let running = true;
  const exited = new Promise<void>((resolve) => {
    const gone = () => {
      running = false;
      unregister();
      resolve();
    };
    child.once('exit', gone);
    child.once('error', gone);
  });
  const signal = (s: NodeJS.Signals) => {
    if (!running) return;
    try {
      process.kill(pid, s);
    } catch {
      // already gone: 'exit' follows
    }
  };
  const unregister = onProcessExit(() => signal('SIGKILL'));

  const written = () => {
    const read = (file: string, offset: number) => {
      try {
        return readFileSync(file).subarray(offset).toString('utf8');
      } catch {
        return '';
      }
    };
    return o.stderrFile === o.stdoutFile ? read(o.stdoutFile, from.out) : read(o.stdoutFile, from.out) + '\n' + read(o.stderrFile, from.err);
  };
  const tail = (lines = 8) => written().trim().split('\n').slice(-lines).join(' | ') || '(no output)';

  return {
    name: o.name,
    pid,
    get running() {
      return running;
    },
    tail,
    async waitForOutput(pattern, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const m = pattern.exec(written());
        if (m) return m;
        if (!running) throw new Error(`${o.name} (pid ${pid}) exited during startup: ${tail()}`);
        if (Date.now() > deadline) throw new Error(`${o.name} (pid ${pid}) not started after ${timeoutMs} ms: ${tail()}`);
        await sleep(50);
      }
    },
    async kill() {
      signal('SIGKILL');
      await exited;
    },
    async stop(graceMs = STOP_GRACE_MS) {
      if (!running) return;
      signal('SIGCONT');
      signal('SIGTERM');
      const gone = await Promise.race([exited.then(() => true), sleep(graceMs).then(() => false)]);
      if (!gone) {
        signal('SIGKILL');
        await exited;
      }
    },
  };
}
