// Final orders × the provider (job reconcile__provider, every minute): what we say (success:
// money captured; failed: money released) against what the provider says now. Two cursors walk the
// final orders in (updated_at, id) order through withdraw_orders_updated_idx: `provider_first`
// right behind the settle delay (every order is checked soon after it ends) and `provider_recheck`
// RECONCILE_RECHECK_AFTER_MS behind (every order is checked again a day later: a paid payout
// reversed with its callback lost, a failed one the provider still calls pending). Each run asks at
// most RECONCILE_PROVIDER_CHECKS_MAX orders, RECONCILE_PROVIDER_CONCURRENCY at a time.
//
// A cursor never waits on one order: an order the provider cannot answer while later ones are
// answered goes to reconciliation_provider_retries and the cursor moves on; it is asked again
// with a backoff, and after RECONCILE_PROVIDER_UNKNOWN_MAX tries it becomes a break
// (provider_unanswered) for a human. Only a tail of unanswered orders (the provider is down) holds
// the cursor, so an outage is retried as a whole and fills no retry list. `--full` (npm run
// reconcile) checks every final order from the start and never moves a cursor.
import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import type { Config } from '../app/config.ts';
import type { Databases } from '../app/db/pools.ts';
import type { PayoutLookup, PspAdapter } from '../app/gateway/pspAdapter.ts';
import type { Logger } from '../app/logger.ts';
import { recordFindings, type Finding, type RunCategory } from './breakQueries.ts';

export const PROVIDER_CATEGORIES = [
  'provider_not_paid',
  'provider_paid_not_recorded',
  'provider_not_final',
  'provider_unanswered',
] as const;
const RETRY_BACKOFF_BASE_MS = 60_000;
const RETRY_BACKOFF_MAX_MS = 3_600_000;

const FinalOrderRow = z.object({
  orderId: z.string(),
  transactionId: z.string(),
  accountId: z.string(),
  currency: z.string(),
  status: z.enum(['success', 'failed']),
  atText: z.string(),
});
type FinalOrder = z.infer<typeof FinalOrderRow>;
type Cursor = Readonly<{ at: string; orderId: string }> | null;

const finalColumns = sql.fragment`
  o.id as "orderId", o.transaction_id as "transactionId", o.account_id as "accountId", o.currency, o.status,
  to_char(o.updated_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as "atText"`;

/** What a provider's answer about a final order means, if anything is wrong. */
export function providerFinding(order: FinalOrder, lookup: PayoutLookup): Finding | null {
  const providerStatus = lookup.kind === 'found' ? lookup.status : lookup.kind;
  const base = {
    subject: `order:${order.orderId}`,
    orderId: order.orderId,
    accountId: order.accountId,
    transactionId: order.transactionId,
    currency: order.currency,
    details: { providerStatus },
  };
  if (order.status === 'success' && providerStatus !== 'paid') {
    return { ...base, category: 'provider_not_paid', expected: 'provider: paid', actual: `provider: ${providerStatus}` };
  }
  if (order.status === 'failed' && providerStatus === 'paid') {
    return { ...base, category: 'provider_paid_not_recorded', expected: 'provider: not paid', actual: 'provider: paid' };
  }
  if (order.status === 'failed' && providerStatus === 'pending') {
    return { ...base, category: 'provider_not_final', expected: 'provider: failed (the money was released)', actual: 'provider: pending' };
  }
  return null;
}

async function askAll(psp: PspAdapter, orders: readonly FinalOrder[], concurrency: number): Promise<PayoutLookup[]> {
  const answers = new Array<PayoutLookup>(orders.length);
  let next = 0;
  const work = async () => {
    while (next < orders.length) {
      const index = next++;
      answers[index] = await psp.getPayout(orders[index]!.transactionId);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, orders.length) }, work));
  return answers;
}

const CursorRow = z.object({ at: z.string(), orderId: z.string() });

async function readCursor(balance: DatabasePool, name: string): Promise<Cursor> {
  return balance.maybeOne(sql.type(CursorRow)`
    select to_char(position_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as at, position_order as "orderId"
      from reconciliation_cursors where name = ${name}`);
}

async function writeCursor(balance: DatabasePool, name: string, cursor: Cursor): Promise<void> {
  if (cursor === null) return;
  await balance.query(sql.unsafe`
    insert into reconciliation_cursors (name, position_at, position_order) values (${name}, ${cursor.at}::timestamptz, ${cursor.orderId})
    on conflict (name) do update set position_at = excluded.position_at, position_order = excluded.position_order, updated_at = now()`);
}

