import fs from 'node:fs';
import { isMap, isNode, LineCounter, parse as parseYamlValue, parseDocument, type Document } from 'yaml';
import { productionProblems } from './production.js';
import { configSchema, type Config } from './schema.js';

export const DEFAULT_CONFIG_FILE = 'config/credit-edge.yaml';
const ENV_PREFIX = 'CREDIT_EDGE_';

/** A config that cannot be used; each problem names where it is (file:line, or the variable) and the key. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid config:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

/**
 * Loads the operator's YAML config, applies environment overrides and validates the result.
 * `file` undefined means the default path if it exists, else the embedded defaults.
 *
 * Environment variables override single keys: `CREDIT_EDGE_` + the key path in upper case with
 * `__` between levels, e.g. `CREDIT_EDGE_ADMIN__LISTEN=0.0.0.0:8080`,
 * `CREDIT_EDGE_LOOKUP__HEDGE_DELAY_MS=5`. Values are read as YAML (numbers, booleans, lists).
 *
 * With `NODE_ENV=production` (the image and the systemd units set it), development conveniences
 * are refused (src/config/production.ts).
 */
export function loadConfig(file?: string, env: NodeJS.ProcessEnv = process.env): { config: Config; file?: string } {
  const path = file ?? (fs.existsSync(DEFAULT_CONFIG_FILE) ? DEFAULT_CONFIG_FILE : undefined);
  if (path === undefined) return { config: parseConfig('', '(defaults)', env) };
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError([`${path}: cannot read: ${(err as Error).message}`]);
  }
  return { config: parseConfig(text, path, env), file: path };
}

export function parseConfig(text: string, file: string, env: NodeJS.ProcessEnv = {}): Config {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(doc.errors.map((e) => `${file}:${lines.linePos(e.pos[0]).line}: ${e.message.split('\n')[0]}`));
  }
  const data: unknown = doc.toJS() ?? {};
  if (typeof data !== 'object' || Array.isArray(data) || data === null) {
    throw new ConfigError([`${file}:1: the config must be a mapping of keys`]);
  }
  const fromEnv = applyEnvOverrides(data as Record<string, unknown>, env);
  const where = (path: string[], key?: string) => fromEnv.get([...path, ...(key === undefined ? [] : [key])].join('.')) ?? `${file}:${lineOf(doc, lines, path, key)}`;
  const result = configSchema.safeParse(data);
  if (!result.success) {
    throw new ConfigError(
      result.error.issues.map((issue) => {
        const path = issue.path.map(String);
        const keys = issue.code === 'unrecognized_keys' ? issue.keys : [undefined];
        return keys
          .map((key) => `${where(path, key)}: ${(key === undefined ? path : [...path, key]).join('.') || '(top)'}: ${key === undefined ? issue.message : 'unknown key'}`)
          .join('\n  ');
      }),
    );
  }
  if (env.NODE_ENV === 'production') {
    const refused = productionProblems(result.data);
    const located = ({ path, message }: { path: string[]; message: string }) =>
      doc.hasIn(path) || fromEnv.has(path.join('.')) ? `${where(path.slice(0, -1), path.at(-1))}: ${path.join('.')}: ${message}` : `${file}: ${path.join('.')} (not set: the default): ${message}`;
    if (refused.length > 0) throw new ConfigError(refused.map(located));
  }
  return result.data;
}

/** Sets each CREDIT_EDGE_* variable's value at its key path; returns path -> variable name. */
function applyEnvOverrides(data: Record<string, unknown>, env: NodeJS.ProcessEnv): Map<string, string> {
  const origins = new Map<string, string>();
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || raw === undefined) continue;
    const path = name.slice(ENV_PREFIX.length).toLowerCase().split('__');
    let target = data;
    for (const part of path.slice(0, -1)) {
      if (typeof target[part] !== 'object' || target[part] === null) target[part] = {};
      target = target[part] as Record<string, unknown>;
    }
    target[path.at(-1)!] = parseYamlValue(raw);
    origins.set(path.join('.'), `env ${name}`);
  }
  return origins;
}

/** The line of the value at `path` (or of `key` inside it), or of its nearest ancestor present. */
function lineOf(doc: Document, lines: LineCounter, path: string[], key?: string): number {
  for (let depth = path.length; depth >= 0; depth--) {
    const node = depth === 0 ? doc.contents : doc.getIn(path.slice(0, depth), true);
    if (!isNode(node) || !node.range) continue;
    if (key !== undefined && depth === path.length && isMap(node)) {
      const pair = node.items.find((item) => isNode(item.key) && (item.key as { value?: unknown }).value === key);
      if (pair && isNode(pair.key) && pair.key.range) return lines.linePos(pair.key.range[0]).line;
    }
    return lines.linePos(node.range[0]).line;
  }
  return 1;
}
