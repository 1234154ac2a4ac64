// A small fixed history for the finance tests (settlement matching, payouts report, replicas):
// accounts, orders created and finished at fixed instants on 2024-04-10 (UTC), their ledger
// journals, and the provider's statement of that day with one line of every kind of break.
// Everything is written through the real SQL functions; only the orders' timestamps are set
// afterwards (with the guard trigger off, in one transaction), as a history loaded from the past.
import { sql } from 'slonik';
import { v4 as uuidv4, v7 as uuidv7 } from 'uuid';
import { z } from 'zod';
import type { Databases } from '../../app/db/pools.ts';
import type { Currency } from '../../app/money/money.ts';

export const DAY = '2024-04-10';
export const NEXT_DAY = '2024-04-11';

type OrderPlan = Readonly<{
  key: string;
  account: 'alice' | 'bob';
  amountMinor: bigint;
  status: 'success' | 'failed';
  createdAt: string;
  updatedAt: string;
  /** the ledger journals after the hold */
  journals: ReadonlyArray<'settle' | 'reverse'>;
}>;

export const ORDER_PLANS: readonly OrderPlan[] = [
  {
    key: 'o1',
    account: 'alice',
    amountMinor: 1000n,
    status: 'success',
    createdAt: '10:00:00',
    updatedAt: '10:01:00',
    journals: ['settle'],
  },
  {
    key: 'o2',
    account: 'alice',
    amountMinor: 2000n,
    status: 'success',
    createdAt: '11:00:00',
    updatedAt: '11:01:00',
    journals: ['settle'],
  },
  {
    key: 'o3',
    account: 'alice',
    amountMinor: 3000n,
    status: 'success',
    createdAt: '12:00:00',
    updatedAt: '12:01:00',
    journals: ['settle'],
  },
  {
    key: 'o4',
    account: 'alice',
    amountMinor: 4000n,
    status: 'success',
    createdAt: '13:00:00',
    updatedAt: '13:01:00',
    journals: ['settle'],
  },
  {
    key: 'o5',
    account: 'alice',
    amountMinor: 5000n,
    status: 'failed',
    createdAt: '14:00:00',
    updatedAt: '14:01:00',
    journals: ['reverse'],
  },
  {
    key: 'o6',
    account: 'alice',
    amountMinor: 6000n,
    status: 'success',
    createdAt: '15:00:00',
    updatedAt: '15:01:00',
    journals: ['settle'],
  },
  { key: 'o7', account: 'alice', amountMinor: 7000n, status: 'success', createdAt: '16:00:00', updatedAt: '16:01:00', journals: [] },
  {
    key: 'o8',
    account: 'alice',
    amountMinor: 8000n,
    status: 'success',
    createdAt: '17:00:00',
    updatedAt: '17:01:00',
    journals: ['settle'],
  },
  // 23:30 UTC: April 11th in Tokyo; recorded paid two minutes into the next UTC day
  {
    key: 'o9',
    account: 'alice',
    amountMinor: 1500n,
    status: 'success',
    createdAt: '23:30:00',
    updatedAt: '+00:02:00',
    journals: ['settle'],
  },
  { key: 'o10', account: 'bob', amountMinor: 900n, status: 'success', createdAt: '09:00:00', updatedAt: '09:01:00', journals: ['settle'] },
];

export type FinanceOrder = Readonly<{
  key: string;
  orderId: string;
  transactionId: string;
  accountId: string;
  currency: Currency;
  amountMinor: bigint;
  status: 'success' | 'failed';
  createdAt: string;
  updatedAt: string;
}>;
export type FinanceHistory = Readonly<{
  accounts: Readonly<Record<'alice' | 'bob', string>>;
  orders: Readonly<Record<string, FinanceOrder>>;
  /** a reference on the statement that is not ours (a UUID) */
  strangerReference: string;
}>;

const at = (time: string) => (time.startsWith('+') ? `${NEXT_DAY}T${time.slice(1)}Z` : `${DAY}T${time}Z`);
const RESPONSES = { created: { status: 202, body: { code: 0, msg: 'processing', data: null } } };
const Outcome = z.object({ outcome: z.string() });

