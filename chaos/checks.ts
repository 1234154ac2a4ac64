// What must hold after a chaos run, once faults stopped and the system converged. Every check
// reads the databases and the provider directly; a violation is a bug in the system, never in here.
import pg from 'pg';
import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import type { Databases } from '../app/db/pools.ts';
import { allInvariants } from '../reconcile/invariants.ts';
import type { KeyRecord } from './clients.ts';

export type Violation = Readonly<{
  check: string;
  subject: string;
  detail: string;
  /** the order the violation concerns, with everything that happened to it */
  order?: Record<string, unknown> | null;
}>;

const OrderContextRow = z.object({ order: z.record(z.unknown()) });

/** The order behind a violation's subject (order:<id>, reference:<transaction id>, key:<idempotency key>), with its evidence. */
async function orderContext(balance: DatabasePool, subject: string): Promise<Record<string, unknown> | null> {
  const [kind, id] = subject.split(':', 2) as [string, string | undefined];
  if (!id || !/^[0-9a-f-]{36}$/i.test(id)) return null;
  const where =
    kind === 'order'
      ? sql.fragment`o.id = ${id}::uuid`
      : kind === 'reference'
        ? sql.fragment`o.transaction_id = ${id}::uuid`
        : kind === 'key'
          ? sql.fragment`o.id in (select k.order_id from idempotency_keys k where k.idempotency_key = ${id}::uuid)`
          : null;
  if (!where) return null;
  const row = await balance.maybeOne(sql.type(OrderContextRow)`
    select jsonb_build_object(
      'orderId', o.id, 'transactionId', o.transaction_id, 'status', o.status, 'amountMinor', o.amount_minor::text,
      'currency', o.currency, 'userId', o.user_id, 'createdAt', o.created_at, 'updatedAt', o.updated_at,
      'history', (select jsonb_agg(jsonb_build_object('to', h.to_status, 'actor', h.actor, 'actorId', h.actor_id,
                    'reason', h.reason, 'at', h.created_at) order by h.id) from withdraw_status_history h where h.order_id = o.id),
      'submitAttempts', (select jsonb_agg(jsonb_build_object('result', a.result, 'httpStatus', a.http_status, 'at', a.created_at)
                    order by a.id) from gateway_submit_attempts a where a.transaction_id = o.transaction_id),
      'statusQueries', (select jsonb_agg(jsonb_build_object('result', q.result, 'at', q.created_at) order by q.id)
                    from gateway_status_queries q where q.transaction_id = o.transaction_id),
      'callbacks', (select jsonb_agg(jsonb_build_object('eventId', i.event_id, 'status', i.status, 'outcome', i.outcome,
                    'receivedAt', i.received_at, 'processedAt', i.processed_at) order by i.id)
                    from gateway_inbox i where i.reference = o.transaction_id::text),
      'breaks', (select jsonb_agg(jsonb_build_object('category', b.category, 'resolvedAt', b.resolved_at, 'actual', b.actual))
                    from reconciliation_breaks b where b.order_id = o.id)
    ) as "order"
      from withdraw_orders o where ${where} limit 1`);
  return row?.order ?? null;
}

type ProviderStats = { executed: Record<string, number>; reversed: string[] };

const OrderRow = z.object({
  id: z.string(),
  transactionId: z.string(),
  status: z.string(),
  amountMinor: z.bigint(),
  currency: z.string(),
  userId: z.string(),
  manualEvidence: z.boolean(),
});

export async function fetchJson<T>(url: string): Promise<T> {
  const response = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  return (await response.json()) as T;
}

async function providerStatuses(pspUrl: string, references: readonly string[]): Promise<Map<string, string>> {
  const statuses = new Map<string, string>();
  let next = 0;
  const work = async () => {
    while (next < references.length) {
      const reference = references[next++]!;
      const response = await fetch(`${pspUrl}/payouts/${reference}`, { signal: AbortSignal.timeout(10_000) });
      const body = (await response.json()) as { status?: string };
      statuses.set(reference, response.status === 404 ? 'not_found' : (body.status ?? `http_${response.status}`));
    }
  };
  await Promise.all(Array.from({ length: 32 }, work));
  return statuses;
}

