// Three-way matching of the provider's settlement statements with our orders and our ledger.
//
// For the statements of the days [from, to] (UTC dates), every reference on them is judged with
// all of its lines on every current statement, its order (reference = the order's transactionId)
// and the order's ledger journals; and every order paid in those days is looked for on the
// statements of the days its payout can have settled. What disagrees becomes a break in
// reconciliation_breaks (aged: first/last seen), what no longer disagrees is cleared, and a break
// an operator resolved with a note is not raised again for the same finding. docs/reports.md says
// how each break is decided.
//
// Reads may go to replicas (`reads`); breaks are written on the primary (`primary`). Before reading,
// the replicas must have replayed what the primaries had committed when the run started (the
// statement just imported included), so a lagging replica fails the run instead of inventing breaks.
import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import type { Databases } from '../app/db/pools.ts';
import { primaryPosition, waitForReplay } from '../app/db/replicas.ts';
import type { Logger } from '../app/logger.ts';

export const SETTLEMENT_CATEGORIES = [
  'settlement_missing', // our order is paid; no statement of the days it can have settled has it
  'settlement_extra', // a statement line that is no order of ours
  'settlement_duplicated', // a reference paid (or reversed) on more than one line
  'settlement_amount_mismatch', // the line's amount is not the order's
  'settlement_currency_mismatch', // the line's currency is not the order's
  'settlement_status_mismatch', // paid on the statement, failed here; or reversed there, success here
  'settlement_ledger_mismatch', // the statement and the order agree, the ledger lacks the journal
] as const;
export type SettlementCategory = (typeof SETTLEMENT_CATEGORIES)[number];

/** The provider settles between our submission and our recording of the outcome; clocks differ by up to this. */
export const SETTLEMENT_CLOCK_SKEW_MS = 5 * 60_000;
/** An order paid this long after its provider settled is judged when its own day is matched, not earlier days. */
const SETTLEMENT_LOOKAHEAD_DAYS = 7;
const DAY_MS = 86_400_000;
const CHUNK = 5_000;

export type SettlementFinding = Readonly<{
  category: SettlementCategory;
  subject: string;
  orderId: string | null;
  accountId: string | null;
  transactionId: string | null;
  currency: string | null;
  expected: string;
  actual: string;
  details: Record<string, unknown>;
}>;

export type SettlementMatchSummary = Readonly<{
  from: string;
  to: string;
  references: number;
  ordersLookedFor: number;
  /** paid orders not judged yet: a day they can have settled on has no statement yet */
  ordersPending: number;
  findings: readonly SettlementFinding[];
  breaksResolved: number;
}>;

const LineRow = z.object({
  reference: z.string(),
  statementDate: z.string(),
  lineNumber: z.number(),
  amountMinor: z.bigint(),
  amount: z.string(),
  currency: z.string(),
  status: z.enum(['paid', 'reversed']),
  orderId: z.string().nullable(),
  transactionId: z.string().nullable(),
  accountId: z.string().nullable(),
  orderCurrency: z.string().nullable(),
  orderAmountMinor: z.bigint().nullable(),
  orderStatus: z.string().nullable(),
  orderUpdatedAt: z.number().nullable(),
});
type Line = z.infer<typeof LineRow>;

const PaidOrderRow = z.object({
  orderId: z.string(),
  transactionId: z.string(),
  accountId: z.string(),
  currency: z.string(),
  amountMinor: z.bigint(),
  firstDay: z.string(),
  lastDay: z.string(),
  onStatement: z.boolean(),
});

const UUID = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';

