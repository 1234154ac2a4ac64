// Reads that go to a streaming replica (BALANCE_REPORTS_DATABASE_URL, LEDGER_REPORTS_DATABASE_URL):
// how far behind its primary it is, and waiting until it has replayed what the primary had
// committed at a given moment (the consistent point reconciliation compares against).
import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { createDatabasePool, type Databases, type PoolOptions } from './pools.ts';

/** How often a wait asks the replica how far it has replayed. */
const REPLAY_POLL_MS = 50;

export class ReplicaLagError extends Error {
  override readonly name = 'ReplicaLagError';
}

/**
 * The primary's WAL position now: whatever committed before this call is at or before it. The
 * insert position, not the write position: with synchronous_commit off a commit returns before its
 * WAL is written out, and must still count as committed.
 */
export async function primaryPosition(primary: DatabasePool): Promise<string> {
  return primary.oneFirst(sql.type(z.object({ lsn: z.string() }))`select pg_current_wal_insert_lsn()::text as lsn`);
}

const ReplayRow = z.object({ recovery: z.boolean(), caughtUp: z.boolean() });

/**
 * Waits until `reads` has replayed the primary's WAL up to `position` (immediately when `reads` is
 * not a standby: the primary itself). Throws ReplicaLagError after timeoutMs: a replica that far
 * behind must not be read as if it were current.
 */
export async function waitForReplay(reads: DatabasePool, position: string, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const row = await reads.one(sql.type(ReplayRow)`
      select pg_is_in_recovery() as recovery,
             coalesce(pg_last_wal_replay_lsn() >= ${position}::pg_lsn, false) as "caughtUp"`);
    if (!row.recovery || row.caughtUp) return;
    if (Date.now() >= deadline) {
      throw new ReplicaLagError(`${what}: the replica has not replayed the primary's ${position} within ${timeoutMs} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, REPLAY_POLL_MS));
  }
}

export type ReplicaStaleness = Readonly<
  | { kind: 'primary' }
  | { kind: 'current' }
  /** behind the primary; what it shows is at most lagMs old (its last replayed commit), null when unknown */
  | { kind: 'behind'; lagMs: number | null; replayedCommitAt: string | null; paused: boolean }
>;

const LagRow = z.object({
  recovery: z.boolean(),
  caughtUp: z.boolean(),
  lagMs: z.number().nullable(),
  replayedCommitAt: z.string().nullable(),
  paused: z.boolean(),
});

/**
 * How stale `reads` is compared with `primary`: caught up with the primary's position now (after a
 * short grace for WAL in flight), or behind with a bound on the age of what it shows.
 */
export async function replicaStaleness(primary: DatabasePool, reads: DatabasePool, graceMs: number): Promise<ReplicaStaleness> {
  const position = await primaryPosition(primary);
  try {
    await waitForReplay(reads, position, graceMs, 'staleness');
  } catch (error) {
    if (!(error instanceof ReplicaLagError)) throw error;
  }
  const row = await reads.one(sql.type(LagRow)`
    select pg_is_in_recovery() as recovery,
           coalesce(pg_last_wal_replay_lsn() >= ${position}::pg_lsn, false) as "caughtUp",
           (extract(epoch from clock_timestamp() - pg_last_xact_replay_timestamp()) * 1000)::float8 as "lagMs",
           to_char(pg_last_xact_replay_timestamp() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as "replayedCommitAt",
           case when pg_is_in_recovery() then pg_is_wal_replay_paused() else false end as paused`);
  if (!row.recovery) return { kind: 'primary' };
  if (row.caughtUp) return { kind: 'current' };
  return {
    kind: 'behind',
    lagMs: row.lagMs === null ? null : Math.max(0, Math.round(row.lagMs)),
    replayedCommitAt: row.replayedCommitAt,
    paused: row.paused,
  };
}

export function describeStaleness(database: string, staleness: ReplicaStaleness): string {
  switch (staleness.kind) {
    case 'primary':
      return `${database}: read from the primary`;
    case 'current':
      return `${database}: read from a replica, up to date with the primary`;
    case 'behind':
      return (
        `${database}: read from a replica that is behind the primary` +
        (staleness.lagMs === null ? ' by an unknown time' : `: what it shows is at most ${(staleness.lagMs / 1000).toFixed(1)} s old`) +
        (staleness.replayedCommitAt ? ` (last replayed commit ${staleness.replayedCommitAt})` : '') +
        (staleness.paused ? '; its replay is paused' : '')
      );
  }
}

/**
 * The pools reads go to: a pool on each replica URL that is set, the primary's pool otherwise.
 * `end` closes only the pools opened here.
 */
export async function openReadDatabases(
  urls: Readonly<{ balance: string | undefined; ledger: string | undefined }>,
  primary: Databases,
  options: Omit<PoolOptions, 'sessionRole'>,
): Promise<{ reads: Databases; replicated: { balance: boolean; ledger: boolean }; end: () => Promise<void> }> {
  const [balance, ledger] = await Promise.all([
    urls.balance ? createDatabasePool(urls.balance, options) : null,
    urls.ledger ? createDatabasePool(urls.ledger, options) : null,
  ]);
  return {
    reads: { balance: balance ?? primary.balance, ledger: ledger ?? primary.ledger },
    replicated: { balance: balance !== null, ledger: ledger !== null },
    end: async () => {
      await Promise.allSettled([balance?.end(), ledger?.end()]);
    },
  };
}

/** A replica too far behind for the bound: nothing is read from it. */
export class ReplicaTooStaleError extends Error {
  override readonly name = 'ReplicaTooStaleError';
}

/**
 * For reads from replicas: each replicated database's staleness, described; throws
 * ReplicaTooStaleError when one may be older than lagMaxMs (or by an unknown time).
 */
export async function checkReplicas(
  primary: Databases,
  reads: Databases,
  databases: ReadonlyArray<'balance' | 'ledger'>,
  options: Readonly<{ lagMaxMs: number; graceMs: number }>,
): Promise<string[]> {
  const notes: string[] = [];
  for (const database of databases) {
    if (reads[database] === primary[database]) continue;
    const staleness = await replicaStaleness(primary[database], reads[database], options.graceMs);
    const note = describeStaleness(database, staleness);
    if (staleness.kind === 'behind' && (staleness.lagMs === null || staleness.lagMs > options.lagMaxMs)) {
      throw new ReplicaTooStaleError(`${note}; refused: more than REPORTS_REPLICA_LAG_MAX_MS=${options.lagMaxMs} ms`);
    }
    notes.push(note);
  }
  return notes;
}
