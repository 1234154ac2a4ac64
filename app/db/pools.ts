// The two slonik pools. Rows are validated by the zod schema given to sql.type(); int8 comes back
// as bigint (money), timestamps as epoch milliseconds, numeric as an exact string.
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
  const connectionUri = withApplicationName(url, options.applicationName);
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
    // query. We keep no session state, so nothing needs resetting.
    resetConnection: async () => {},
  });
}

export async function createDatabases(
  urls: Readonly<{ balanceUrl: string; ledgerUrl: string }>,
  options: PoolOptions,
): Promise<Databases> {
  const [balance, ledger] = await Promise.all([
    createDatabasePool(urls.balanceUrl, options),
    createDatabasePool(urls.ledgerUrl, options),
  ]);
  return { balance, ledger };
}

export async function endDatabases(databases: Databases): Promise<void> {
  await Promise.allSettled([databases.balance.end(), databases.ledger.end()]);
}

function withApplicationName(url: string, applicationName: string): string {
  const parsed = new URL(url);
  if (!parsed.searchParams.has('application_name')) parsed.searchParams.set('application_name', applicationName);
  return parsed.toString();
}
