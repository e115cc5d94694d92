import fs from 'node:fs';
import net from 'node:net';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runDemo, type DemoIO } from '../../src/dev/demo-command.js';
import type { DemoPlaces } from '../../src/dev/demo-screen.js';
import { freePortAhead } from '../../src/dev/ports.js';
import { cli as runCli } from '../helpers/cli.js';

/**
 * `credit-edge demo` as a person and a script meet it: the console (answers table, where things
 * listen, what to try, a status), the JSON logs in the file it names, and the operator commands
 * it prints, run as printed against the running demo.
 */

const SEED = fileURLToPath(new URL('../../config/demo-accounts.yaml', import.meta.url));

/** Runs one printed `credit-edge ...` line in-process (the same commands the binary has). */
async function cli(line: string): Promise<{ out: string; err: string }> {
  const args = line.replace(/\s{2,}\(.*\)$/, '').trim().split(/\s+/);
  expect(args[0]).toBe('credit-edge');
  return runCli(args.slice(1));
}

function printedCommands(text: string, program: string): string[] {
  // The commands to try are the indented lines of the console text.
  return text.split('\n').filter((l) => l.startsWith(`  ${program} `)).map((l) => l.trim());
}

function tcpAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}

function io(until: DemoIO['until']): { io: DemoIO; text: () => string; json: () => string } {
  let text = '';
  let json = '';
  return {
    io: {
      out: (t) => void (text += t),
      tty: false,
      json: new Writable({ write: (chunk, _enc, done) => ((json += String(chunk)), done()) }),
      until,
    },
    text: () => text,
    json: () => json,
  };
}

