// Plain-SQL views of the Balance DB for tests: row counts, one account's numbers, and the
// invariants I1 and I2 of docs/architecture, computed independently of the application code.
import type pg from 'pg';

/** A pg client or pool (a pool lets tests that run at once query without queueing on one client). */
export type Queryable = pg.Pool | pg.Client;

export type AccountNumbers = Readonly<{ balance: bigint; available: bigint; reserved: bigint; status: string }>;

export async function accountNumbers(client: Queryable, accountId: string): Promise<AccountNumbers> {
  const { rows } = await client.query<{ balance: string; available: string; reserved: string; status: string }>(
    `select balance_minor::text as balance, available_minor::text as available, reserved_minor::text as reserved, status
       from accounts where id = $1`,
    [accountId],
  );
  const row = rows[0];
  if (!row) throw new Error(`no account ${accountId}`);
  return { balance: BigInt(row.balance), available: BigInt(row.available), reserved: BigInt(row.reserved), status: row.status };
}

export const WRITE_TABLES = ['withdraw_orders', 'reservations', 'withdraw_status_history', 'idempotency_keys', 'outbox'] as const;

/** Row counts of the tables a withdrawal writes to (the outbox also counts credits' events). */
export async function rowCounts(client: Queryable): Promise<Record<(typeof WRITE_TABLES)[number], number>> {
  const counts = {} as Record<(typeof WRITE_TABLES)[number], number>;
  for (const table of WRITE_TABLES) {
    const { rows } = await client.query<{ n: number }>(`select count(*)::int as n from ${table}`);
    counts[table] = rows[0]!.n;
  }
  return counts;
}

export type InvariantBreak = Readonly<{ accountId: string; invariant: 'I1' | 'I2' | 'reservations'; detail: string }>;

/**
 * I1: balance = available + reserved, both parts non-negative.
 * I2: reserved = sum of the account's orders in init, processing, manual.
 * And the held reservations of an account add up to its reserved amount.
 */
export async function invariantBreaks(client: Queryable): Promise<InvariantBreak[]> {
  const { rows } = await client.query<{
    id: string;
    balance: string;
    available: string;
    reserved: string;
    open_orders: string;
    held: string;
  }>(`
    select a.id, a.balance_minor::text as balance, a.available_minor::text as available,
           a.reserved_minor::text as reserved,
           coalesce((select sum(o.amount_minor) from withdraw_orders o
                      where o.account_id = a.id and o.status in ('init', 'processing', 'manual')), 0)::text as open_orders,
           coalesce((select sum(r.amount_minor) from reservations r
                      where r.account_id = a.id and r.status = 'held'), 0)::text as held
      from accounts a order by a.id`);
  const breaks: InvariantBreak[] = [];
  for (const row of rows) {
    const [balance, available, reserved] = [BigInt(row.balance), BigInt(row.available), BigInt(row.reserved)];
    if (balance !== available + reserved || available < 0n || reserved < 0n) {
      breaks.push({ accountId: row.id, invariant: 'I1', detail: `balance ${balance}, available ${available}, reserved ${reserved}` });
    }
    if (reserved !== BigInt(row.open_orders)) {
      breaks.push({ accountId: row.id, invariant: 'I2', detail: `reserved ${reserved}, open orders ${row.open_orders}` });
    }
    if (reserved !== BigInt(row.held)) {
      breaks.push({ accountId: row.id, invariant: 'reservations', detail: `reserved ${reserved}, held reservations ${row.held}` });
    }
  }
  return breaks;
}
