// Waits until nothing is left to do: both outboxes relayed, the inbox applied, no runnable job.
import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import type { WorkerProcess } from '../../jobs/workerApp.ts';

const Pending = z.object({ balanceOutbox: z.number(), inbox: z.number(), jobs: z.number() });

export async function pendingWork(balance: DatabasePool, ledger: DatabasePool) {
  const b = await balance.one(sql.type(Pending)`
    select (select count(*) from outbox where relayed_at is null)::int as "balanceOutbox",
           (select count(*) from gateway_inbox where processed_at is null)::int as inbox,
           (select count(*) from graphile_worker.jobs
             where task_identifier not in ('outbox__sweep', 'worker__watchdog', 'outbox__prune', 'maintenance__prune', 'ledger__checkpoint')
               and attempts < max_attempts)::int as jobs`);
  const ledgerOutbox = await ledger.oneFirst(sql.type(z.object({ n: z.number() }))`
    select count(*)::int as n from outbox where relayed_at is null`);
  return { ...b, ledgerOutbox };
}

export async function waitForQuiescence(balance: DatabasePool, ledger: DatabasePool, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let quietSince: number | null = null;
  for (;;) {
    const p = await pendingWork(balance, ledger);
    const quiet = p.balanceOutbox + p.inbox + p.jobs + p.ledgerOutbox === 0;
    if (quiet) {
      quietSince ??= Date.now();
      // stay quiet for a moment: a job that just finished may be writing the next event
      if (Date.now() - quietSince > 300) return;
    } else {
      quietSince = null;
    }
    if (Date.now() > deadline) throw new Error(`not quiescent after ${timeoutMs} ms: ${JSON.stringify(p)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Waits until every drainer of the worker (both relays, the inbox) finished `passes` more passes
 * than now: what "a few poll intervals later" stands for, with the work they would have found done.
 */
export async function drainerPasses(worker: WorkerProcess, passes: number, timeoutMs = 20_000): Promise<void> {
  const drainers = Object.values(worker.drainers);
  const start = drainers.map((d) => d.stats().passes);
  const deadline = Date.now() + timeoutMs;
  while (!drainers.every((d, i) => d.stats().passes >= start[i]! + passes)) {
    if (Date.now() > deadline) {
      const done = drainers.map((d, i) => `${d.name} ${d.stats().passes - start[i]!}`).join(', ');
      throw new Error(`waited ${timeoutMs} ms for ${passes} more passes of every drainer; got ${done}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
