// Waits until nothing is left to do: both outboxes relayed, the inbox applied, no runnable job.
import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';

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
