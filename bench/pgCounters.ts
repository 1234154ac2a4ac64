// What PostgreSQL did over a window, per database: WAL (pg_current_wal_lsn for the cluster,
// pg_stat_statements' wal_bytes per database), statements (pg_stat_statements, top level = round
// trips, nested = statements run inside functions and triggers), transactions and rows written
// (pg_stat_database, pg_stat_user_tables per table), and a sampler of lock waits by client.
import pg from 'pg';

export type DatabaseName = 'balance' | 'ledger';

type StatementRow = {
  db: string;
  queryid: string;
  toplevel: boolean;
  query: string;
  calls: number;
  ms: number;
  walBytes: number;
  rows: number;
};
type TableRow = { relname: string; written: number; hot: number };

export type CountersSnapshot = Readonly<{
  walLsnBytes: number;
  statements: ReadonlyMap<string, StatementRow>;
  databases: ReadonlyMap<string, { commits: number; written: number }>;
  tables: ReadonlyMap<string, TableRow>;
}>;

export type CountersWindow = Readonly<{
  walBytes: Readonly<{ cluster: number; balance: number; ledger: number }>;
  statements: Readonly<Record<DatabaseName, { topLevel: number; nested: number }>>;
  transactions: Readonly<Record<DatabaseName, number>>;
  rowsWritten: Readonly<Record<DatabaseName, number>>;
  /** rows inserted + updated + deleted per table ("balance.outbox"), largest first */
  rowsWrittenByTable: Readonly<Record<string, number>>;
  /** top-level statements by time spent, for the profile */
  topStatements: ReadonlyArray<{ db: string; query: string; calls: number; totalMs: number; walBytes: number }>;
}>;

export function createCounters(deps: {
  admin: pg.Client;
  clients: Readonly<Record<DatabaseName, pg.Client>>;
  dbNames: Readonly<Record<DatabaseName, string>>;
}) {
  async function snapshot(): Promise<CountersSnapshot> {
    const { admin } = deps;
    const lsn = await admin.query<{ b: string }>(`select pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::text as b`);
    const statementRows = await admin.query<StatementRow>(
      `
      select d.datname as db, s.queryid::text, s.toplevel, left(s.query, 160) as query, s.calls::float8 as calls,
             s.total_exec_time::float8 as ms, s.wal_bytes::float8 as "walBytes", s.rows::float8 as rows
        from pg_stat_statements s join pg_database d on d.oid = s.dbid
       where d.datname = any($1::text[])`,
      [Object.values(deps.dbNames)],
    );
    const statements = new Map(statementRows.rows.map((r) => [`${r.db}:${r.queryid}:${r.toplevel}`, r]));
    const dbRows = await admin.query<{ db: string; commits: number; written: number }>(
      `select datname as db, xact_commit::float8 as commits, (tup_inserted + tup_updated + tup_deleted)::float8 as written
         from pg_stat_database where datname = any($1::text[])`,
      [Object.values(deps.dbNames)],
    );
    const databases = new Map(dbRows.rows.map((r) => [r.db, r]));
    const tables = new Map<string, TableRow>();
    for (const [name, client] of Object.entries(deps.clients)) {
      const { rows } = await client.query<TableRow>(`
        select schemaname || '.' || relname as relname, (n_tup_ins + n_tup_upd + n_tup_del)::float8 as written,
               n_tup_hot_upd::float8 as hot
          from pg_stat_user_tables`);
      for (const row of rows) tables.set(`${name}.${row.relname.replace(/^public\./, '')}`, row);
    }
    return { walLsnBytes: Number(lsn.rows[0]!.b), statements, databases, tables };
  }

  function diff(start: CountersSnapshot, end: CountersSnapshot): CountersWindow {
    const dbOf = (name: string): DatabaseName | null =>
      name === deps.dbNames.balance ? 'balance' : name === deps.dbNames.ledger ? 'ledger' : null;
    const statements = { balance: { topLevel: 0, nested: 0 }, ledger: { topLevel: 0, nested: 0 } };
    const walBytes = { cluster: end.walLsnBytes - start.walLsnBytes, balance: 0, ledger: 0 };
    const top: Array<{ db: string; query: string; calls: number; totalMs: number; walBytes: number }> = [];
    for (const [key, row] of end.statements) {
      const before = start.statements.get(key);
      const db = dbOf(row.db);
      if (!db) continue;
      const calls = row.calls - (before?.calls ?? 0);
      if (calls <= 0) continue;
      if (row.toplevel) {
        statements[db].topLevel += calls;
        // nested statements' WAL is already in their top-level statement's
        walBytes[db] += row.walBytes - (before?.walBytes ?? 0);
        top.push({
          db,
          query: row.query.replace(/\s+/g, ' '),
          calls,
          totalMs: row.ms - (before?.ms ?? 0),
          walBytes: row.walBytes - (before?.walBytes ?? 0),
        });
      } else {
        statements[db].nested += calls;
      }
    }
    top.sort((a, b) => b.totalMs - a.totalMs);
    const transactions = { balance: 0, ledger: 0 };
    const rowsWritten = { balance: 0, ledger: 0 };
    for (const [name, row] of end.databases) {
      const db = dbOf(name);
      if (!db) continue;
      const before = start.databases.get(name);
      transactions[db] = row.commits - (before?.commits ?? 0);
      rowsWritten[db] = row.written - (before?.written ?? 0);
    }
    const byTable: Array<[string, number]> = [];
    for (const [name, row] of end.tables) {
      const written = row.written - (start.tables.get(name)?.written ?? 0);
      if (written > 0) byTable.push([name, written]);
    }
    byTable.sort((a, b) => b[1] - a[1]);
    return {
      walBytes,
      statements,
      transactions,
      rowsWritten,
      rowsWrittenByTable: Object.fromEntries(byTable),
      topStatements: top.slice(0, 20),
    };
  }

  return { snapshot, diff };
}

