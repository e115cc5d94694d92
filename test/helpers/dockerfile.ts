import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/**
 * Carries out a Dockerfile's build without Docker, for the test that the production image builds
 * and runs (no Docker engine runs here, and no base image can be pulled). Each stage is a folder;
 * the base image is this machine (its Node, its npm cache). COPY copies from the build context or
 * from an earlier stage, RUN runs in the stage's WORKDIR with its ENV, and the last stage's ENV,
 * ENTRYPOINT and CMD are returned. Any instruction it does not know fails the build, so a
 * Dockerfile changed beyond what this follows makes the test fail, not pass on a stale reading.
 */

export interface BuiltImage {
  /** The last stage's WORKDIR, as a folder here: what the image holds there. */
  workdir: string;
  env: Record<string, string>;
  entrypoint: string[];
  cmd: string[];
  /** HEALTHCHECK's CMD, exec form. */
  healthcheck: string[];
  user?: string;
}

interface Stage {
  name: string;
  root: string;
  workdir: string;
  env: Record<string, string>;
}

/** Instructions as [keyword, rest], continuation lines joined and comments dropped. */
export function dockerInstructions(text: string): [string, string][] {
  const out: [string, string][] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (pending === '' && (line === '' || line.startsWith('#'))) continue;
    if (line.endsWith('\\')) {
      pending += line.slice(0, -1) + ' ';
      continue;
    }
    const full = (pending + line).trim();
    pending = '';
    const m = /^([A-Z]+)\s+(.*)$/.exec(full);
    if (!m) throw new Error(`Dockerfile: cannot read ${JSON.stringify(full)}`);
    out.push([m[1]!, m[2]!]);
  }
  return out;
}

/**
 * Builds `dockerfile` with `context` as the build context into `into` (one folder per stage).
 * `runEnv` is added to every RUN (e.g. npm's offline mode: the test must not reach the network).
 */
export function buildDockerfile(o: { dockerfile: string; context: string; into: string; runEnv?: Record<string, string> }): BuiltImage {
  const stages: Stage[] = [];
  let stage: Stage | undefined;
  let entrypoint: string[] = [];
  let cmd: string[] = [];
  let healthcheck: string[] = [];
  let user: string | undefined;
  const current = (keyword: string) => {
    if (!stage) throw new Error(`Dockerfile: ${keyword} before FROM`);
    return stage;
  };
  // A path inside a stage: absolute paths are under its root, relative ones under its WORKDIR.
  const inStage = (s: Stage, p: string) => path.join(s.root, p.startsWith('/') ? p : path.join(s.workdir, p));

  for (const [keyword, rest] of dockerInstructions(fs.readFileSync(o.dockerfile, 'utf8'))) {
    switch (keyword) {
      case 'ARG': // only the base image's version uses one, and the base image is this machine
        break;
      case 'FROM': {
        const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(rest);
        if (!m) throw new Error(`Dockerfile: cannot read FROM ${rest}`);
        const name = m[2] ?? `stage-${stages.length}`;
        stage = { name, root: path.join(o.into, name), workdir: '/', env: {} };
        fs.mkdirSync(stage.root, { recursive: true });
        stages.push(stage);
        break;
      }
      case 'WORKDIR': {
        const s = current(keyword);
        s.workdir = rest;
        fs.mkdirSync(inStage(s, '.'), { recursive: true });
        break;
      }
      case 'ENV': {
        const m = /^(\S+?)=(.*)$/.exec(rest);
        if (!m) throw new Error(`Dockerfile: ENV ${rest}: expected NAME=value`);
        current(keyword).env[m[1]!] = m[2]!;
        break;
      }
      case 'COPY': {
        const s = current(keyword);
        const words = rest.split(/\s+/);
        const from = words[0]!.startsWith('--from=') ? words.shift()!.slice('--from='.length) : undefined;
        const dest = words.pop()!;
        const source = from === undefined ? undefined : stages.find((t) => t.name === from);
        if (from !== undefined && !source) throw new Error(`Dockerfile: COPY --from=${from}: no such stage`);
        for (const src of words) {
          const srcPath = source ? inStage(source, src) : path.join(o.context, src);
          const many = words.length > 1 || dest.endsWith('/');
          const target = many ? path.join(inStage(s, dest), path.basename(src)) : inStage(s, dest);
          fs.mkdirSync(path.dirname(target), { recursive: true });
          fs.cpSync(srcPath, target, { recursive: true });
        }
        break;
      }
      case 'RUN': {
        const s = current(keyword);
        execFileSync('sh', ['-c', rest], { cwd: inStage(s, '.'), env: { ...process.env, ...s.env, ...o.runEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
        break;
      }
      case 'USER':
        user = rest;
        break;
      case 'ENTRYPOINT':
        entrypoint = JSON.parse(rest) as string[];
        break;
      case 'CMD':
        cmd = JSON.parse(rest) as string[];
        break;
      case 'HEALTHCHECK': {
        const m = /\bCMD (\[.*\])$/.exec(rest);
        if (!m) throw new Error(`Dockerfile: HEALTHCHECK ${rest}: expected CMD in exec form`);
        healthcheck = JSON.parse(m[1]!) as string[];
        break;
      }
      case 'EXPOSE':
        break;
      default:
        throw new Error(`Dockerfile: ${keyword} is not followed by this build (test/helpers/dockerfile.ts)`);
    }
  }
  const last = stages.at(-1);
  if (!last) throw new Error('Dockerfile: no FROM');
  return { workdir: inStage(last, '.'), env: last.env, entrypoint, cmd, healthcheck, ...(user !== undefined && { user }) };
}
