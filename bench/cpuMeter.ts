// CPU of every process of the benchmark, per component, over a measured window. The system's
// processes (web, workers, simulator) are process trees; PostgreSQL is the postmaster's tree, and
// each client backend is attributed to the process that opened it by its application_name
// (pg_stat_activity). A sampler keeps the last value seen of every process, so a process that exits
// inside a window still counts up to its last sample.
import type pg from 'pg';
import { machineCpu, parentsOfAll, readProcCpu, treeCpu } from './procStats.ts';

export type Component = 'web' | 'worker' | 'psp' | 'loadgen';
export type PgClient = 'web' | 'worker' | 'loadgen' | 'ceiling' | 'other';
const PG_CLIENTS: readonly PgClient[] = ['web', 'worker', 'loadgen', 'ceiling', 'other'];

type Cpu = { userMs: number; systemMs: number };
type Sample = Readonly<{ at: number; machineBusyMs: number; values: ReadonlyMap<string, Cpu & { born: number }> }>;

export type CpuWindow = Readonly<{
  wallMs: number;
  /** per component, ms of CPU (user + system) */
  components: Readonly<Record<Component, number>>;
  /** PostgreSQL's whole tree minus what the load generator and the ceiling run caused */
  postgres: number;
  /** PostgreSQL's CPU by the client each backend served; `background` is everything not a client backend */
  postgresByClient: Readonly<Record<PgClient | 'background', number>>;
  /** web + worker + psp + postgres */
  system: number;
  /** the kernel's share (stime) of the system's CPU */
  kernelShare: number;
  /** CPU the machine spent on processes that are not the benchmark's (other users of the machine) */
  foreignMs: number;
}>;

export function pgClientOf(applicationName: string, backendType: string | null): PgClient | null {
  if (backendType !== null && backendType !== 'client backend') return null;
  // the web process's pools, and its long-poll listener (withdraw-listen-withdraw-status)
  if (/^withdraw-(listen-)?web|^withdraw-listen-withdraw-status$/.test(applicationName)) return 'web';
  if (/^withdraw-(listen-)?worker/.test(applicationName)) return 'worker';
  if (applicationName.startsWith('withdraw-bench')) return 'loadgen';
  if (applicationName === 'pgbench') return 'ceiling';
  return 'other';
}

