// One settlement import: the statement of a day, from the provider (through the adapter) or from a
// file finance downloaded, stored idempotently, then matched (reconcile/settlementMatch.ts). The
// command line (settlementMain.ts) and the worker's daily cron (jobs/tasks.ts) both run this.
import type { Config } from '../app/config.ts';
import type { Databases } from '../app/db/pools.ts';
import type { PspAdapter } from '../app/gateway/pspAdapter.ts';
import type { Logger } from '../app/logger.ts';
import { matchSettlements, type SettlementMatchSummary } from './settlementMatch.ts';
import { importStatement, parseStatement, type ImportOutcome, type StatementSource } from './settlementStatement.ts';

const DAY_MS = 86_400_000;

/** The provider could not give the statement now (timeout, 5xx): nothing was stored; try again. */
export class StatementUnavailableError extends Error {
  override readonly name = 'StatementUnavailableError';
}

/** A statement is final only once its day is over (UTC): today's and later days are refused. */
export function assertDayIsOver(date: string, now: Date = new Date()): void {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(date) || Number.isNaN(Date.parse(`${date}T00:00:00Z`))) {
    throw new RangeError(`--date ${JSON.stringify(date)} must be a date, YYYY-MM-DD`);
  }
  if (Date.parse(`${date}T00:00:00Z`) + DAY_MS > now.getTime()) {
    throw new RangeError(`the statement of ${date} is not final before that day is over (UTC)`);
  }
}

/** The UTC day before `at`, YYYY-MM-DD. */
export function dayBefore(at: Date): string {
  return new Date(at.getTime() - DAY_MS).toISOString().slice(0, 10);
}

export type SettlementImportResult = Readonly<{ outcome: ImportOutcome; match: SettlementMatchSummary | null }>;

export async function importAndMatch(deps: {
  databases: Databases;
  reads?: Databases;
  config: Config;
  logger: Logger;
  statement: Readonly<{ csv: string; date: string | null }>;
  source: StatementSource;
  replace: boolean;
}): Promise<SettlementImportResult> {
  const parsed = parseStatement(deps.statement.csv, deps.statement.date);
  const outcome = await importStatement(deps.databases.balance, parsed, deps.source, { replace: deps.replace });
  deps.logger.info({ ...outcome, statementId: outcome.statementId.toString() }, 'settlement statement import');
  // the same statement again changes nothing, not even the breaks' last-seen times (settlement:match re-matches)
  if (outcome.kind === 'conflicting' || outcome.kind === 'unchanged') return { outcome, match: null };
  const match = await matchSettlements({
    primary: deps.databases,
    ...(deps.reads ? { reads: deps.reads } : {}),
    from: parsed.date,
    to: parsed.date,
    settleMs: deps.config.reconcile.settleMs,
    replicaWaitMs: deps.config.database.replicaWaitMs,
    logger: deps.logger,
  });
  return { outcome, match };
}

/** The statement of `date` from the provider, then importAndMatch. */
export async function importFromProvider(
  deps: Omit<Parameters<typeof importAndMatch>[0], 'statement' | 'source'> & {
    psp: PspAdapter;
    date: string;
    importedBy: string;
    /** the clock seam: the day must be over at this instant (default now) */
    now?: Date;
  },
): Promise<SettlementImportResult> {
  assertDayIsOver(deps.date, deps.now);
  const fetched = await deps.psp.getSettlementStatement(deps.date);
  if (fetched.kind !== 'found') throw new StatementUnavailableError(`the provider's statement of ${deps.date}: ${fetched.reason}`);
  return importAndMatch({
    ...deps,
    statement: { csv: fetched.csv, date: deps.date },
    source: { kind: 'provider', name: `GET /settlements?date=${deps.date}`, importedBy: deps.importedBy },
  });
}
