// The provider's own statement, end to end: withdrawals paid by the simulator (with a fee), one of
// them reversed afterwards; the simulator's GET /settlements of the day; the worker's daily job
// (settlement__import_yesterday, as the cron enqueues it) imports it through the adapter and
// matches it: the reversed payout is the one break; the same job again changes nothing.
import test from 'ava';
import { sql } from 'slonik';
import { z } from 'zod';
import { parsedCronItems } from '../jobs/crontab.ts';
import { createPspHttpAdapter } from '../app/gateway/pspHttpAdapter.ts';
import { parseStatement } from '../reconcile/settlementStatement.ts';
import { eventually, placeMany, placeWithdrawal } from './helpers/asyncChecks.ts';
import { startTestSystem, type TestSystem } from './helpers/system.ts';

let system: TestSystem;

test.before(async () => {
  system = await startTestSystem({ worker: true, knobs: { feeMinor: 25 }, env: { RECONCILE_SETTLE_MS: '0' } });
});
test.after.always(async () => {
  await system?.stop();
});

const today = () => new Date().toISOString().slice(0, 10);
const Count = z.object({ n: z.number() });

async function enqueueDailyImport(tick: Date): Promise<void> {
  await system.db.databases.balance.query(sql.unsafe`
    select graphile_worker.add_job('settlement__import_yesterday', ${sql.json({ _cron: { ts: tick.toISOString(), backfilled: false } })})`);
}

/** Waits until the job has run; throws with its error when it failed, or after 30 s. */
async function waitForJobs(): Promise<void> {
  const Job = z.object({ lastError: z.string().nullable() });
  let jobs: readonly z.infer<typeof Job>[] = [];
  await eventually(
    'the settlement import job to run',
    async () => {
      jobs = await system.db.databases.balance.any(sql.type(Job)`
      select last_error as "lastError" from graphile_worker.jobs where task_identifier = 'settlement__import_yesterday'`);
      // a job that succeeded is deleted; one that failed keeps its error (and waits for its retry)
      return jobs.every((job) => job.lastError !== null);
    },
    30_000,
  );
  if (jobs.length > 0) throw new Error(`the settlement import job failed: ${jobs.map((job) => job.lastError).join('; ')}`);
}

test.serial(
  'when the simulator pays and reverses payouts, then the daily job imports its statement and only the reversal is a break',
  async (t) => {
    t.true(
      parsedCronItems().some((item) => item.task === 'settlement__import_yesterday' && item.identifier === 'settlement_import_yesterday'),
    );
    const { accountId, orders } = await placeMany(system, { userId: 'stmt-user', count: 2, amountMinor: 1_000n, fundMinor: 10_000n });
    await system.waitForOrders(
      orders.map((o) => o.orderId),
      ['success'],
    );
    system.sim!.setKnobs({ reverseAfterPaidRate: 1 });
    const reversed = await placeWithdrawal(system, { userId: 'stmt-user', accountId, amountMinor: 1_500n });
    await eventually('the simulator to reverse the third payout', async () =>
      system.sim!.stats().reversed.includes(reversed.transactionId),
    );
    system.sim!.setKnobs({ reverseAfterPaidRate: 0 });
    await system.waitForOrders([reversed.orderId], ['success']);
    // the settle journals are posted through the outbox: the ledger side must be there before matching
    await eventually('the three settle journals to be posted', async () => {
      const n = await system.db.databases.ledger.oneFirst(sql.type(Count)`
      select count(*)::int as n from journal_transactions where kind = 'settle'
         and transaction_id = any(${sql.array([...orders.map((o) => o.transactionId), reversed.transactionId], 'uuid')})`);
      return n === 3;
    });

    // what the simulator serves: three paid lines with the fee, one reversed line
    const psp = createPspHttpAdapter({ baseUrl: system.simUrl!, ...system.config.gateway });
    const fetched = await psp.getSettlementStatement(today());
    await psp.close();
    if (fetched.kind !== 'found') throw new Error(fetched.reason);
    const statement = parseStatement(fetched.csv, today());
    const served = statement.lines.map((l) => [l.reference, l.amount, l.currency, l.status, l.fee]);
    // the first two were placed together and paid in either order: compared as a set
    const byReference = (a: string[], b: string[]) => a[0]!.localeCompare(b[0]!);
    t.deepEqual(
      served.slice(0, 2).sort(byReference),
      [
        [orders[0]!.transactionId, '10.00', 'USD', 'paid', '0.25'],
        [orders[1]!.transactionId, '10.00', 'USD', 'paid', '0.25'],
      ].sort(byReference),
    );
    t.deepEqual(served.slice(2), [
      [reversed.transactionId, '15.00', 'USD', 'paid', '0.25'],
      [reversed.transactionId, '15.00', 'USD', 'reversed', '0.00'],
    ]);

    // the cron's tick the next day imports "yesterday": today
    const tomorrow = new Date(Date.parse(`${today()}T00:00:00Z`) + 86_400_000 + 20 * 60_000);
    await enqueueDailyImport(tomorrow);
    await waitForJobs();
    const Statement = z.object({ id: z.bigint(), state: z.string(), source: z.string(), lineCount: z.number() });
    const stored = await system.db.databases.balance.any(sql.type(Statement)`
    select id, state, source, line_count as "lineCount" from settlement_statements where statement_date = ${today()}::date`);
    t.like(stored, [{ state: 'current', source: 'provider', lineCount: 4 }]);
    const Break = z.object({ category: z.string(), transactionId: z.string().nullable() });
    const open = await system.db.databases.balance.any(sql.type(Break)`
    select category, transaction_id as "transactionId" from reconciliation_breaks
     where resolved_at is null and category like 'settlement%' order by id`);
    t.deepEqual(open, [{ category: 'settlement_status_mismatch', transactionId: reversed.transactionId }]);

    // the same tick again (a retried job, a second worker): nothing changes
    const lines = await system.db.databases.balance.oneFirst(sql.type(Count)`select count(*)::int as n from settlement_lines`);
    await enqueueDailyImport(tomorrow);
    await waitForJobs();
    t.is(await system.db.databases.balance.oneFirst(sql.type(Count)`select count(*)::int as n from settlement_statements`), 1);
    t.is(await system.db.databases.balance.oneFirst(sql.type(Count)`select count(*)::int as n from settlement_lines`), lines);
  },
);