describe('credit-edge demo', () => {
  it('Redis only (--no-sip): the printed account command reaches the seeded master; nothing is left afterwards', async () => {
    let seen: DemoPlaces | undefined;
    let shown = '';
    const run = io(async (places) => {
      seen = places;
      const [command] = printedCommands(run.text(), 'credit-edge');
      shown = (await cli(command!)).out;
    });
    await runDemo({ accounts: SEED, replicas: 1, sentinels: 1, interval: 30, sip: false }, run.io);
    expect(shown).toMatch(/^account acct-ok \(valid\)\n {2}balance: /);
    expect(run.text()).toMatch(/redis {7}master :\d+ up, keys \d+ \| replicas :\d+ link up \| sentinels 1\/1 see/);
    expect(run.text()).toContain('credit-edge demo: stopped');
    expect(fs.existsSync(seen!.configFile)).toBe(false);
    for (const port of [seen!.redis.master, ...seen!.redis.replicas, ...seen!.redis.sentinels]) expect(await tcpAnswers(port)).toBe(false);
    fs.rmSync(seen!.runDir, { recursive: true, force: true });
  });

  it('with the SIP side: the answers table on the console, JSON logs in the file, and every printed command answers while it runs', async () => {
    // Fixed seconds before the demo binds them: below the ephemeral range, so no other process's
    // bind(0) takes them meanwhile (a CI run failed with EADDRINUSE on one).
    const sipPort = await freePortAhead({ udp: true });
    const admin = { host: '127.0.0.1', port: await freePortAhead() };
    const controllerAdmin = { host: '127.0.0.1', port: await freePortAhead() };
    let places: DemoPlaces | undefined;
    const results = new Map<string, { out: string; err: string }>();
    const fetched = new Map<string, string>();
    const run = io(async (p) => {
      places = p;
      for (const line of printedCommands(run.text(), 'credit-edge')) results.set(line.split(' --config')[0]!, await cli(line));
      for (const line of printedCommands(run.text(), 'curl')) {
        const url = line.split(/\s+/).find((w) => w.startsWith('http://'))!;
        fetched.set(url, await (await fetch(url)).text());
      }
      fetched.set('controller', await (await fetch(`${p.sip!.controllerAdmin}/metrics`)).text());
    });
    await runDemo({ accounts: SEED, replicas: 2, sentinels: 1, interval: 30, sip: { host: '127.0.0.1', port: sipPort }, admin, controllerAdmin }, run.io);
    const text = run.text();

    // The console: where things listen, the answers table, what to try; one screen before the status.
    expect(text).toContain(`edge        admin http://127.0.0.1:${admin.port}   metrics http://127.0.0.1:${admin.port}/metrics`);
    expect(text).toContain(`controller  admin http://127.0.0.1:${controllerAdmin.port}`);
    expect(text).toMatch(/acct-ok +200 OK, call completed +-\n/);
    expect(text).toMatch(/acct-disabled +403 Account Not Enabled +Q\.850;cause=21;/);
    expect(text).toMatch(/acct-nocredit +403 Out Of Call Credit +Q\.850;cause=52;/);
    expect(text).toMatch(/acct-full +403 Channel Limit Reached +Q\.850;cause=34;/);
    expect(text).toMatch(/acct-missing +403 Forbidden +Q\.850;cause=21;/);
    expect(text).not.toContain('UNEXPECTED');
    expect(text).toContain(`sipp 127.0.0.1:${sipPort} -sf sipp/demo-call.xml -s callee -m 1 -d 2000 -key account acct-ok`);
    expect(text).toMatch(/edge {8}ready \| replicas in sync 2\/2 \| calls in progress 0 \| decisions 5 \|/);
    expect(text).toMatch(/controller {2}acting on /);
    const beforeStatus = text.slice(0, text.indexOf('\nstatus '));
    expect(beforeStatus.split('\n').length).toBeLessThanOrEqual(40);
    expect(text).not.toContain('{"level"');

    // The printed commands, run as printed while the demo ran.
    expect([...results.keys()].sort()).toEqual(
      ['credit-edge account set acct-low balance=10', 'credit-edge account show acct-ok', 'credit-edge audit acct-low', 'credit-edge reload', 'credit-edge replicas'].sort(),
    );
    expect(results.get('credit-edge replicas')!.out).toMatch(/redis-2 +127\.0\.0\.1:\d+ +in-sync/);
    expect(results.get('credit-edge account show acct-ok')!.out).toContain('account acct-ok (valid)');
    expect(results.get('credit-edge reload')!.out).toContain('reloaded: no change');
    expect(results.get('credit-edge account set acct-low balance=10')!.out).toMatch(/^account acct-low written on master 127\.0\.0\.1:\d+/);
    expect(fetched.get(`http://127.0.0.1:${admin.port}/metrics`)).toMatch(/credit_edge_decisions_total\{outcome="route",status="proxy",basis="replica"\} 1/);
    expect(JSON.parse(fetched.get(`http://127.0.0.1:${admin.port}/accounts/acct-ok`)!)).toMatchObject({ id: 'acct-ok', lastDecision: { outcome: 'route' } });
    expect(fetched.get('controller')).toContain('credit_controller_leader 1');

    // The logs: pino JSON lines in the file it named, every component; the file stays, the config goes.
    const lines = fs.readFileSync(places!.logFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { component?: string; msg: string });
    const components = new Set(lines.map((l) => l.component));
    for (const component of ['topology', 'engine', 'edge', 'controller', 'admin', 'demo']) expect(components.has(component), component).toBe(true);
    expect(lines.filter((l) => l.msg === 'demo call answered')).toHaveLength(5);
    expect(text).toContain(`logs kept in ${places!.logFile}`);
    expect(fs.existsSync(places!.configFile)).toBe(false);
    expect(await tcpAnswers(admin.port)).toBe(false);
    expect(await tcpAnswers(sipPort)).toBe(false);
    fs.rmSync(places!.runDir, { recursive: true, force: true });
  });

  it('--json: JSON lines only (logs, the places, the status), no human text, no log file', async () => {
    let runDir = '';
    const run = io(async (places) => {
      runDir = places.runDir;
    });
    await runDemo({ accounts: SEED, replicas: 1, sentinels: 0, interval: 30, sip: false, json: true }, run.io);
    expect(run.text()).toBe('');
    const lines = run.json().trim().split('\n').map((l) => JSON.parse(l) as { msg: string; places?: DemoPlaces; status?: unknown });
    expect(lines.find((l) => l.msg === 'demo ready')?.places?.redis.replicas).toHaveLength(1);
    expect(lines.some((l) => l.msg === 'demo status' && l.status)).toBe(true);
    expect(lines.at(-1)?.msg).toBe('demo stopped');
    expect(fs.existsSync(runDir)).toBe(false);
  });
});
