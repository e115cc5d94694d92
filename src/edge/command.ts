import type { Command } from 'commander';
import { adminRequest, adminTarget, withAdminOptions, type AdminTargetOptions } from '../admin/client.js';
import { checkConfig } from '../config/command.js';
import { ConfigError, DEFAULT_CONFIG_FILE } from '../config/load.js';
import type { ReloadOutcome } from './service.js';
import { startEdgeService } from './service.js';

/**
 * `credit-edge edge`: runs the edge (and the embedded SIP engine when the config enables it) until
 * SIGINT, or SIGTERM and its drain; SIGHUP reloads the config. `credit-edge reload` asks a running edge to reload;
 * `credit-edge end-call` asks it to end one call it carries.
 */

/** A BYE nobody answers is given up on after Timer F (32 s): wait a little longer than that. */
const END_CALL_TIMEOUT_MS = 45_000;

export function registerEdgeCommands(program: Command): void {
  program
    .command('edge')
    .description('run the edge: SIP app, admin API, and the embedded SIP engine when sip.embedded_engine.enabled')
    .option('-c, --config <file>', `config file (default ${DEFAULT_CONFIG_FILE}, or the embedded defaults when absent)`)
    .action(async (opts: { config?: string }) => {
      let service;
      try {
        service = await startEdgeService({ ...(opts.config !== undefined && { file: opts.config }), handleSighup: true });
      } catch (err) {
        if (err instanceof ConfigError) {
          process.stderr.write(err.problems.map((p) => p + '\n').join(''));
          throw new Error(`not started: the config has ${err.problems.length} problem(s)`);
        }
        throw err;
      }
      const { admin, engine } = service;
      process.stderr.write(
        `edge: config ${service.file ?? '(embedded defaults)'}; admin http://${admin.host}:${admin.port}` +
          (engine ? `; embedded engine sip ${engine.sipHost}:${engine.sipPort}` : '') +
          `; pid ${process.pid} (kill -HUP reloads)\n`,
      );
      // SIGTERM drains first (shutdown.drain_ms: a rolling restart loses no call in progress);
      // SIGINT, or a second signal, stops at once.
      await new Promise<void>((resolve) => {
        const stopNow = (signal: NodeJS.Signals) => {
          process.stderr.write(`edge: stopping (${signal})\n`);
          resolve();
        };
        process.once('SIGINT', stopNow);
        process.once('SIGTERM', () => {
          process.stderr.write(`edge: draining (SIGTERM): new calls refused, up to ${service.config().shutdown.drain_ms} ms for the calls in progress; a second signal stops at once\n`);
          process.once('SIGTERM', stopNow);
          void service.drain().then(({ left }) => {
            process.stderr.write(`edge: stopping (drained${left > 0 ? `, ${left} call(s) left` : ''})\n`);
            resolve();
          });
        });
      });
      await service.stop();
    });

  withAdminOptions(
    program
      .command('reload')
      .description("make a running edge (or, with --controller, the controller) re-read its config file (checked here first; a refused config leaves the running config as it was)")
      .option('--controller', "the controller's admin API (controller.admin_listen): controller.cut_calls changes without a restart"),
  ).action(async (opts: AdminTargetOptions) => {
    // The edge would refuse an invalid file anyway; saying why here saves a round trip to the logs.
    if (opts.config !== undefined) {
      const problems = checkConfig(opts.config);
      if (problems.length > 0) {
        process.stderr.write(problems.map((p) => p + '\n').join(''));
        throw new Error(`not reloaded: ${opts.config} has ${problems.length} problem(s); ${opts.controller ? 'the controller' : 'the edge'} keeps its config`);
      }
    }
    const { status, body } = await adminRequest(adminTarget(opts), 'POST', '/reload');
    const outcome = body as ReloadOutcome;
    if (status === 200 && outcome.ok) {
      process.stdout.write(`reloaded: ${outcome.applied.length > 0 ? `applied ${outcome.applied.join(', ')}` : 'no change'}\n`);
      if (outcome.needsRestart.length > 0) process.stdout.write(`changed but needs a restart: ${outcome.needsRestart.join(', ')}\n`);
      return;
    }
    if (!outcome.ok && Array.isArray(outcome.problems)) process.stderr.write(outcome.problems.map((p) => p + '\n').join(''));
    throw new Error(`not reloaded (HTTP ${status}): ${opts.controller ? 'the controller' : 'the edge'} keeps its config`);
  });

  withAdminOptions(
    program
      .command('end-call')
      .description('end one answered call the running edge carries: a BYE to each party (fraud, a stuck call)')
      .argument('<call-id>', 'the Call-ID, as in the edge\'s decision line'),
  ).action(async (callId: string, opts: AdminTargetOptions) => {
    const { status, body } = await adminRequest(adminTarget(opts), 'POST', `/calls/${encodeURIComponent(callId)}/end`, END_CALL_TIMEOUT_MS);
    const outcome = body as { caller?: string; callee?: string; error?: string };
    if (status === 200) {
      process.stdout.write(`ended: caller ${outcome.caller}, callee ${outcome.callee}\n`);
      return;
    }
    if (status === 502) throw new Error(`not ended: caller ${outcome.caller}, callee ${outcome.callee}; the call stays recorded: run again`);
    throw new Error(`not ended (HTTP ${status}): ${outcome.error ?? 'the edge refused'}`);
  });
}
