// Turns relayed Balance outbox events into ledger postings, one Ledger DB call per batch.
// Idempotent by (transactionId, kind) in the database (sql/ledger/0002_ledger_post.sql).
import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import { CURRENCIES } from '../money/money.ts';

export const LEDGER_KIND_BY_TOPIC = {
  'account.credited': 'deposit',
  'withdraw.created': 'hold',
  'withdraw.success': 'settle',
  'withdraw.failed': 'reverse',
} as const;
export type LedgerTopic = keyof typeof LEDGER_KIND_BY_TOPIC;
export type LedgerKind = (typeof LEDGER_KIND_BY_TOPIC)[LedgerTopic];

const uuid = z.string().uuid();

export const RelayedEvent = z.object({
  outboxId: z.number().int().positive(),
  topic: z.enum(Object.keys(LEDGER_KIND_BY_TOPIC) as [LedgerTopic, ...LedgerTopic[]]),
  transactionId: uuid,
  payload: z
    .object({
      transactionId: uuid,
      accountId: uuid,
      amountMinor: z.string().regex(/^[1-9]\d{0,18}$/),
      currency: z.enum(CURRENCIES),
    })
    .passthrough(),
});
export type RelayedEvent = z.infer<typeof RelayedEvent>;

export const LedgerPostPayload = z.object({ events: z.array(RelayedEvent).min(1).max(10_000) });

const PostedRow = z.object({ transactionId: z.string(), kind: z.string(), journalId: z.bigint().nullable(), posted: z.boolean() });
export type PostedRow = z.infer<typeof PostedRow>;

export function toLedgerEvent(event: RelayedEvent, source = `balance-outbox:${event.outboxId}`) {
  if (event.payload.transactionId !== event.transactionId) {
    throw new Error(`outbox ${event.outboxId}: payload transactionId differs from the row's`);
  }
  return {
    source,
    transactionId: event.transactionId,
    kind: LEDGER_KIND_BY_TOPIC[event.topic],
    accountId: event.payload.accountId,
    currency: event.payload.currency,
    amountMinor: event.payload.amountMinor,
  };
}

/** `origin` names where the events come from when it is not the relayed Balance outbox (recovery). */
export async function postLedgerEvents(
  ledger: CommonQueryMethods,
  events: readonly RelayedEvent[],
  origin?: string,
): Promise<readonly PostedRow[]> {
  const ledgerEvents = events.map((event) => toLedgerEvent(event, origin ? `${origin}:${event.transactionId}` : undefined));
  return ledger.any(sql.type(PostedRow)`
    select transaction_id as "transactionId", kind, journal_id as "journalId", posted
      from ledger_post(${sql.jsonb(ledgerEvents)})`);
}

export async function holdRecorded(ledger: CommonQueryMethods, transactionId: string): Promise<boolean> {
  return ledger.exists(sql.unsafe`
    select 1 from journal_transactions where transaction_id = ${transactionId} and kind = 'hold'`);
}

/** Which of these transactions have their hold recorded, in one query. */
export async function holdsRecorded(ledger: CommonQueryMethods, transactionIds: readonly string[]): Promise<ReadonlySet<string>> {
  if (transactionIds.length === 0) return new Set();
  const rows = await ledger.anyFirst(sql.type(z.object({ transactionId: z.string() }))`
    select transaction_id as "transactionId" from journal_transactions
     where kind = 'hold' and transaction_id = any(${sql.array([...transactionIds], 'uuid')})`);
  return new Set(rows);
}
