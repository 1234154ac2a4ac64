// The two slonik pools. Rows are validated by the zod schema given to sql.type(); int8 comes back
// as bigint (money), timestamps as epoch milliseconds, numeric as an exact string.
import pg from 'pg';
import {
  createPool,
  createTypeParserPreset,
  SchemaValidationError,
  type DatabasePool,
  type Interceptor,
  type QueryResultRow,
} from 'slonik';

export type Databases = Readonly<{ balance: DatabasePool; ledger: DatabasePool }>;

export type PoolOptions = Readonly<{
  poolSizeMax: number;
  statementTimeoutMs: number;
  applicationName: string;
  /**
   * The role every connection runs as (the startup option `-c role=…`), when the login user may
   * assume it; decided once, when the pool is created. Otherwise the pool runs as the login user.
   */
  sessionRole?: string | null;
  /** told when sessionRole cannot be assumed */
  warn?: (message: string) => void;
}>;

const resultParserInterceptor: Interceptor = {
  name: 'result-parser',
  transformRow: (context, query, row) => {
    const { resultParser } = context;
    if (!resultParser) return row;
    const parsed = resultParser.safeParse(row);
    if (!parsed.success) throw new SchemaValidationError(query, row, parsed.error.issues);
    return parsed.data as QueryResultRow;
  },
};

const exactNumericParser = { name: 'numeric', parse: (value: string) => value };

export async function createDatabasePool(url: string, options: PoolOptions): Promise<DatabasePool> {
  const role = options.sessionRole ? await assumableRole(url, options.sessionRole, options.warn ?? (() => {})) : null;
  const connectionUri = withSessionRole(withApplicationName(url, options.applicationName), role);
  return createPool(connectionUri, {
    maximumPoolSize: options.poolSizeMax,
    statementTimeout: options.statementTimeoutMs,
    idleInTransactionSessionTimeout: 60_000,
    connectionTimeout: 10_000,
    idleTimeout: 30_000,
    interceptors: [resultParserInterceptor],
    // capturing a stack trace before every query costs more than the query on the hot path
    captureStackTrace: false,
    typeParsers: [...createTypeParserPreset().filter((parser) => parser.name !== 'numeric'), exactNumericParser],
    // The default resets every released connection with DISCARD ALL: one more round trip per
    // query. We keep no session state, so nothing needs resetting (and a session role, set at
    // connection start, would survive a reset anyway).
    resetConnection: async () => {},
  });
}

/** `ledgerRole`: the Ledger DB pool runs as this role when it may (LEDGER_DB_ROLE, sql/ledger/0004_app_role.sql). */
export async function createDatabases(
  urls: Readonly<{ balanceUrl: string; ledgerUrl: string }>,
  options: Omit<PoolOptions, 'sessionRole'> & Readonly<{ ledgerRole?: string | null }>,
): Promise<Databases> {
  const { ledgerRole, ...common } = options;
  const [balance, ledger] = await Promise.all([
    createDatabasePool(urls.balanceUrl, common),
    createDatabasePool(urls.ledgerUrl, { ...common, sessionRole: ledgerRole ?? null }),
  ]);
  return { balance, ledger };
}

export async function endDatabases(databases: Databases): Promise<void> {
  await Promise.allSettled([databases.balance.end(), databases.ledger.end()]);
}

/**
 * Whether the login user may run as `role`: the role exists and the user is a member allowed to
 * SET it (PostgreSQL 16+ tells membership and SET apart). Assuming a role that fails this check
 * would make every new connection fail, so such a role is not used, and `warn` says why.
 */
async function assumableRole(url: string, role: string, warn: (message: string) => void): Promise<string | null> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  client.on('error', () => {});
  await client.connect();
  try {
    const { rows } = await client.query<{ loginUser: string; member: boolean; canSet: boolean }>(
      `select current_user as "loginUser", pg_has_role(current_user, r.oid, 'MEMBER') as member,
              case when current_setting('server_version_num')::int >= 160000 then pg_has_role(current_user, r.oid, 'SET')
                   else pg_has_role(current_user, r.oid, 'MEMBER') end as "canSet"
         from pg_roles r where r.rolname = $1`,
      [role],
    );
    const found = rows[0];
    if (!found) {
      warn(`role ${role} does not exist: the pool runs as the login user (see sql/ledger/0004_app_role.sql)`);
      return null;
    }
    if (!found.member || !found.canSet) {
      warn(`${found.loginUser} may not SET ROLE ${role}: the pool runs as ${found.loginUser} (grant ${role} to ${found.loginUser})`);
      return null;
    }
    return role;
  } finally {
    await client.end();
  }
}

function withSessionRole(url: string, role: string | null): string {
  if (!role) return url;
  // a plain identifier needs no quoting or escaping inside `options` (app/config.ts validates it too)
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(role)) throw new Error(`session role ${JSON.stringify(role)} is not a plain role name`);
  const parsed = new URL(url);
  const options = parsed.searchParams.get('options');
  parsed.searchParams.set('options', [options, `-c role=${role}`].filter(Boolean).join(' '));
  return parsed.toString();
}

/** The URL with application_name set (unless it names one already): every connection says whose it is. */
export function withApplicationName(url: string, applicationName: string): string {
  const parsed = new URL(url);
  if (!parsed.searchParams.has('application_name')) parsed.searchParams.set('application_name', applicationName);
  return parsed.toString();
}