export async function runChecks(deps: {
  databases: Databases;
  pspUrl: string;
  keys: readonly KeyRecord[];
  attacks: ReadonlyArray<{ kind: string; expectedStatus: number; gotStatus: number }>;
}): Promise<{ violations: Violation[]; totals: Record<string, unknown> }> {
  const { balance, ledger } = deps.databases;
  const violations: Violation[] = [];
  const add = (check: string, subject: string, detail: string) => violations.push({ check, subject, detail });

  // I1–I5 on both databases
  for (const v of await allInvariants(balance, ledger)) add(v.invariant, v.subject, `expected ${v.expected}, actual ${v.actual}`);

  // money conservation per currency: credits = balances + what left through success orders
  const conservation = await balance.any(sql.type(
    z.object({ currency: z.string(), credits: z.bigint(), balances: z.bigint(), paidOut: z.bigint() }),
  )`
    select c.currency,
           coalesce((select sum(amount_minor) from credits where currency = c.currency), 0)::bigint as credits,
           coalesce((select sum(balance_minor) from accounts where currency = c.currency), 0)::bigint as balances,
           coalesce((select sum(amount_minor) from withdraw_orders where currency = c.currency and status = 'success'), 0)::bigint as "paidOut"
      from (select distinct currency from accounts) c`);
  for (const c of conservation) {
    if (c.credits !== c.balances + c.paidOut) {
      add('money_conservation', c.currency, `credits ${c.credits} != balances ${c.balances} + paid out ${c.paidOut}`);
    }
  }

  const orders = await balance.any(sql.type(OrderRow)`
    select o.id, o.transaction_id as "transactionId", o.status, o.amount_minor as "amountMinor", o.currency, o.user_id as "userId",
           exists (select 1 from withdraw_status_history h where h.order_id = o.id and h.to_status = 'manual' and h.evidence is not null) as "manualEvidence"
      from withdraw_orders o`);
  const byId = new Map(orders.map((o) => [o.id, o]));
  const byTx = new Map(orders.map((o) => [o.transactionId, o]));

  // I6 and "every 202 has an order": one key, at most one order, always the same reply
  for (const key of deps.keys) {
    if (key.orderIds.size > 1) add('I6', `key:${key.key}`, `one key produced orders ${[...key.orderIds].join(', ')}`);
    if (key.bodies.size > 1) add('I6', `key:${key.key}`, `one key got different replies: ${[...key.bodies].join(' | ')}`);
    for (const orderId of key.orderIds)
      if (!byId.has(orderId)) add('accepted_has_order', `key:${key.key}`, `202 for ${orderId} but no such order`);
  }
  const keyRows = await balance.any(sql.type(z.object({ orderId: z.string(), keys: z.number() }))`
    select order_id as "orderId", count(*)::int as keys from idempotency_keys where order_id is not null group by order_id having count(*) > 1`);
  for (const row of keyRows) add('I6', `order:${row.orderId}`, `${row.keys} idempotency keys point at one order`);
  const orderless = await balance.oneFirst(sql.type(z.object({ n: z.number() }))`
    select count(*)::int as n from withdraw_orders o where not exists (select 1 from idempotency_keys k where k.order_id = o.id)`);
  if (orderless > 0) add('I6', 'orders', `${orderless} orders have no idempotency key`);

  // I7, I8 and the provider's truth
  const stats = await fetchJson<ProviderStats>(`${deps.pspUrl}/stats`);
  for (const [reference, times] of Object.entries(stats.executed)) {
    if (times > 1) add('I7', `reference:${reference}`, `executed ${times} times`);
    if (!byTx.has(reference)) add('I7', `reference:${reference}`, 'executed for an unknown reference');
  }
  const reversed = new Set(stats.reversed);
  const provider = await providerStatuses(
    deps.pspUrl,
    orders.map((o) => o.transactionId),
  );
  const openBreaks = new Set(
    await balance.anyFirst(sql.type(z.object({ orderId: z.string() }))`
    select order_id as "orderId" from reconciliation_breaks where resolved_at is null and order_id is not null`),
  );
  const byStatus: Record<string, number> = {};
  for (const order of orders) {
    byStatus[order.status] = (byStatus[order.status] ?? 0) + 1;
    const truth = provider.get(order.transactionId) ?? 'unknown';
    const subject = `order:${order.id}`;
    if (order.status === 'init' || order.status === 'processing') {
      add('I8', subject, `still ${order.status} after convergence (provider: ${truth})`);
    } else if (order.status === 'success' && truth !== 'paid' && !(reversed.has(order.transactionId) && openBreaks.has(order.id))) {
      add(
        'final_matches_provider',
        subject,
        `success but the provider says ${truth}` +
          `${reversed.has(order.transactionId) ? ' (a reversal), and no open break records it' : ''}`,
      );
    } else if (order.status === 'failed' && truth === 'paid') {
      add('final_matches_provider', subject, 'failed (money released) but the provider paid it');
    } else if (order.status === 'manual' && !order.manualEvidence) {
      add('manual_has_evidence', subject, 'manual without evidence');
    }
  }

  // nothing left behind
  const leftovers = await balance.one(sql.type(
    z.object({ outbox: z.number(), inbox: z.number(), locked: z.number(), failedJobs: z.number() }),
  )`
    select (select count(*) from outbox where relayed_at is null)::int as outbox,
           (select count(*) from gateway_inbox where processed_at is null)::int as inbox,
           (select count(*) from graphile_worker.jobs where locked_at is not null)::int as locked,
           (select count(*) from graphile_worker.jobs
             where attempts >= max_attempts and task_identifier = 'ledger__post')::int as "failedJobs"`);
  const ledgerOutbox = await ledger.oneFirst(
    sql.type(z.object({ n: z.number() }))`select count(*)::int as n from outbox where relayed_at is null`,
  );
  if (leftovers.outbox > 0) add('I8', 'balance-outbox', `${leftovers.outbox} rows not relayed`);
  if (ledgerOutbox > 0) add('I8', 'ledger-outbox', `${ledgerOutbox} rows not relayed`);
  if (leftovers.inbox > 0) add('I8', 'gateway-inbox', `${leftovers.inbox} callbacks not applied`);
  if (leftovers.locked > 0) {
    const locked = await balance.any(sql.type(
      z.object({ task: z.string(), lockedBy: z.string().nullable(), lockedAt: z.number().nullable(), beat: z.number().nullable() }),
    )`
      select j.task_identifier as task, j.locked_by as "lockedBy", j.locked_at as "lockedAt",
             (select h.last_seen_at from worker_heartbeats h where h.worker_id = j.locked_by) as beat
        from graphile_worker.jobs j where j.locked_at is not null limit 5`);
    add(
      'I8',
      'jobs',
      `${leftovers.locked} jobs still locked: ${locked
        .map(
          (l) =>
            `${l.task} by ${l.lockedBy} since ${l.lockedAt ? new Date(l.lockedAt).toISOString() : '?'} (heartbeat ${l.beat ? new Date(l.beat).toISOString() : 'none'})`,
        )
        .join('; ')}`,
    );
  }
  // a ledger posting that gave up would leave the books behind the balances
  if (leftovers.failedJobs > 0) add('I8', 'jobs', `${leftovers.failedJobs} ledger__post jobs failed permanently`);

  for (const attack of deps.attacks) {
    if (attack.gotStatus !== attack.expectedStatus)
      add('attack', attack.kind, `expected HTTP ${attack.expectedStatus}, got ${attack.gotStatus}`);
  }

  const explained = await Promise.all(violations.map(async (v) => ({ ...v, order: await orderContext(balance, v.subject) })));
  return {
    violations: explained,
    totals: {
      orders: orders.length,
      byStatus,
      executedPayouts: Object.keys(stats.executed).length,
      reversedByProvider: reversed.size,
      openBreaks: openBreaks.size,
      conservation: conservation.map((c) => ({
        currency: c.currency,
        credits: c.credits.toString(),
        balances: c.balances.toString(),
        paidOut: c.paidOut.toString(),
      })),
    },
  };
}

/** Backends of the system's own processes, for pg_terminate_backend faults. */
export async function terminateBackends(adminUrl: string, share: number, random: () => number): Promise<number> {
  const client = new pg.Client({ connectionString: adminUrl });
  client.on('error', () => {});
  await client.connect();
  try {
    const { rows } = await client.query<{ pid: number }>(
      `select pid from pg_stat_activity where application_name like 'withdraw-%' or application_name = '' and datname like 'withdraw_%'`,
    );
    const doomed = rows.filter(() => random() < share).map((r) => r.pid);
    if (doomed.length > 0) await client.query('select pg_terminate_backend(pid) from unnest($1::int[]) as pid', [doomed]);
    return doomed.length;
  } finally {
    await client.end().catch(() => {});
  }
}

export type { DatabasePool };
