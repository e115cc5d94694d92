import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from '../log.js';
import { onProcessExit } from './exit-cleanup.js';
import { bulkReply, firstReplyLine, parseInfo, sleep } from './redis-wire.js';

/** How long stop() waits after SIGTERM before SIGKILL. */
const STOP_GRACE_MS = 1500;

export interface RedisProcessOptions {
  name: string;
  host: string;
  port: number;
  /** The node's own working directory (RDB files, logs, sentinel.conf). */
  dir: string;
  /** Arguments to redis-server (a config file path and/or --option value pairs). */
  args: string[];
  logger: Logger;
}

/**
 * One redis-server (or `redis-server --sentinel`) process: spawn, readiness, signals, stop. It
 * knows nothing about replication; RedisNode and SentinelNode build on it.
 *
 * The child runs in its own process group (detached) so a Ctrl-C in the terminal reaches only
 * the parent, which then stops the topology in order. Output goes to files in the node's directory,
 * never to pipes, so a child never keeps the parent's event loop alive; a process 'exit' hook
 * kills whatever is still running.
 */
export class RedisProcess {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly dir: string;
  private args: string[];
  private readonly logger: Logger;
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private running = false;
  private stopped = false;
  private unregisterExit: (() => void) | undefined;

  constructor(options: RedisProcessOptions) {
    this.name = options.name;
    this.host = options.host;
    this.port = options.port;
    this.dir = options.dir;
    this.args = options.args;
    this.logger = options.logger;
  }

  get pid(): number | undefined {
    return this.running ? this.child?.pid : undefined;
  }

  get isRunning(): boolean {
    return this.running;
  }

  /** True while SIGSTOPped by freeze(). */
  get isFrozen(): boolean {
    return this.stopped;
  }

  get logFile(): string {
    return path.join(this.dir, `${this.name}.log`);
  }

  /**
   * Spawns the process (optionally with replaced arguments) and waits until it answers PING with
   * +PONG (or -LOADING when `acceptLoading`). Throws with the log's tail if it exits or stays mute.
   */
  async start(options: { args?: string[]; timeoutMs?: number; acceptLoading?: boolean } = {}): Promise<void> {
    if (this.running) throw new Error(`${this.name} is already running`);
    if (options.args) this.args = options.args;
    fs.mkdirSync(this.dir, { recursive: true });
    const out = fs.openSync(path.join(this.dir, `${this.name}.stdout`), 'a');
    let child: ChildProcess;
    try {
      child = spawn('redis-server', this.args, { cwd: this.dir, stdio: ['ignore', out, out], detached: true });
    } finally {
      fs.closeSync(out);
    }
    child.unref();
    this.child = child;
    this.running = true;
    this.stopped = false;
    this.exited = new Promise((resolve) => {
      const onGone = () => {
        this.running = false;
        this.stopped = false;
        this.unregisterExit?.();
        this.unregisterExit = undefined;
        resolve();
      };
      child.once('exit', onGone);
      child.once('error', onGone); // e.g. redis-server not installed: spawn itself failed
    });
    this.unregisterExit = onProcessExit(() => this.killNowSync());
    this.logger.debug({ node: this.name, port: this.port, pid: child.pid }, 'redis process spawned');
    await this.waitReady(options.timeoutMs ?? 10_000, options.acceptLoading ?? false);
  }

  private async waitReady(timeoutMs: number, acceptLoading: boolean): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = 'no answer yet';
    while (Date.now() < deadline) {
      if (!this.running) throw new Error(`${this.name} exited during startup: ${this.logTail()}`);
      try {
        const line = await firstReplyLine(this.host, this.port, ['PING'], 500);
        if (line === '+PONG' || (acceptLoading && line.startsWith('-LOADING'))) {
          // Tests start servers in parallel: make sure the one answering is ours, not another
          // process that took the port first (ours then fails with "Address already in use").
          const owner = parseInfo(await bulkReply(this.host, this.port, ['INFO', 'server'], 500)).process_id;
          if (owner === String(this.child?.pid)) return;
          last = `port ${this.port} is answered by another server (pid ${owner})`;
        } else {
          last = line;
        }
      } catch (err) {
        last = err instanceof Error ? err.message : String(err);
      }
      await sleep(25);
    }
    throw new Error(`${this.name} not ready on port ${this.port} after ${timeoutMs} ms (${last}): ${this.logTail()}`);
  }

  /** The last lines of the node's log and stdout/stderr, for error messages. */
  logTail(lines = 8): string {
    const read = (file: string) => {
      try {
        return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join(' | ');
      } catch {
        return '';
      }
    };
    return [read(this.logFile), read(path.join(this.dir, `${this.name}.stdout`))].filter(Boolean).join(' || ') || '(no output)';
  }

  /** SIGSTOP: the process keeps its sockets open but answers nothing (a hung server, not a dead one). */
  freeze(): void {
    this.signal('SIGSTOP');
    this.stopped = true;
  }

  /** SIGCONT after freeze(). */
  thaw(): void {
    this.signal('SIGCONT');
    this.stopped = false;
  }

  /** SIGKILL, no shutdown: resolves once the process is gone. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.signal('SIGCONT');
    this.signal('SIGKILL');
    await this.exited;
  }

  /** Orderly stop: SIGCONT (a frozen process cannot handle SIGTERM), SIGTERM, SIGKILL after a grace. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.signal('SIGCONT');
    this.stopped = false;
    this.signal('SIGTERM');
    const gone = await Promise.race([this.exited.then(() => true), sleep(STOP_GRACE_MS).then(() => false)]);
    if (!gone) {
      this.logger.warn({ node: this.name, pid: this.pid }, 'redis process ignored SIGTERM, killing');
      this.signal('SIGKILL');
      await this.exited;
    }
  }

  /** Resolves when the current incarnation exits. */
  waitExit(): Promise<void> {
    return this.exited;
  }

  private signal(signal: NodeJS.Signals): void {
    const pid = this.child?.pid;
    if (!this.running || pid === undefined) return;
    try {
      process.kill(pid, signal);
    } catch {
      // Already gone: the 'exit' event will follow.
    }
  }

  /** For the process 'exit' hook: nothing async can run there. */
  private killNowSync(): void {
    this.signal('SIGCONT');
    this.signal('SIGKILL');
  }
}