/**
 * Lock waits of each client's backends, sampled: every `everyMs` the backends waiting on a
 * heavyweight lock (row, transaction, advisory: wait_event_type 'Lock') are counted, and each
 * counts for the time since the previous sample.
 */
export function createLockWaitSampler(deps: { url: string; everyMs: number }) {
  const client = new pg.Client({ connectionString: deps.url, application_name: 'withdraw-bench-locks' });
  let running = false;
  let loop: Promise<void> | null = null;
  const totals = new Map<string, number>();
  let samples = 0;

  async function run(): Promise<void> {
    let previous = Date.now();
    while (running) {
      const { rows } = await client.query<{ client: string; event: string; n: number }>(`
        select case when application_name like 'withdraw-web%' then 'web'
                    when application_name like 'withdraw-worker%' or application_name like 'withdraw-listen-worker%' then 'worker'
                    else 'other' end as client,
               wait_event as event, count(*)::int as n
          from pg_stat_activity where wait_event_type = 'Lock' and backend_type = 'client backend'
         group by 1, 2`);
      const now = Date.now();
      const elapsed = now - previous;
      previous = now;
      samples += 1;
      for (const row of rows) {
        const key = `${row.client}:${row.event}`;
        totals.set(key, (totals.get(key) ?? 0) + row.n * elapsed);
      }
      await new Promise((resolve) => setTimeout(resolve, deps.everyMs));
    }
  }

  return {
    start: async () => {
      await client.connect();
      running = true;
      loop = run();
    },
    /** ms of lock waits per client and event since start (`web:transactionid`, …) */
    read: () => ({ samples, waitsMs: Object.fromEntries(totals) }),
    clientMs: (name: string) => [...totals].filter(([key]) => key.startsWith(`${name}:`)).reduce((sum, [, ms]) => sum + ms, 0),
    reset: () => {
      totals.clear();
      samples = 0;
    },
    stop: async () => {
      running = false;
      await loop?.catch(() => {});
      await client.end().catch(() => {});
    },
  };
}