async function finalOrdersAfter(balance: DatabasePool, cursor: Cursor, until: Date, limit: number): Promise<readonly FinalOrder[]> {
  if (limit <= 0) return [];
  return balance.any(sql.type(FinalOrderRow)`
    select ${finalColumns} from withdraw_orders o
     where o.updated_at <= ${until.toISOString()}::timestamptz and o.status in ('success', 'failed')
       and ${cursor === null ? sql.fragment`true` : sql.fragment`(o.updated_at, o.id) > (${cursor.at}::timestamptz, ${cursor.orderId}::uuid)`}
     order by o.updated_at, o.id limit ${limit}`);
}

type Outcome = { findings: Finding[]; answered: string[]; unanswered: FinalOrder[] };

function judge(orders: readonly FinalOrder[], answers: readonly PayoutLookup[]): Outcome & { lastAnswered: number } {
  const outcome: Outcome & { lastAnswered: number } = { findings: [], answered: [], unanswered: [], lastAnswered: -1 };
  orders.forEach((order, index) => {
    const lookup = answers[index]!;
    if (lookup.kind === 'unknown') {
      outcome.unanswered.push(order);
      return;
    }
    outcome.answered.push(`order:${order.orderId}`);
    outcome.lastAnswered = index;
    const finding = providerFinding(order, lookup);
    if (finding) outcome.findings.push(finding);
  });
  return outcome;
}

/** Orders the provider could not answer: asked again later, a break after `unknownMax` tries. */
async function noteUnanswered(balance: DatabasePool, orders: readonly FinalOrder[], now: Date, unknownMax: number): Promise<Finding[]> {
  if (orders.length === 0) return [];
  const rows = await balance.any(sql.type(z.object({ orderId: z.string(), attempts: z.number() }))`
    insert into reconciliation_provider_retries (order_id, transaction_id, attempts, first_asked_at, next_at)
    select o.id, o.tx, 1, ${now.toISOString()}::timestamptz, ${now.toISOString()}::timestamptz + make_interval(secs => ${RETRY_BACKOFF_BASE_MS / 1000})
      from unnest(${sql.array(
        orders.map((o) => o.orderId),
        'uuid',
      )}::uuid[], ${sql.array(
        orders.map((o) => o.transactionId),
        'uuid',
      )}::uuid[]) as o(id, tx)
    on conflict (order_id) do update
      set attempts = reconciliation_provider_retries.attempts + 1,
          next_at = ${now.toISOString()}::timestamptz + make_interval(secs => least(${RETRY_BACKOFF_BASE_MS / 1000}
                      * power(2, reconciliation_provider_retries.attempts), ${RETRY_BACKOFF_MAX_MS / 1000}))
    returning order_id as "orderId", attempts`);
  const given = new Set(rows.filter((r) => r.attempts >= unknownMax).map((r) => r.orderId));
  if (given.size === 0) return [];
  await balance.query(sql.unsafe`delete from reconciliation_provider_retries where order_id = any(${sql.array([...given], 'uuid')})`);
  return orders
    .filter((o) => given.has(o.orderId))
    .map((o) => ({
      category: 'provider_unanswered' as const,
      subject: `order:${o.orderId}`,
      orderId: o.orderId,
      accountId: o.accountId,
      transactionId: o.transactionId,
      currency: o.currency,
      expected: 'an answer from the provider',
      actual: `no answer after ${unknownMax} tries`,
    }));
}

export type ProviderPass = Readonly<{ asked: number; answered: number; findings: readonly Finding[]; answeredSubjects: readonly string[] }>;

const checkedOf = (subjects: readonly string[]) =>
  new Map<RunCategory, readonly string[]>(PROVIDER_CATEGORIES.map((category) => [category, subjects]));

/** One walk of a cursor (or, with `cursorName` null, from the start without one): asks, judges, moves. */
async function walk(
  deps: { balance: DatabasePool; reads?: DatabasePool; psp: PspAdapter; concurrency: number; unknownMax: number; now: Date },
  cursorName: string | null,
  until: Date,
  limit: number,
): Promise<ProviderPass> {
  const previous = cursorName === null ? null : await readCursor(deps.balance, cursorName);
  const orders = await finalOrdersAfter(deps.reads ?? deps.balance, previous, until, limit);
  const answers = await askAll(deps.psp, orders, deps.concurrency);
  const judged = judge(orders, answers);
  // unanswered orders before the last answered one are skipped (asked again later); an unanswered
  // tail holds the cursor (the provider may simply be down)
  const skipped = judged.unanswered.filter((o) => orders.indexOf(o) < judged.lastAnswered);
  const given = await noteUnanswered(deps.balance, skipped, deps.now, deps.unknownMax);
  if (cursorName !== null && judged.lastAnswered >= 0) {
    const last = orders[judged.lastAnswered]!;
    await writeCursor(deps.balance, cursorName, { at: last.atText, orderId: last.orderId });
  }
  return {
    asked: orders.length,
    answered: judged.answered.length,
    findings: [...judged.findings, ...given],
    answeredSubjects: judged.answered,
  };
}