/** Every current line of every reference that appears on the statements of [from, to], with its order. */
async function linesOf(balance: DatabasePool, from: string, to: string): Promise<Line[]> {
  return balance.transaction(async (tx) => {
    await tx.query(sql.unsafe`set transaction isolation level repeatable read, read only`);
    return [
      ...(await tx.any(sql.type(LineRow)`
      with refs as (
        select distinct l.reference from settlement_lines l join settlement_statements s on s.id = l.statement_id
         where s.state = 'current' and s.statement_date between ${from}::date and ${to}::date
      )
      select l.reference, s.statement_date::text as "statementDate", l.line_number as "lineNumber",
             l.amount_minor as "amountMinor", l.amount, l.currency, l.status,
             o.id as "orderId", o.transaction_id as "transactionId", o.account_id as "accountId", o.currency as "orderCurrency",
             o.amount_minor as "orderAmountMinor", o.status as "orderStatus", o.updated_at as "orderUpdatedAt"
        from refs r
        join settlement_lines l on l.reference = r.reference
        join settlement_statements s on s.id = l.statement_id and s.state = 'current'
        left join withdraw_orders o on o.transaction_id = (case when r.reference ~ ${UUID} then r.reference::uuid end)
       order by l.reference, s.statement_date, l.line_number`)),
    ];
  });
}

/** Paid orders whose payout can have settled on a day of [from, to], with whether a paid line has them. */
async function paidOrders(balance: DatabasePool, from: string, to: string, until: Date) {
  return balance.transaction(async (tx) => {
    await tx.query(sql.unsafe`set transaction isolation level repeatable read, read only`);
    const skew = `${SETTLEMENT_CLOCK_SKEW_MS / 1000} seconds`;
    const orders = await tx.any(sql.type(PaidOrderRow)`
      select o.id as "orderId", o.transaction_id as "transactionId", o.account_id as "accountId", o.currency,
             o.amount_minor as "amountMinor",
             ((o.created_at - ${skew}::interval) at time zone 'UTC')::date::text as "firstDay",
             ((o.updated_at + ${skew}::interval) at time zone 'UTC')::date::text as "lastDay",
             exists (select 1 from settlement_lines l join settlement_statements s on s.id = l.statement_id and s.state = 'current'
                      where l.reference = o.transaction_id::text and l.status = 'paid') as "onStatement"
        from withdraw_orders o
       where o.status = 'success'
         and o.updated_at >= ${instant(from, 0, -SETTLEMENT_CLOCK_SKEW_MS)}::timestamptz
         and o.updated_at < ${instant(to, 1 + SETTLEMENT_LOOKAHEAD_DAYS, 0)}::timestamptz
         and o.created_at < ${instant(to, 1, SETTLEMENT_CLOCK_SKEW_MS)}::timestamptz
         and o.updated_at <= ${until.toISOString()}::timestamptz`);
    const days =
      orders.length === 0
        ? []
        : await tx.anyFirst(sql.type(z.object({ day: z.string() }))`
      select statement_date::text as day from settlement_statements
       where state = 'current' and statement_date between ${minOf(orders.map((o) => o.firstDay))}::date and ${maxOf(orders.map((o) => o.lastDay))}::date`);
    return { orders, days: new Set(days) };
  });
}

/** Midnight UTC of `day` plus whole days and milliseconds, as ISO. */
const instant = (day: string, days: number, ms: number) => new Date(Date.parse(`${day}T00:00:00Z`) + days * DAY_MS + ms).toISOString();
/** The first and last of YYYY-MM-DD days (text order is day order). */
const minOf = (values: readonly string[]) => [...values].sort()[0]!;
const maxOf = (values: readonly string[]) => [...values].sort().at(-1)!;

function everyDayImported(firstDay: string, lastDay: string, days: ReadonlySet<string>): boolean {
  for (let t = Date.parse(`${firstDay}T00:00:00Z`); t <= Date.parse(`${lastDay}T00:00:00Z`); t += DAY_MS) {
    if (!days.has(new Date(t).toISOString().slice(0, 10))) return false;
  }
  return true;
}

const JournalRow = z.object({ transactionId: z.string(), kind: z.string(), journalId: z.bigint(), amountMinor: z.bigint() });

