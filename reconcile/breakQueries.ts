// Reading and resolving reconciliation breaks (the table lives in the Balance DB).
import { sql, type CommonQueryMethods } from 'slonik';
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