export function createCpuMeter(deps: {
  /** the root pids of each component now (children are restarted, so asked every time) */
  componentPids: () => Readonly<Record<Component, readonly number[]>>;
  postmasterPid: number;
  admin: pg.Client;
  sampleEveryMs?: number;
}) {
  const pgClassOf = new Map<number, PgClient>();
  const last = new Map<string, Cpu & { born: number }>();
  let timer: NodeJS.Timeout | null = null;
  let sampling: Promise<void> | null = null;
  // the keys every open window has seen so far
  const openWindows = new Set<Set<string>>();

  async function sample(): Promise<Sample> {
    const { rows } = await deps.admin.query<{ pid: number; applicationName: string; backendType: string | null }>(
      `select pid, coalesce(application_name, '') as "applicationName", backend_type as "backendType" from pg_stat_activity`,
    );
    const at = Date.now();
    const machineBusyMs = machineCpu().busyMs;
    const tree = parentsOfAll();
    const values = new Map<string, Cpu & { born: number }>();
    for (const row of rows) {
      const klass = pgClientOf(row.applicationName, row.backendType);
      const cpu = readProcCpu(row.pid);
      if (klass === null || cpu === null) continue;
      pgClassOf.set(row.pid, klass);
      values.set(`pg:${row.pid}:${cpu.startTicks}`, { userMs: cpu.userMs, systemMs: cpu.systemMs, born: cpu.startTicks });
    }
    const pids = deps.componentPids();
    for (const [component, roots] of Object.entries(pids)) {
      for (const pid of roots) {
        const root = readProcCpu(pid);
        if (!root) continue;
        // the load generator is this process, whose children include the embedded PostgreSQL
        const t = component === 'loadgen' ? root : treeCpu(pid, tree);
        values.set(`${component}:${pid}:${root.startTicks}`, { userMs: t.userMs, systemMs: t.systemMs, born: root.startTicks });
      }
    }
    const pgTree = treeCpu(deps.postmasterPid, tree);
    values.set('postgres:tree', { userMs: pgTree.userMs, systemMs: pgTree.systemMs, born: 0 });
    for (const [key, value] of values) last.set(key, value);
    for (const seen of openWindows) for (const key of values.keys()) seen.add(key);
    return { at, machineBusyMs, values };
  }

  function runSample(): Promise<void> {
    sampling ??= sample()
      .then(() => undefined)
      .catch(() => undefined)
      .finally(() => {
        sampling = null;
      });
    return sampling;
  }

  /** Starts a window: returns a function that ends it and reports. */
  async function window(): Promise<() => Promise<CpuWindow>> {
    if (sampling) await sampling;
    const seen = new Set<string>();
    openWindows.add(seen);
    const start = await sample();
    if (!timer) timer = setInterval(() => void runSample(), deps.sampleEveryMs ?? 500);
    return async () => {
      if (sampling) await sampling;
      const end = await sample();
      openWindows.delete(seen);
      return summarize(start, end, seen);
    };
  }

  function summarize(start: Sample, end: Sample, seen: ReadonlySet<string>): CpuWindow {
    const delta = new Map<string, Cpu>();
    // every process seen in the window, from its value at the start (0 if born since) to its value
    // at the end (or at its last sample, if it exited)
    for (const key of seen) {
      const before = start.values.get(key) ?? { userMs: 0, systemMs: 0 };
      const after = end.values.get(key) ?? last.get(key) ?? before;
      delta.set(key, { userMs: Math.max(0, after.userMs - before.userMs), systemMs: Math.max(0, after.systemMs - before.systemMs) });
    }
    const sum = (prefix: string) => {
      let userMs = 0;
      let systemMs = 0;
      for (const [key, value] of delta) {
        if (!key.startsWith(prefix)) continue;
        userMs += value.userMs;
        systemMs += value.systemMs;
      }
      return { userMs, systemMs, total: userMs + systemMs };
    };
    const byClient = Object.fromEntries(PG_CLIENTS.map((c) => [c, 0])) as Record<PgClient, number>;
    let clientSystemMs = 0;
    for (const [key, value] of delta) {
      if (!key.startsWith('pg:')) continue;
      const klass = pgClassOf.get(Number(key.split(':')[1])) ?? 'other';
      byClient[klass] += value.userMs + value.systemMs;
      if (klass !== 'loadgen' && klass !== 'ceiling') clientSystemMs += value.systemMs;
    }
    const pgTree = sum('postgres:tree');
    const attributed = PG_CLIENTS.reduce((total, c) => total + byClient[c], 0);
    const background = Math.max(0, pgTree.total - attributed);
    const postgres = Math.max(0, pgTree.total - byClient.loadgen - byClient.ceiling);
    const web = sum('web:');
    const worker = sum('worker:');
    const psp = sum('psp:');
    const loadgen = sum('loadgen:');
    const system = web.total + worker.total + psp.total + postgres;
    // the background processes' split is not known per process here: taken from the tree's
    const pgSystemMs = clientSystemMs + (background * pgTree.systemMs) / Math.max(1, pgTree.total);
    const systemMs = web.systemMs + worker.systemMs + psp.systemMs + pgSystemMs;
    return {
      wallMs: end.at - start.at,
      components: { web: web.total, worker: worker.total, psp: psp.total, loadgen: loadgen.total },
      postgres,
      postgresByClient: { ...byClient, background },
      system,
      kernelShare: system > 0 ? systemMs / system : 0,
      foreignMs: Math.max(0, end.machineBusyMs - start.machineBusyMs - system - loadgen.total - byClient.loadgen - byClient.ceiling),
    };
  }

  return {
    window,
    stop: async () => {
      if (timer) clearInterval(timer);
      timer = null;
      if (sampling) await sampling;
    },
  };
}
