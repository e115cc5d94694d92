import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/**
 * What Linux says about a process the benchmark started: CPU time (utime + stime from
 * /proc/<pid>/stat, in clock ticks) and the peak resident set (VmHWM from /proc/<pid>/status).
 * Read at an arm's start and end, so the CPU figures cover the measured phase only.
 */

let ticksPerSecond: number | undefined;

/** The kernel's clock ticks per second (USER_HZ), asked once from `getconf CLK_TCK`; 100 if that fails. */
export function clockTicksPerSecond(): number {
  if (ticksPerSecond === undefined) {
    try {
      const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
      ticksPerSecond = Number.isInteger(n) && n > 0 ? n : 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** User + system CPU time the process has used so far, in ms; undefined once it is gone. */
export function cpuMsOf(pid: number): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may hold spaces: count fields after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After the name: state is field 3, utime field 14, stime field 15.
  const utime = Number(fields[14 - 3]);
  const stime = Number(fields[15 - 3]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) return undefined;
  return ((utime + stime) * 1000) / clockTicksPerSecond();
}

/** The process's peak RSS so far (VmHWM), in MB; undefined once it is gone. */
export function peakRssMbOf(pid: number): number | undefined {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const kb = /^VmHWM:\s+(\d+) kB/m.exec(status)?.[1];
  return kb === undefined ? undefined : Math.round((Number(kb) / 1024) * 10) / 10;
}
