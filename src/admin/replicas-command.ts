import type { Command } from 'commander';
import { adminRequest, adminTarget, withAdminOptions, type AdminTargetOptions } from './client.js';
import type { replicasView } from './edge-routes.js';

/** `credit-edge replicas`: each local read replica's health as the running edge sees it. */
export function registerReplicasCommand(program: Command): void {
  withAdminOptions(program.command('replicas').description("each read replica's health and lag, as the running edge sees it (admin API)"))
    .option('--json', 'print JSON')
    .action(async (opts: AdminTargetOptions & { json?: boolean }) => {
      const { status, body } = await adminRequest(adminTarget(opts), 'GET', '/replicas');
      if (status !== 200) throw new Error(`the edge answered HTTP ${status}`);
      const { replicas } = body as { replicas: ReturnType<typeof replicasView> };
      if (opts.json) {
        process.stdout.write(JSON.stringify(replicas, null, 2) + '\n');
        return;
      }
      for (const r of replicas) {
        process.stdout.write(`${r.name.padEnd(16)} ${r.address.padEnd(21)} ${r.health.padEnd(12)} lag ${r.lagSeconds < 0 ? '?' : `${r.lagSeconds}s`}  ${r.detail}\n`);
      }
      if (!replicas.some((r) => r.health === 'in-sync')) throw new Error('no replica in sync: the edge decides from its cache or answers 503');
    });
}