async function journalsOf(ledger: DatabasePool, transactionIds: readonly string[]) {
  const byTx = new Map<string, Map<string, { journalId: bigint; amountMinor: bigint }>>();
  for (let i = 0; i < transactionIds.length; i += CHUNK) {
    const rows = await ledger.any(sql.type(JournalRow)`
      select j.transaction_id as "transactionId", j.kind, j.id as "journalId",
             (select sum(abs(e.amount_minor)) / 2 from entries e where e.journal_id = j.id)::bigint as "amountMinor"
        from journal_transactions j
       where j.transaction_id = any(${sql.array(transactionIds.slice(i, i + CHUNK), 'uuid')}) and j.kind in ('settle', 'reverse')`);
    for (const row of rows) {
      const kinds = byTx.get(row.transactionId) ?? new Map();
      kinds.set(row.kind, { journalId: row.journalId, amountMinor: row.amountMinor });
      byTx.set(row.transactionId, kinds);
    }
  }
  return byTx;
}

const describeLines = (lines: readonly Line[]) =>
  lines.map((l) => `${l.status} ${l.amount} ${l.currency} on ${l.statementDate}#${l.lineNumber}`).join('; ');

/** The findings of one reference: its lines (every current statement) against its order. */
function referenceFindings(
  lines: readonly Line[],
  until: Date,
): { findings: SettlementFinding[]; ledgerCheck: 'settle' | 'reverse' | null } {
  const first = lines[0]!;
  const base = {
    subject: `settlement:${first.reference}`,
    orderId: first.orderId,
    accountId: first.accountId,
    transactionId: first.transactionId,
    currency: first.orderCurrency ?? first.currency,
    details: {
      reference: first.reference,
      lines: lines.map((l) => ({ date: l.statementDate, line: l.lineNumber, status: l.status, amount: l.amount, currency: l.currency })),
    },
  };
  const findings: SettlementFinding[] = [];
  const paid = lines.filter((l) => l.status === 'paid');
  const reversed = lines.filter((l) => l.status === 'reversed');
  if (paid.length > 1 || reversed.length > 1) {
    findings.push({
      ...base,
      category: 'settlement_duplicated',
      expected: 'one paid line (and at most one reversed line)',
      actual: describeLines(lines),
    });
  }
  if (first.orderId === null) {
    findings.push({
      ...base,
      category: 'settlement_extra',
      expected: 'an order with this transaction id',
      actual: `no order; ${describeLines(lines)}`,
    });
    return { findings, ledgerCheck: null };
  }
  const wrongCurrency = lines.filter((l) => l.currency !== first.orderCurrency);
  if (wrongCurrency.length > 0) {
    findings.push({
      ...base,
      category: 'settlement_currency_mismatch',
      expected: `${first.orderCurrency}`,
      actual: describeLines(wrongCurrency),
    });
  }
  const wrongAmount = lines.filter((l) => l.currency === first.orderCurrency && l.amountMinor !== first.orderAmountMinor);
  if (wrongAmount.length > 0) {
    findings.push({
      ...base,
      category: 'settlement_amount_mismatch',
      expected: `${first.orderAmountMinor} minor units (the order)`,
      actual: wrongAmount.map((l) => `${l.amountMinor} minor units, ${l.status} on ${l.statementDate}#${l.lineNumber}`).join('; '),
    });
  }
  const settledHere = first.orderUpdatedAt !== null && first.orderUpdatedAt <= until.getTime();
  if (first.orderStatus === 'success' && reversed.length > 0) {
    findings.push({
      ...base,
      category: 'settlement_status_mismatch',
      expected: 'paid (the order is success)',
      actual: describeLines(reversed),
    });
    return { findings, ledgerCheck: null };
  }
  if (first.orderStatus === 'failed' && paid.length > 0 && reversed.length === 0) {
    findings.push({
      ...base,
      category: 'settlement_status_mismatch',
      expected: 'not paid (the order is failed)',
      actual: describeLines(paid),
    });
    return { findings, ledgerCheck: null };
  }
  if (!settledHere) return { findings, ledgerCheck: null };
  if (first.orderStatus === 'success' && paid.length > 0) return { findings, ledgerCheck: 'settle' };
  if (first.orderStatus === 'failed' && reversed.length > 0) return { findings, ledgerCheck: 'reverse' };
  return { findings, ledgerCheck: null };
}