/** The retry list: orders skipped earlier, due again. */
async function retryDue(
  deps: { balance: DatabasePool; psp: PspAdapter; concurrency: number; unknownMax: number; now: Date },
  limit: number,
) {
  if (limit <= 0) return { asked: 0, answered: 0, findings: [], answeredSubjects: [] } satisfies ProviderPass;
  const orders = await deps.balance.any(sql.type(FinalOrderRow)`
    select ${finalColumns} from reconciliation_provider_retries r join withdraw_orders o on o.id = r.order_id
     where r.next_at <= ${deps.now.toISOString()}::timestamptz order by r.next_at limit ${limit}`);
  const answers = await askAll(deps.psp, orders, deps.concurrency);
  const judged = judge(orders, answers);
  if (judged.answered.length > 0) {
    await deps.balance.query(sql.unsafe`
      delete from reconciliation_provider_retries
       where order_id = any(${sql.array(
         orders.filter((_o, i) => answers[i]!.kind !== 'unknown').map((o) => o.orderId),
         'uuid',
       )})`);
  }
  const given = await noteUnanswered(deps.balance, judged.unanswered, deps.now, deps.unknownMax);
  return {
    asked: orders.length,
    answered: judged.answered.length,
    findings: [...judged.findings, ...given],
    answeredSubjects: judged.answered,
  };
}

export type ProviderRun = Readonly<{ retried: ProviderPass; first: ProviderPass; recheck: ProviderPass; breaksResolved: number }>;

/** One run of reconcile__provider: the retry list, then the first cursor, then the recheck cursor. */
export async function runProviderChecks(deps: {
  databases: Databases;
  psp: PspAdapter;
  config: Config;
  logger: Logger;
  now?: Date;
}): Promise<ProviderRun> {
  const r = deps.config.reconcile;
  const now = deps.now ?? new Date();
  const ctx = { balance: deps.databases.balance, psp: deps.psp, concurrency: r.providerConcurrency, unknownMax: r.providerUnknownMax, now };
  const budget = r.providerChecksMax;
  const retried = await retryDue(ctx, Math.floor(budget / 10));
  // the first check of new final orders goes first, but never takes the whole budget
  const first = await walk(ctx, 'provider_first', new Date(now.getTime() - r.settleMs), Math.ceil(((budget - retried.asked) * 2) / 3));
  const recheck = await walk(ctx, 'provider_recheck', new Date(now.getTime() - r.recheckAfterMs), budget - retried.asked - first.asked);
  const passes = [retried, first, recheck];
  const findings = passes.flatMap((p) => p.findings);
  const breaksResolved = await recordFindings(
    deps.databases.balance,
    `provider:${now.toISOString()}`,
    findings,
    checkedOf(passes.flatMap((p) => p.answeredSubjects)),
  );
  const asked = passes.reduce((n, p) => n + p.asked, 0);
  if (asked > 0) {
    deps.logger.info(
      { asked, retried: retried.asked, first: first.asked, recheck: recheck.asked, findings: findings.length, breaksResolved },
      'checked final orders with the provider',
    );
  }
  return { retried, first, recheck, breaksResolved };
}

/** `--full`: every final order up to `until` (at most `limit`), from the start, moving no cursor. */
export async function checkAllWithProvider(
  deps: { databases: Databases; reads?: DatabasePool; psp: PspAdapter; config: Config; now: Date },
  until: Date,
  limit: number,
): Promise<ProviderPass> {
  const r = deps.config.reconcile;
  const ctx = {
    balance: deps.databases.balance,
    // the orders are read where the rest of the run reads (a replica, when there is one)
    reads: deps.reads,
    psp: deps.psp,
    concurrency: r.providerConcurrency,
    unknownMax: r.providerUnknownMax,
    now: deps.now,
  };
  return walk(ctx, null, until, limit);
}

export { checkedOf as providerChecked };
