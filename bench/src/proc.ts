// Memory and CPU of a process from /proc (Linux): RSS now, peak RSS (VmHWM), CPU time used.
import { readFileSync } from 'node:fs';

export interface ProcStats {
  rssMb: number;
  peakMb: number;
  /** user + system CPU time since the process started, ms */
  cpuMs: number;
  /** write and read system calls since the process started (/proc/<pid>/io; readable for the bench's own children) */
  syscw?: number;
  syscr?: number;
}

const CLOCK_TICKS_PER_SEC = 100; // USER_HZ: 100 on every Linux this runs on

/** undefined when the process is gone or /proc is not there. */
export function procStats(pid: number | undefined): ProcStats | undefined {
  if (!pid) return undefined;
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
    // fields after "(comm)": state is 3rd, utime the 14th and stime the 15th of the whole line
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(rest[11]) + Number(rest[12]);
    let io: string | undefined;
    try {
      io = readFileSync(`/proc/${pid}/io`, 'utf8');
    } catch {
      io = undefined;
    }
    const calls = (field: string) => (io ? Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(io)?.[1]) : undefined);
    return { rssMb: kb('VmRSS') / 1024, peakMb: kb('VmHWM') / 1024, cpuMs: (ticks * 1000) / CLOCK_TICKS_PER_SEC, syscw: calls('syscw'), syscr: calls('syscr') };
  } catch {
    return undefined;
  }
}

/** Share of all CPUs busy over the next `ms` (from /proc/stat); 0 where there is no /proc. */
export async function machineBusy(ms: number): Promise<number> {
  const read = () => {
    try {
      const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
      const idle = f[3]! + (f[4] ?? 0); // idle + iowait
      return { idle, total: f.reduce((a, b) => a + b, 0) };
    } catch {
      return undefined;
    }
  };
  const a = read();
  await new Promise((r) => setTimeout(r, ms));
  const b = read();
  if (!a || !b || b.total === a.total) return 0;
  return 1 - (b.idle - a.idle) / (b.total - a.total);
}

/**
 * Waits until the machine is quiet — under `share` of all CPUs busy over 250 ms — or `maxMs` passed: a
 * phase then starts on a machine the previous one (its teardown, its stream deletions) no longer
 * loads. Resolves with how long it waited.
 */
export async function settle(share = 0.15, maxMs = 5_000): Promise<number> {
  const started = performance.now();
  while (performance.now() - started < maxMs) if ((await machineBusy(250)) < share) break;
  return performance.now() - started;
}