async function lineFindings(reads: Databases, from: string, to: string, until: Date) {
  const lines = await linesOf(reads.balance, from, to);
  const byReference = new Map<string, Line[]>();
  for (const line of lines) byReference.set(line.reference, [...(byReference.get(line.reference) ?? []), line]);
  const findings: SettlementFinding[] = [];
  const ledgerChecks: Array<{ lines: Line[]; kind: 'settle' | 'reverse' }> = [];
  for (const group of byReference.values()) {
    const judged = referenceFindings(group, until);
    findings.push(...judged.findings);
    if (judged.ledgerCheck) ledgerChecks.push({ lines: group, kind: judged.ledgerCheck });
  }
  const journals = await journalsOf(
    reads.ledger,
    ledgerChecks.map((c) => c.lines[0]!.transactionId!),
  );
  for (const { lines: group, kind } of ledgerChecks) {
    const first = group[0]!;
    const journal = journals.get(first.transactionId!)?.get(kind);
    if (journal === undefined || journal.amountMinor !== first.orderAmountMinor) {
      findings.push({
        category: 'settlement_ledger_mismatch',
        subject: `settlement:${first.reference}`,
        orderId: first.orderId,
        accountId: first.accountId,
        transactionId: first.transactionId,
        currency: first.orderCurrency,
        expected: `a ${kind} journal of ${first.orderAmountMinor} minor units`,
        actual: journal === undefined ? `no ${kind} journal` : `${kind} journal ${journal.journalId} of ${journal.amountMinor}`,
        details: { reference: first.reference, lines: group.map((l) => ({ date: l.statementDate, line: l.lineNumber, status: l.status })) },
      });
    }
  }
  return { findings, subjects: [...byReference.keys()].map((reference) => `settlement:${reference}`) };
}

async function missingFindings(reads: Databases, from: string, to: string, until: Date) {
  const { orders, days } = await paidOrders(reads.balance, from, to, until);
  const judged = orders.filter((o) => everyDayImported(o.firstDay, o.lastDay, days));
  const findings: SettlementFinding[] = judged
    .filter((o) => !o.onStatement)
    .map((o) => ({
      category: 'settlement_missing' as const,
      subject: `order:${o.orderId}`,
      orderId: o.orderId,
      accountId: o.accountId,
      transactionId: o.transactionId,
      currency: o.currency,
      expected: `a paid line on a statement of ${o.firstDay === o.lastDay ? o.firstDay : `${o.firstDay}..${o.lastDay}`}`,
      actual: 'no paid line on any statement',
      details: { firstDay: o.firstDay, lastDay: o.lastDay, amountMinor: o.amountMinor.toString() },
    }));
  return { findings, subjects: judged.map((o) => `order:${o.orderId}`), pending: orders.length - judged.length, lookedFor: orders.length };
}

const ResolvedRow = z.object({ category: z.string(), subject: z.string(), expected: z.string().nullable(), actual: z.string().nullable() });

/**
 * Upserts the findings on the primary and clears the open breaks of the subjects checked that no
 * longer disagree. A finding that an operator already resolved (a note, not a clearing by a run)
 * with the same expected and actual is not raised again.
 */
