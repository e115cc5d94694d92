import { type Command } from 'commander';
import { loadConfig } from '../config/load.js';
import { splitHostPort } from '../config/host-port.js';

/**
 * How CLI commands talk to a running edge: its admin API, found from the same config file the edge
 * runs with (admin.listen, admin.token), or from --admin and CREDIT_EDGE_ADMIN__TOKEN.
 */

export interface AdminTarget {
  url: string;
  token?: string;
}

export interface AdminTargetOptions {
  config?: string;
  admin?: string;
  /** Reach the controller's admin API (controller.admin_listen) instead of the edge's. */
  controller?: boolean;
}

/** Adds --config and --admin to a command that talks to a running edge. */
export function withAdminOptions(command: Command): Command {
  return command
    .option('-c, --config <file>', 'the config file the edge runs with (default config/credit-edge.yaml)')
    .option('--admin <host:port>', 'the admin API address (default: admin.listen from the config)');
}

export function adminTarget(options: AdminTargetOptions, env: NodeJS.ProcessEnv = process.env): AdminTarget {
  const { config } = loadConfig(options.config, env);
  const listen = options.admin ?? (options.controller ? config.controller.admin_listen : config.admin.listen);
  const { host: listening, port } = splitHostPort(listen);
  // An edge listening on every address is reached on loopback from the same host.
  const host = listening === '0.0.0.0' ? '127.0.0.1' : listening === '::' || listening === '[::]' ? '[::1]' : listening;
  return { url: `http://${host}:${port}`, ...(config.admin.token !== undefined && { token: config.admin.token }) };
}

/** One admin request; throws with a one-line cause when the edge cannot be reached. */
export async function adminRequest(target: AdminTarget, method: 'GET' | 'POST', path: string, timeoutMs = 10_000): Promise<{ status: number; body: unknown }> {
  let res: Response;
  try {
    res = await fetch(target.url + path, {
      method,
      headers: target.token ? { Authorization: `Bearer ${target.token}` } : {},
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new Error(`cannot reach the edge's admin API at ${target.url}: ${cause?.code ?? cause?.message ?? (err as Error).message}`);
  }
  const text = await res.text();
  if (res.status === 401) throw new Error(`the edge's admin API at ${target.url} refused the token (set admin.token or CREDIT_EDGE_ADMIN__TOKEN)`);
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // plain text (metrics)
  }
  return { status: res.status, body };
}
