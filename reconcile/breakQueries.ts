// Reading, recording and resolving reconciliation breaks (the table lives in the Balance DB).
import { sql, type CommonQueryMethods, type DatabasePool } from 'slonik';
import { z } from 'zod';

export const BREAK_AGE_BUCKETS = ['<1h', '1h-24h', '1d-7d', '>7d'] as const;

const BreakAgeRow = z.object({ category: z.string(), ageBucket: z.enum(BREAK_AGE_BUCKETS), count: z.number() });

export async function openBreaksByAge(db: CommonQueryMethods) {
  return db.any(sql.type(BreakAgeRow)`
    select category,
           case when first_seen_at > now() - interval '1 hour' then '<1h'
                when first_seen_at > now() - interval '1 day' then '1h-24h'
                when first_seen_at > now() - interval '7 days' then '1d-7d'
                else '>7d' end as "ageBucket",
           count(*)::int as count
      from reconciliation_breaks where resolved_at is null group by 1, 2`);
}

/** The categories reconciliation owns: a run resolves the open breaks of these it no longer sees. */
export const RUN_CATEGORIES = [
  'account_balance_split', // I1
  'account_reserved_mismatch', // I2: reserved vs held reservations (and open orders, --full)
  'account_balance_mismatch', // I3 (--full: a sum over the account's whole history)
  'order_reservation_mismatch', // an order's reservation vs its status (held while open, then captured or released)
  'journal_unbalanced', // I4
  'ledger_account_projection', // I4: running balance vs its entries
  'wallet_mismatch', // I5: ledger wallet vs available, for accounts at rest
  'ledger_journals_mismatch', // I5: an order's journals vs its status
  'ledger_deposit_missing', // I5: a credit without its deposit journal
  'provider_not_paid', // we say success, the provider does not say paid
  'provider_paid_not_recorded', // the provider says paid, we say failed
  'provider_not_final', // we say failed (money released), the provider still says pending
  'provider_unanswered', // the provider could not answer about a final order, RECONCILE_PROVIDER_UNKNOWN_MAX times
] as const;
export type RunCategory = (typeof RUN_CATEGORIES)[number];

export type Finding = Readonly<{
  category: RunCategory;
  subject: string;
  orderId?: string | null;
  accountId?: string | null;
  transactionId?: string | null;
  currency?: string | null;
  expected: string;
  actual: string;
  details?: Record<string, unknown>;
}>;

const SUBJECTS_CHUNK = 5_000;

/**
 * Upserts the findings as open breaks, and resolves the open breaks of each category that the run
 * checked on a subject and no longer found broken there. Only subjects the run really looked at
 * may be cleared: a subject it skipped (it moved meanwhile, the provider could not answer) is left
 * out of `checked`, and its break stays open.
 */
export async function recordFindings(
  balance: DatabasePool,
  source: string,
  findings: readonly Finding[],
  checked: ReadonlyMap<RunCategory, readonly string[]>,
): Promise<number> {
  return balance.transaction(async (tx) => {
    for (const f of findings) {
      await tx.query(sql.unsafe`
        select reconciliation_record_break(${f.category}, ${f.subject}, ${f.orderId ?? null}, ${f.accountId ?? null},
          ${f.transactionId ?? null}, ${f.currency ?? null}, ${f.expected}, ${f.actual},
          ${sql.jsonb({ ...(f.details ?? {}), runId: source } as Parameters<typeof sql.jsonb>[0])})`);
    }
    let resolved = 0;
    for (const [category, subjects] of checked) {
      const stillBroken = findings.filter((f) => f.category === category).map((f) => f.subject);
      for (let i = 0; i < subjects.length; i += SUBJECTS_CHUNK) {
        const chunk = subjects.slice(i, i + SUBJECTS_CHUNK);
        const rows = await tx.any(sql.type(z.object({ id: z.bigint() }))`
          update reconciliation_breaks set resolved_at = now(), resolution = ${`cleared: not observed by reconciliation run ${source}`}
           where resolved_at is null and category = ${category}
             and subject = any(${sql.array([...chunk], 'text')}) and not (subject = any(${sql.array(stillBroken, 'text')}))
          returning id`);
        resolved += rows.length;
      }
    }
    return resolved;
  });
}
