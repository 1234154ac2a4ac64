// CPU and memory of processes, read from /proc (Linux). CPU is utime + stime in clock ticks,
// converted to milliseconds; a process tree's CPU includes its reaped children (cutime + cstime)
// and its live descendants. Nothing here samples on its own: callers take snapshots.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

const CLOCK_TICKS_PER_SECOND = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();
const MS_PER_TICK = 1000 / CLOCK_TICKS_PER_SECOND;

export type ProcCpu = Readonly<{ pid: number; ppid: number; userMs: number; systemMs: number; childrenMs: number; startTicks: number }>;

/** One process's own CPU (and its reaped children's), or null when it is gone. */
export function readProcCpu(pid: number): ProcCpu | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // the command name (field 2) may hold spaces and parentheses: fields start after the last ')'
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const at = (field: number) => Number(fields[field - 3]);
  return {
    pid,
    ppid: at(4),
    userMs: at(14) * MS_PER_TICK,
    systemMs: at(15) * MS_PER_TICK,
    childrenMs: (at(16) + at(17)) * MS_PER_TICK,
    startTicks: at(22),
  };
}

/** Every live process's parent, in one pass over /proc. */
export function parentsOfAll(): Map<number, number[]> {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cpu = readProcCpu(Number(entry));
    if (!cpu) continue;
    const list = children.get(cpu.ppid) ?? [];
    list.push(cpu.pid);
    children.set(cpu.ppid, list);
  }
  return children;
}

export type TreeCpu = Readonly<{ userMs: number; systemMs: number; totalMs: number }>;

/**
 * A process and everything below it: its own CPU, its reaped children's, and its live
 * descendants' (recursively). Reaped children's CPU has no user/system split in /proc: it is
 * counted as user time.
 */
export function treeCpu(rootPid: number, children: Map<number, number[]> = parentsOfAll()): TreeCpu {
  let userMs = 0;
  let systemMs = 0;
  const visit = (pid: number) => {
    const cpu = readProcCpu(pid);
    if (!cpu) return;
    userMs += cpu.userMs + cpu.childrenMs;
    systemMs += cpu.systemMs;
    for (const child of children.get(pid) ?? []) visit(child);
  };
  visit(rootPid);
  return { userMs, systemMs, totalMs: userMs + systemMs };
}

/** The pids of a process and its live descendants. */
export function treePids(rootPid: number, children: Map<number, number[]> = parentsOfAll()): number[] {
  const pids: number[] = [];
  const visit = (pid: number) => {
    pids.push(pid);
    for (const child of children.get(pid) ?? []) visit(child);
  };
  visit(rootPid);
  return pids;
}

/** Peak resident set size (VmHWM) of a process tree's processes, in MB: the largest one and the sum. */
export function peakRssMb(pids: readonly number[]): { maxMb: number; sumMb: number } {
  let maxMb = 0;
  let sumMb = 0;
  for (const pid of pids) {
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
      maxMb = Math.max(maxMb, kb / 1024);
      sumMb += kb / 1024;
    } catch {
      // gone
    }
  }
  return { maxMb, sumMb };
}

/** Whole-machine CPU from /proc/stat, in ms (all cores): busy and idle. */
export function machineCpu(): { busyMs: number; idleMs: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const [, ...values] = line.trim().split(/\s+/);
  const n = values.map(Number);
  const idle = (n[3] ?? 0) + (n[4] ?? 0);
  const total = n.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busyMs: (total - idle) * MS_PER_TICK, idleMs: idle * MS_PER_TICK };
}
