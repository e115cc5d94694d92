import type { Config } from './schema.js';

/**
 * What a production deployment must not inherit from the development defaults, checked when
 * `NODE_ENV=production`: the embedded SIP engine (a stand-in for drachtio-server, on by default
 * so the demo and the tests need no server) and drachtio's well-known default secret, which
 * anyone who can reach the SIP server's admin port would know. Each problem names its key.
 */

/** drachtio-server's and drachtio-srf's documented default secret: the schema's default too. */
export const WELL_KNOWN_SIP_SECRET = 'cymru';

export function productionProblems(config: Config): { path: string[]; message: string }[] {
  const problems: { path: string[]; message: string }[] = [];
  if (config.sip.embedded_engine.enabled) {
    problems.push({
      path: ['sip', 'embedded_engine', 'enabled'],
      message: 'the embedded SIP engine is for development and is refused with NODE_ENV=production: set it to false and point sip.server at drachtio-server',
    });
  }
  if (config.sip.server.secret === WELL_KNOWN_SIP_SECRET) {
    problems.push({
      path: ['sip', 'server', 'secret'],
      message: `the well-known default secret "${WELL_KNOWN_SIP_SECRET}" is refused with NODE_ENV=production: set drachtio-server's secret (for example in CREDIT_EDGE_SIP__SERVER__SECRET)`,
    });
  }
  return problems;
}
