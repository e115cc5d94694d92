import os from 'node:os';
import type { Command } from 'commander';
import { connectMaster } from '../admin/account-command.js';
import { parseCallRecord, type CallRecord } from '../calls/records.js';
import { ConfigError, DEFAULT_CONFIG_FILE, loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { startAdmin, type AdminServer } from '../admin/server.js';
import { createLogger, stdoutDestination, type Logger } from '../log.js';
import { readAudit } from './audit.js';
import { configReloader, reloadRoute, type ReloadOutcome } from '../config/reload.js';
import { reconfigureController, startController, type RunningController } from './start.js';
import { CALLS_INDEX_KEY, callsKey, CONFIRM_BLOCKS_KEY } from '../redis/keys.js';

/**
 * `credit-edge controller` runs the credit controller (or, with --confirm-blocks, lets the blocks
 * the breaker holds back through once); `credit-edge audit [account]` prints the audit trail;
 * `credit-edge calls [account]` shows calls in progress. All reach the master through Sentinel.
 */

const configOption = ['-c, --config <file>', `config file (default ${DEFAULT_CONFIG_FILE}, or the embedded defaults when absent)`] as const;

function load(file: string | undefined): { config: Config; file?: string } {
  try {
    return loadConfig(file);
  } catch (err) {
    if (err instanceof ConfigError) process.stderr.write(err.problems.map((p) => p + '\n').join(''));
    throw err;
  }
}

/** Lets the blocks the breaker holds back go through once (the acting controller reads it next round). */
export async function confirmBlocks(config: Config, by: string, ttlMs = 600_000): Promise<string> {
  const master = await connectMaster(config);
  try {
    const fenced = await master.fence();
    if (!fenced.ok) throw new Error(`not written: ${fenced.why}`);
    const result = await master.write(fenced.fence, (tx) => tx.set(CONFIRM_BLOCKS_KEY, `${by} at ${new Date().toISOString()}`, 'PX', ttlMs));
    if (!result.done) throw new Error(`not written: ${result.why}`);
    return `blocks confirmed on master ${result.address}; the acting controller applies them in its next round (confirmation valid ${ttlMs / 1000} s)`;
  } finally {
    await master.close();
  }
}

/** Calls in progress per account, read on the master. */
export async function readCalls(config: Config, account?: string): Promise<Map<string, (CallRecord | { callId: string; unreadable: string })[]>> {
  const master = await connectMaster(config);
  try {
    const accounts = account !== undefined ? [account] : (await master.client.smembers(CALLS_INDEX_KEY)).sort();
    const out = new Map<string, (CallRecord | { callId: string; unreadable: string })[]>();
    for (const id of accounts) {
      const hash = await master.client.hgetall(callsKey(id));
      const calls = Object.entries(hash).map(([callId, raw]) => parseCallRecord(raw) ?? { callId, unreadable: raw.slice(0, 80) });
      if (calls.length > 0 || account !== undefined) out.set(id, calls);
    }
    return out;
  } finally {
    await master.close();
  }
}

/**
 * The controller's admin API: /healthz, /readyz (200 while this controller holds the lease and
 * acts; a standby answers 503), /metrics (its Prometheus metrics), /calls[/account] (calls in
 * progress on the master), POST /confirm-blocks (the operator lets the blocks the open breaker
 * holds back go through once), POST /reload (re-read the config file, when given `reload`).
 */
export async function startControllerAdmin(config: Config, running: RunningController, logger: Logger, reload?: () => Promise<ReloadOutcome>): Promise<AdminServer> {
  const admin = await startAdmin({ listen: config.controller.admin_listen, token: () => config.admin.token, logger: logger.child({ component: 'admin' }) });
  admin.addRegistry(running.metrics.registry);
  admin.route('GET', /^\/readyz$/, () => ({ status: running.controller.isLeader ? 200 : 503, body: { leader: running.controller.isLeader, status: running.status() } }));
  admin.route('POST', /^\/confirm-blocks$/, async () => ({ status: 200, body: { result: await confirmBlocks(config, 'admin api') } }));
  admin.route('GET', /^\/calls(?:\/([A-Za-z0-9][A-Za-z0-9._@-]{0,127}))?$/, async ({ match }) => ({
    status: 200,
    body: Object.fromEntries(await readCalls(config, match[1])),
  }));
  if (reload) admin.route('POST', /^\/reload$/, () => reloadRoute(reload));
  return admin;
}

export interface ControllerService {
  running: RunningController;
  admin: AdminServer;
  /** Re-reads `file`: controller.cut_calls changes in place (src/control/start.ts, reconfigureController). */
  reload(): Promise<ReloadOutcome>;
  stop(): Promise<void>;
}

/** `credit-edge controller` as a unit: the controller, its admin API, and reloads of its config file. */
export async function startControllerService(config: Config, file: string | undefined, logger: Logger, env: NodeJS.ProcessEnv = process.env): Promise<ControllerService> {
  const running = startController(config, logger);
  const reloader = configReloader({ file, env, initial: config, logger, apply: (current, next) => reconfigureController(running, current, next) });
  const reload = () => reloader.reload();
  const admin = await startControllerAdmin(config, running, logger, reload).catch(async (err: unknown) => {
    await running.stop();
    throw err;
  });
  return {
    running,
    admin,
    reload,
    async stop() {
      await admin.stop();
      await running.stop();
    },
  };
}

export function registerControlCommands(program: Command): void {
  program
    .command('controller')
    .description('run the credit controller: blocks accounts out of credit, lifts its blocks when credit returns')
    .option(...configOption)
    .option('--confirm-blocks', 'let the blocks the breaker holds back through once, then exit')
    .action(async (opts: { config?: string; confirmBlocks?: boolean }) => {
      const { config, file } = load(opts.config);
      if (opts.confirmBlocks) {
        process.stderr.write(`controller: ${await confirmBlocks(config, `${os.userInfo().username}@${os.hostname()}`)}\n`);
        return;
      }
      const logger = createLogger({ level: config.log_level }, stdoutDestination(config.log_flush_ms));
      const service = await startControllerService(config, file, logger);
      const onSighup = () => void service.reload();
      process.on('SIGHUP', onSighup);
      process.stderr.write(
        `controller: ${config.controller.name} running, rounds every ${config.controller.round_ms} ms; admin http://${service.admin.host}:${service.admin.port}; pid ${process.pid}\n`,
      );
      await new Promise<void>((resolve) => {
        process.once('SIGINT', () => resolve());
        process.once('SIGTERM', () => resolve());
      });
      process.off('SIGHUP', onSighup);
      await service.stop();
    });

  program
    .command('audit [account]')
    .description('print the audit trail of blocks, unblocks and removed calls, newest first')
    .option(...configOption)
    .option('-n, --limit <n>', 'entries to print', (v) => Number(v), 50)
    .option('--json', 'one JSON object per line')
    .action(async (account: string | undefined, opts: { config?: string; limit: number; json?: boolean }) => {
      const { config } = load(opts.config);
      const master = await connectMaster(config);
      try {
        const entries = await readAudit(master.client, { ...(account !== undefined && { account }), limit: opts.limit });
        for (const e of entries) {
          process.stdout.write(opts.json ? JSON.stringify(e) + '\n' : `${e.at}  ${e.action.padEnd(13)} ${e.account.padEnd(20)} by ${e.controller} on ${e.master}: ${e.reason}\n`);
        }
        if (entries.length === 0 && !opts.json) process.stderr.write(`no audit entries${account ? ` for ${account}` : ''}\n`);
      } finally {
        await master.close();
      }
    });

  program
    .command('calls [account]')
    .description('show calls in progress per account, as recorded on the master')
    .option(...configOption)
    .option('--json', 'one JSON object per account')
    .action(async (account: string | undefined, opts: { config?: string; json?: boolean }) => {
      const calls = await readCalls(load(opts.config).config, account);
      const now = Date.now();
      for (const [id, list] of calls) {
        if (opts.json) {
          process.stdout.write(JSON.stringify({ account: id, count: list.length, calls: list }) + '\n');
          continue;
        }
        process.stdout.write(`${id}: ${list.length} call(s) in progress\n`);
        for (const c of list) {
          if ('unreadable' in c) process.stdout.write(`  ${c.callId}  UNREADABLE RECORD ${JSON.stringify(c.unreadable)}\n`);
          else process.stdout.write(`  ${c.callId}  ${Math.round((now - c.start) / 1000)} s on ${c.node}, rate ${c.rate ?? '(account rate)'}/min\n`);
        }
      }
      if (calls.size === 0 && !opts.json) process.stderr.write('no calls in progress\n');
    });
}