async function recordSettlementFindings(
  balance: DatabasePool,
  findings: readonly SettlementFinding[],
  checked: ReadonlyMap<SettlementCategory, readonly string[]>,
  label: string,
): Promise<{ recorded: SettlementFinding[]; resolved: number }> {
  return balance.transaction(async (tx) => {
    const subjects = [...new Set(findings.map((f) => f.subject))];
    const resolvedByOperator = new Set<string>();
    for (let i = 0; i < subjects.length; i += CHUNK) {
      const rows = await tx.any(sql.type(ResolvedRow)`
        select category, subject, expected, actual from reconciliation_breaks
         where resolved_at is not null and resolution not like 'cleared:%'
           and category = any(${sql.array([...SETTLEMENT_CATEGORIES], 'text')}) and subject = any(${sql.array(subjects.slice(i, i + CHUNK), 'text')})`);
      for (const row of rows) resolvedByOperator.add(`${row.category}\u0000${row.subject}\u0000${row.expected}\u0000${row.actual}`);
    }
    const recorded = findings.filter((f) => !resolvedByOperator.has(`${f.category}\u0000${f.subject}\u0000${f.expected}\u0000${f.actual}`));
    for (const f of recorded) {
      await tx.query(sql.unsafe`
        select reconciliation_record_break(${f.category}, ${f.subject}, ${f.orderId}, ${f.accountId}, ${f.transactionId},
          ${f.currency}, ${f.expected}, ${f.actual}, ${sql.jsonb({ ...f.details, matchedBy: label } as Parameters<typeof sql.jsonb>[0])})`);
    }
    let resolved = 0;
    for (const [category, checkedSubjects] of checked) {
      const stillBroken = findings.filter((f) => f.category === category).map((f) => f.subject);
      for (let i = 0; i < checkedSubjects.length; i += CHUNK) {
        const rows = await tx.anyFirst(sql.type(z.object({ id: z.bigint() }))`
          update reconciliation_breaks set resolved_at = now(), resolution = ${`cleared: not observed by ${label}`}
           where resolved_at is null and category = ${category}
             and subject = any(${sql.array([...checkedSubjects.slice(i, i + CHUNK)], 'text')})
             and not (subject = any(${sql.array(stillBroken, 'text')}))
          returning id`);
        resolved += rows.length;
      }
    }
    return { recorded, resolved };
  });
}

/** Matches the statements of the UTC days [from, to] (YYYY-MM-DD) and records the breaks. */
export async function matchSettlements(deps: {
  primary: Databases;
  reads?: Databases;
  from: string;
  to: string;
  settleMs: number;
  replicaWaitMs: number;
  logger: Logger;
}): Promise<SettlementMatchSummary> {
  const { primary, from, to } = deps;
  const reads = deps.reads ?? primary;
  const until = new Date(
    await primary.balance.oneFirst(sql.type(z.object({ until: z.number() }))`
      select now() - make_interval(secs => ${deps.settleMs / 1000}) as until`),
  );
  if (reads !== primary) {
    // the consistent point: everything the primaries had committed by now, the imported statement included
    const [balanceAt, ledgerAt] = await Promise.all([primaryPosition(primary.balance), primaryPosition(primary.ledger)]);
    await waitForReplay(reads.balance, balanceAt, deps.replicaWaitMs, 'settlement matching (Balance DB)');
    await waitForReplay(reads.ledger, ledgerAt, deps.replicaWaitMs, 'settlement matching (Ledger DB)');
  }
  const lines = await lineFindings(reads, from, to, until);
  const missing = await missingFindings(reads, from, to, until);
  const findings = [...lines.findings, ...missing.findings];
  const checked = new Map<SettlementCategory, readonly string[]>([
    ...SETTLEMENT_CATEGORIES.filter((c) => c !== 'settlement_missing').map((c) => [c, lines.subjects] as const),
    ['settlement_missing', missing.subjects],
  ]);
  const label = `settlement matching of ${from === to ? from : `${from}..${to}`}`;
  const { recorded, resolved } = await recordSettlementFindings(primary.balance, findings, checked, label);
  if (recorded.length > 0) deps.logger.warn({ from, to, breaks: recorded.length }, 'settlement matching found breaks');
  return {
    from,
    to,
    references: lines.subjects.length,
    ordersLookedFor: missing.lookedFor,
    ordersPending: missing.pending,
    findings: recorded,
    breaksResolved: resolved,
  };
}