export async function seedFinanceHistory(databases: Databases): Promise<FinanceHistory> {
  const { balance, ledger } = databases;
  const accounts = { alice: uuidv4(), bob: uuidv4() };
  const currencyOf = { alice: 'USD', bob: 'EUR' } as const;
  const deposits: unknown[] = [];
  for (const [user, id] of Object.entries(accounts) as Array<['alice' | 'bob', string]>) {
    await balance.query(sql.unsafe`insert into accounts (id, user_id, currency) values (${id}, ${user}, ${currencyOf[user]})`);
    const depositId = uuidv4();
    const credited = await balance.oneFirst(
      sql.type(Outcome)`select outcome from account_credit(${depositId}, ${id}, 100000, 'finance-test')`,
    );
    if (credited !== 'credited') throw new Error(`credit: ${credited}`);
    deposits.push({
      source: 'finance-test',
      transactionId: depositId,
      kind: 'deposit',
      accountId: id,
      currency: currencyOf[user],
      amountMinor: '100000',
    });
  }
  await postBatch(ledger, deposits);
  const orders: Record<string, FinanceOrder> = {};
  for (const plan of ORDER_PLANS) {
    const orderId = uuidv7();
    const transactionId = uuidv7();
    const accountId = accounts[plan.account];
    const currency = currencyOf[plan.account];
    const created = await balance.oneFirst(sql.type(Outcome)`
      select outcome from withdraw_create(${plan.account}, ${uuidv7()}, 'hash', ${accountId}, 'bank-1',
        ${plan.amountMinor}, ${currency}, ${orderId}, ${transactionId}, ${sql.json(RESPONSES)})`);
    if (created !== 'created') throw new Error(`withdraw_create: ${created}`);
    const path =
      plan.status === 'success'
        ? [
            ['init', 'processing'],
            ['processing', 'success'],
          ]
        : [['init', 'failed']];
    for (const [from, to] of path) {
      const moved = await balance.oneFirst(sql.type(Outcome)`
        select outcome from withdraw_transition(${transactionId}, ${sql.array([from!], 'text')}, ${to!}, 'job', 'finance-test', 'seed')`);
      if (moved !== 'changed') throw new Error(`withdraw_transition ${to}: ${moved}`);
    }
    await balance.transaction(async (tx) => {
      await tx.query(sql.unsafe`alter table withdraw_orders disable trigger withdraw_orders_guard`);
      await tx.query(sql.unsafe`
        update withdraw_orders set created_at = ${at(plan.createdAt)}::timestamptz, updated_at = ${at(plan.updatedAt)}::timestamptz
         where id = ${orderId}`);
      await tx.query(sql.unsafe`alter table withdraw_orders enable trigger withdraw_orders_guard`);
    });
    const event = (kind: string) => ({
      source: 'finance-test',
      transactionId,
      kind,
      accountId,
      currency,
      amountMinor: String(plan.amountMinor),
    });
    await postBatch(ledger, [event('hold'), ...plan.journals.map(event)]);
    orders[plan.key] = {
      key: plan.key,
      orderId,
      transactionId,
      accountId,
      currency,
      amountMinor: plan.amountMinor,
      status: plan.status,
      createdAt: at(plan.createdAt),
      updatedAt: at(plan.updatedAt),
    };
  }
  return { accounts, orders, strangerReference: uuidv4() };
}

async function postBatch(ledger: Databases['ledger'], batch: readonly unknown[]): Promise<void> {
  const posted = await ledger.any(
    sql.type(z.object({ posted: z.boolean() }))`select posted from ledger_post(${sql.jsonb(batch as never)})`,
  );
  if (posted.length !== batch.length || !posted.every((p) => p.posted)) throw new Error('ledger_post did not post the batch');
}

/**
 * The provider's statement of DAY: one clean line (o1, o10), none for o2, a wrong amount (o3), a
 * wrong currency (o4), paid although failed here (o5), paid twice (o6), paid with no settle journal
 * (o7), paid then reversed (o8), o9 settled before midnight, and two lines that are no order of ours.
 */
export function dayStatement(history: FinanceHistory, overrides: Partial<Record<'o3Amount', string>> = {}): string {
  const o = history.orders;
  const line = (reference: string, amount: string, currency: string, status: string, time: string, fee = '0.00') =>
    [reference, amount, currency, status, `${DAY}T${time}Z`, fee].join(',');
  return [
    'reference,amount,currency,status,settledAt,fee',
    line(o.o1!.transactionId, '10.00', 'USD', 'paid', '10:00:30.000', '0.25'),
    line(o.o3!.transactionId, overrides.o3Amount ?? '31.00', 'USD', 'paid', '12:00:30.000'),
    line(o.o4!.transactionId, '40.00', 'EUR', 'paid', '13:00:30.000'),
    line(o.o5!.transactionId, '50.00', 'USD', 'paid', '14:00:30.000'),
    line(o.o6!.transactionId, '60.00', 'USD', 'paid', '15:00:30.000'),
    line(o.o6!.transactionId, '60.00', 'USD', 'paid', '15:00:31.000'),
    line(o.o7!.transactionId, '70.00', 'USD', 'paid', '16:00:30.000'),
    line(o.o8!.transactionId, '80.00', 'USD', 'paid', '17:00:30.000'),
    line(o.o8!.transactionId, '80.00', 'USD', 'reversed', '20:00:00.000'),
    line(o.o9!.transactionId, '15.00', 'USD', 'paid', '23:59:30.000'),
    line(o.o10!.transactionId, '9.00', 'EUR', 'paid', '09:00:30.000', '0.10'),
    line(history.strangerReference, '12.34', 'USD', 'paid', '18:00:00.000'),
    line('PROVIDER-ADJ-1', '1.00', 'USD', 'paid', '19:00:00.000'),
  ]
    .map((row) => `${row}\r\n`)
    .join('');
}
