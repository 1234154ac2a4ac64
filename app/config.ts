// Configuration is parsed once, bounded, frozen and passed down. Nothing else reads process.env.
import { randomBytes } from 'node:crypto';
import { z } from 'zod';

const secret = (minLength: number) => z.string().min(minLength, `must be at least ${minLength} characters`);
const optionalUrl = z
  .string()
  .url()
  .refine((value) => /^postgres(ql)?:\/\//.test(value), 'must be a postgres:// URL')
  .optional();
const milliseconds = (min: number, max: number, fallback: number) => z.coerce.number().int().min(min).max(max).default(fallback);
const count = (min: number, max: number, fallback: number) => z.coerce.number().int().min(min).max(max).default(fallback);

/** The role the Ledger DB pool runs as (sql/ledger/0004_app_role.sql); LEDGER_DB_ROLE='' keeps the login user. */
export const LEDGER_DB_ROLE_DEFAULT = 'withdraw_ledger_writer';
const roleName = z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, 'must be a plain role name (a-z, 0-9, _; at most 63), or empty for none');
// variables whose empty value means "none" rather than "unset, use the default"
const EMPTY_MEANS_NONE: ReadonlySet<string> = new Set(['LEDGER_DB_ROLE']);

const EnvSchema = z
  .object({
    NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    PORT: z.coerce.number().int().min(0).max(65535).default(3000),

    BALANCE_DATABASE_URL: optionalUrl,
    LEDGER_DATABASE_URL: optionalUrl,
    EMBEDDED_PG_DIR: z.string().min(1).default('.data'),
    EMBEDDED_PG_PORT: z.coerce.number().int().min(1024).max(65535).default(54329),
    DB_POOL_SIZE_MAX: count(1, 200, 20),
    DB_STATEMENT_TIMEOUT_MS: milliseconds(100, 600_000, 30_000),
    LEDGER_DB_ROLE: z.union([z.literal(''), roleName]).default(LEDGER_DB_ROLE_DEFAULT),
    // reports and reconciliation read from these (streaming replicas) when set; writes stay on the primaries
    BALANCE_REPORTS_DATABASE_URL: optionalUrl,
    LEDGER_REPORTS_DATABASE_URL: optionalUrl,
    // a report refuses a replica whose data may be older than this (0: only an up-to-date replica)
    REPORTS_REPLICA_LAG_MAX_MS: milliseconds(0, 86_400_000, 300_000),
    // reconciliation waits this long for a replica to replay what the primary had committed, then fails the run
    REPLICA_WAIT_MS: milliseconds(100, 3_600_000, 30_000),

    AUTH_JWT_SECRET: secret(32).optional(),
    ADMIN_TOKEN: secret(16).optional(),
    INTERNAL_TOKEN: secret(16).optional(),

    PSP_BASE_URL: z.string().url().optional(),
    PSP_WEBHOOK_SECRET: secret(16).optional(),
    PSP_SIM_PORT: z.coerce.number().int().min(0).max(65535).default(4010),
    PSP_CALLBACK_URL: z.string().url().optional(),

    IDEMPOTENCY_CACHE_SIZE_MAX: count(0, 10_000_000, 100_000),
    IDEMPOTENCY_KEY_RETENTION_HOURS: count(24, 24 * 90, 48),
    HTTP_BODY_SIZE_MAX_BYTES: count(256, 1_048_576, 16_384),
    // POST /withdraw/batch carries up to 1,000 items (about 150 bytes each)
    HTTP_BATCH_BODY_SIZE_MAX_BYTES: count(1_024, 8_388_608, 524_288),
    RATE_LIMIT_USER_PER_SECOND: count(0, 1_000_000, 0),
    RATE_LIMIT_USER_BURST: count(1, 1_000_000, 200),
    LONG_POLL_WAIT_MS_MAX: milliseconds(0, 30_000, 30_000),
    LONG_POLL_WAITERS_MAX: count(0, 100_000, 10_000),

    WORKER_CONCURRENCY: count(1, 500, 32),
    WORKER_LOCAL_QUEUE_SIZE: count(-1, 5_000, 64),
    WORKER_HEARTBEAT_INTERVAL_MS: milliseconds(500, 60_000, 5_000),
    WORKER_STALE_AFTER_MS: milliseconds(2_000, 3_600_000, 30_000),
    // a job locked this long is freed even if its worker still beats: a lock orphaned by a lost
    // connection, or a hung task (every task is idempotent, so a second run is safe)
    WORKER_JOB_LOCK_MAX_MS: milliseconds(5_000, 86_400_000, 600_000),
    // a task that has not finished after this long fails (and is retried) instead of holding a slot
    WORKER_TASK_TIMEOUT_MS: milliseconds(1_000, 86_400_000, 300_000),
    WORKER_SHUTDOWN_GRACE_MS: milliseconds(1_000, 120_000, 20_000),
    RELAY_BATCH_SIZE_MAX: count(1, 5_000, 500),
    RELAY_POLL_INTERVAL_MS: milliseconds(50, 600_000, 500),
    INBOX_BATCH_SIZE_MAX: count(1, 5_000, 200),
    // a callback the database refuses is retried after INBOX_RETRY_BASE_MS, doubling (at most
    // INBOX_RETRY_MAX_MS), and parked (a break) after INBOX_PARK_AFTER_ATTEMPTS; the others flow on
    INBOX_PARK_AFTER_ATTEMPTS: count(1, 100, 5),
    INBOX_RETRY_BASE_MS: milliseconds(10, 600_000, 1_000),
    INBOX_RETRY_MAX_MS: milliseconds(10, 3_600_000, 60_000),
    OUTBOX_RETENTION_HOURS: count(1, 24 * 365, 72),

    GATEWAY_CONNECT_TIMEOUT_MS: milliseconds(50, 60_000, 2_000),
    GATEWAY_TIMEOUT_MS: milliseconds(100, 120_000, 5_000),
    GATEWAY_CONNECTIONS_MAX: count(1, 1_000, 128),
    GATEWAY_SUBMIT_BATCH_SIZE_MAX: count(1, 1_000, 100),
    GATEWAY_SUBMIT_ATTEMPTS_MAX: count(1, 100, 8),
    GATEWAY_RETRY_BASE_MS: milliseconds(10, 600_000, 1_000),
    GATEWAY_RETRY_MAX_MS: milliseconds(10, 3_600_000, 60_000),

    INIT_STALE_MS: milliseconds(1_000, 86_400_000, 120_000),
    // recovery asks the provider about a processing (or manual) order that heard nothing this long
    // after it entered its status, then again after twice as long, and so on, at most every
    // PROCESSING_QUERY_INTERVAL_MS (MANUAL_QUERY_INTERVAL_MS for manual orders): a lost callback
    // is found in seconds, and an order the provider keeps quiet about costs a query a minute
    PROCESSING_STALE_MS: milliseconds(1_000, 86_400_000, 15_000),
    PROCESSING_QUERY_INTERVAL_MS: milliseconds(100, 86_400_000, 60_000),
    MANUAL_QUERY_INTERVAL_MS: milliseconds(100, 86_400_000, 600_000),
    PROCESSING_QUERY_ATTEMPTS_MAX: count(1, 1_000, 10),
    // a provider that answers "pending" for this many queries (a day at the default interval) hands
    // the order to a human: every order ends success, failed or manual in bounded time (I8)
    PROCESSING_PENDING_QUERIES_MAX: count(1, 100_000, 1_440),
    // per recovery run: processing orders and manual orders are asked about in separate bounded
    // batches, so manual orders can never crowd out processing ones
    RECOVERY_BATCH_SIZE_MAX: count(1, 10_000, 500),
    RECOVERY_MANUAL_BATCH_SIZE_MAX: count(1, 10_000, 100),
    RECOVERY_CONCURRENCY: count(1, 256, 16),
    // the cron runs recovery once a minute; a shorter interval makes each worker also enqueue it on
    // a timer, under the same job key and queue as the cron's (one run at a time, whoever asks)
    RECOVERY_INTERVAL_MS: milliseconds(1_000, 3_600_000, 10_000),
    // reconciliation (reconcile__run every 5 minutes; provider checks in reconcile__provider every
    // minute): what changed, up to now minus the settle delay, at most RECONCILE_WINDOW_MAX_MS of
    // changes per run (a run behind catches up window by window), read in pages
    RECONCILE_SETTLE_MS: milliseconds(0, 86_400_000, 60_000),
    RECONCILE_WINDOW_MAX_MS: milliseconds(1_000, 7 * 86_400_000, 3_600_000),
    RECONCILE_PAGE_SIZE: count(10, 100_000, 5_000),
    // provider checks per reconcile__provider run (every minute), how many at once, how often an
    // order the provider cannot answer is asked before it is a break, and when a final order is
    // checked a second time
    RECONCILE_PROVIDER_CHECKS_MAX: count(0, 1_000_000, 10_000),
    RECONCILE_PROVIDER_CONCURRENCY: count(1, 256, 32),
    RECONCILE_PROVIDER_UNKNOWN_MAX: count(1, 100, 5),
    RECONCILE_RECHECK_AFTER_MS: milliseconds(60_000, 90 * 86_400_000, 86_400_000),

    // the operations console (GET /admin/): operators' sessions and dual-control requests
    CONSOLE_SESSION_IDLE_MINUTES: count(1, 24 * 60, 30),
    CONSOLE_SESSION_MAX_HOURS: count(1, 7 * 24, 12),
    CONSOLE_LOGIN_FAILURES_MAX: count(3, 1_000, 10),
    CONSOLE_LOCKOUT_MINUTES: count(1, 24 * 60, 15),
    CONSOLE_APPROVAL_TTL_HOURS: count(1, 30 * 24, 24),

    // recurring maintenance (reconciliation, pruning, ledger checkpoints) runs its statements under
    // this timeout, not the pools' DB_STATEMENT_TIMEOUT_MS: a run reads a bounded window, but that
    // window is larger than any request's
    MAINTENANCE_STATEMENT_TIMEOUT_MS: milliseconds(1_000, 3_600_000, 600_000),
    // a UTC day of the ledger is closed (checkpointed) this long after it ends: postings dated
    // before midnight have committed by then (their statements time out long before)
    LEDGER_CHECKPOINT_SETTLE_MS: milliseconds(0, 86_400_000, 900_000),
    LEDGER_CHECKPOINT_DAYS_PER_RUN_MAX: count(1, 366, 31),
    // pruning (maintenance__prune, every minute): per table at most this many rows per run, in
    // batches of this size, each its own short transaction
    PRUNE_ROWS_PER_RUN_MAX: count(1, 10_000_000, 100_000),
    PRUNE_BATCH_SIZE_MAX: count(1, 100_000, 5_000),
    // applied provider callbacks are kept this long (the provider may repeat one for days)
    GATEWAY_INBOX_RETENTION_HOURS: count(1, 24 * 365, 168),

    // outgoing events (webhooks): one request's deadline, requests open per endpoint, delivery jobs
    // running at once per worker (the rest of its slots stay for the money path), the backoff
    WEBHOOK_TIMEOUT_MS: milliseconds(100, 60_000, 5_000),
    WEBHOOK_CONNECT_TIMEOUT_MS: milliseconds(50, 30_000, 2_000),
    WEBHOOK_ENDPOINT_CONCURRENCY: count(1, 64, 4),
    // at least 2: one endpoint has one round at most, so a hanging one never takes all of them
    WEBHOOK_JOBS_MAX: count(2, 256, 4),
    WEBHOOK_RETRY_BASE_MS: milliseconds(10, 3_600_000, 10_000),
    WEBHOOK_RETRY_MAX_MS: milliseconds(10, 86_400_000, 3_600_000),
    // a delivery is retried for at least this long before it is given up (failed, replayable)
    WEBHOOK_RETRY_HORIZON_HOURS: count(72, 24 * 30, 72),
    // an endpoint failing this long without one success is disabled
    WEBHOOK_DISABLE_AFTER_HOURS: count(1, 24 * 30, 72),

    ADMIN_TOKENS: z
      .string()
      .regex(
        /^[A-Za-z0-9_.-]{1,64}:[^,:\s]{16,}(,[A-Za-z0-9_.-]{1,64}:[^,:\s]{16,})*$/,
        'must be name:token[,name:token...] with tokens of at least 16 characters',
      )
      .optional(),
  })
  .refine((env) => (env.BALANCE_DATABASE_URL === undefined) === (env.LEDGER_DATABASE_URL === undefined), {
    message: 'set both BALANCE_DATABASE_URL and LEDGER_DATABASE_URL, or neither (embedded PostgreSQL)',
    path: ['LEDGER_DATABASE_URL'],
  });

export type Env = z.infer<typeof EnvSchema>;

export type Config = Readonly<{
  nodeEnv: Env['NODE_ENV'];
  logLevel: Env['LOG_LEVEL'];
  port: number;
  database: Readonly<{
    balanceUrl: string | undefined;
    ledgerUrl: string | undefined;
    embeddedDir: string;
    embeddedPort: number;
    poolSizeMax: number;
    statementTimeoutMs: number;
    /** the role the Ledger DB pool assumes when the login user may; null: the login user itself */
    ledgerRole: string | null;
    /** read replicas for reports and reconciliation; undefined: read the primaries */
    reportsBalanceUrl: string | undefined;
    reportsLedgerUrl: string | undefined;
    replicaLagMaxMs: number;
    replicaWaitMs: number;
  }>;
  auth: Readonly<{
    jwtSecret: string;
    jwtSecretGenerated: boolean;
    adminToken: string;
    adminTokenGenerated: boolean;
    /** named operators' tokens (ADMIN_TOKENS), besides the shared ADMIN_TOKEN */
    operatorTokens: ReadonlyMap<string, string>;
    internalToken: string;
  }>;
  psp: Readonly<{
    baseUrl: string | undefined;
    /** The first secret signs (simulator); every one of them verifies (rotation). */
    webhookSecrets: readonly string[];
    simPort: number;
    callbackUrl: string;
  }>;
  http: Readonly<{
    bodySizeMaxBytes: number;
    batchBodySizeMaxBytes: number;
    rateLimitUserPerSecond: number;
    rateLimitUserBurst: number;
    longPollWaitMsMax: number;
    longPollWaitersMax: number;
  }>;
  idempotency: Readonly<{ cacheSizeMax: number; retentionHours: number }>;
  worker: Readonly<{
    concurrency: number;
    localQueueSize: number;
    heartbeatIntervalMs: number;
    staleAfterMs: number;
    jobLockMaxMs: number;
    taskTimeoutMs: number;
    shutdownGraceMs: number;
    relayBatchSizeMax: number;
    relayPollIntervalMs: number;
    inboxBatchSizeMax: number;
    inboxParkAfterAttempts: number;
    inboxRetryBaseMs: number;
    inboxRetryMaxMs: number;
    outboxRetentionHours: number;
  }>;
  recovery: Readonly<{
    initStaleMs: number;
    processingStaleMs: number;
    processingQueryIntervalMs: number;
    manualQueryIntervalMs: number;
    processingQueryAttemptsMax: number;
    processingPendingQueriesMax: number;
    batchSizeMax: number;
    manualBatchSizeMax: number;
    concurrency: number;
    intervalMs: number;
  }>;
  reconcile: Readonly<{
    settleMs: number;
    windowMaxMs: number;
    pageSize: number;
    providerChecksMax: number;
    providerConcurrency: number;
    providerUnknownMax: number;
    recheckAfterMs: number;
  }>;
  console: Readonly<{
    sessionIdleMinutes: number;
    sessionMaxHours: number;
    loginFailuresMax: number;
    lockoutMinutes: number;
    approvalTtlHours: number;
  }>;
  maintenance: Readonly<{
    statementTimeoutMs: number;
    checkpointSettleMs: number;
    checkpointDaysPerRunMax: number;
    pruneRowsPerRunMax: number;
    pruneBatchSizeMax: number;
    inboxRetentionHours: number;
  }>;
  webhooks: Readonly<{
    timeoutMs: number;
    connectTimeoutMs: number;
    endpointConcurrency: number;
    jobsMax: number;
    retryBaseMs: number;
    retryMaxMs: number;
    retryHorizonHours: number;
    disableAfterHours: number;
  }>;
  gateway: Readonly<{
    connectTimeoutMs: number;
    timeoutMs: number;
    connectionsMax: number;
    submitBatchSizeMax: number;
    submitAttemptsMax: number;
    retryBaseMs: number;
    retryMaxMs: number;
  }>;
}>;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

const randomSecret = () => randomBytes(32).toString('base64url');

/**
 * The process environment, for the modules that start other processes (app/supervisor.ts, the
 * benchmark, the chaos run) and hand it on with their own variables on top. This module is the only
 * one that reads process.env (the linter's noProcessEnv rule holds everywhere else).
 */
export function processEnvironment(overrides: Readonly<Record<string, string | undefined>> = {}): NodeJS.ProcessEnv {
  return { ...process.env, ...overrides };
}

/** Whether a variable is set to a non-empty value in this process's environment. */
export function environmentHas(name: string): boolean {
  const value = process.env[name];
  return value !== undefined && value !== '';
}

/** Parses the environment; throws ConfigError naming every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = EnvSchema.safeParse(emptyToUndefined(env));
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => `  ${issue.path.join('.') || 'environment'}: ${issue.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  const e = parsed.data;
  const webhookSecrets = (e.PSP_WEBHOOK_SECRET ?? randomSecret()).split(',').map((s) => s.trim());
  if (webhookSecrets.some((s) => s.length < 16)) {
    throw new ConfigError('invalid configuration:\n  PSP_WEBHOOK_SECRET: every comma-separated secret must be at least 16 characters');
  }
  if (e.WORKER_TASK_TIMEOUT_MS >= e.WORKER_JOB_LOCK_MAX_MS) {
    throw new ConfigError(
      'invalid configuration:\n  WORKER_JOB_LOCK_MAX_MS: must be longer than WORKER_TASK_TIMEOUT_MS (a running task must never look wedged)',
    );
  }
  if (e.ADMIN_TOKENS?.split(',').some((pair) => pair.startsWith('admin:'))) {
    throw new ConfigError('invalid configuration:\n  ADMIN_TOKENS: the name "admin" is reserved for ADMIN_TOKEN');
  }
  return deepFreeze({
    nodeEnv: e.NODE_ENV,
    logLevel: e.LOG_LEVEL,
    port: e.PORT,
    database: {
      balanceUrl: e.BALANCE_DATABASE_URL,
      ledgerUrl: e.LEDGER_DATABASE_URL,
      embeddedDir: e.EMBEDDED_PG_DIR,
      embeddedPort: e.EMBEDDED_PG_PORT,
      poolSizeMax: e.DB_POOL_SIZE_MAX,
      statementTimeoutMs: e.DB_STATEMENT_TIMEOUT_MS,
      ledgerRole: e.LEDGER_DB_ROLE === '' ? null : e.LEDGER_DB_ROLE,
      reportsBalanceUrl: e.BALANCE_REPORTS_DATABASE_URL,
      reportsLedgerUrl: e.LEDGER_REPORTS_DATABASE_URL,
      replicaLagMaxMs: e.REPORTS_REPLICA_LAG_MAX_MS,
      replicaWaitMs: e.REPLICA_WAIT_MS,
    },
    auth: {
      jwtSecret: e.AUTH_JWT_SECRET ?? randomSecret(),
      jwtSecretGenerated: e.AUTH_JWT_SECRET === undefined,
      adminToken: e.ADMIN_TOKEN ?? randomSecret(),
      adminTokenGenerated: e.ADMIN_TOKEN === undefined,
      internalToken: e.INTERNAL_TOKEN ?? randomSecret(),
      operatorTokens: new Map(
        (e.ADMIN_TOKENS ? e.ADMIN_TOKENS.split(',') : []).map((pair) => {
          const at = pair.indexOf(':');
          return [pair.slice(0, at), pair.slice(at + 1)] as const;
        }),
      ),
    },
    psp: {
      baseUrl: e.PSP_BASE_URL,
      webhookSecrets,
      simPort: e.PSP_SIM_PORT,
      callbackUrl: e.PSP_CALLBACK_URL ?? `http://127.0.0.1:${e.PORT}/withdraw/notify`,
    },
    http: {
      bodySizeMaxBytes: e.HTTP_BODY_SIZE_MAX_BYTES,
      batchBodySizeMaxBytes: e.HTTP_BATCH_BODY_SIZE_MAX_BYTES,
      rateLimitUserPerSecond: e.RATE_LIMIT_USER_PER_SECOND,
      rateLimitUserBurst: e.RATE_LIMIT_USER_BURST,
      longPollWaitMsMax: e.LONG_POLL_WAIT_MS_MAX,
      longPollWaitersMax: e.LONG_POLL_WAITERS_MAX,
    },
    idempotency: { cacheSizeMax: e.IDEMPOTENCY_CACHE_SIZE_MAX, retentionHours: e.IDEMPOTENCY_KEY_RETENTION_HOURS },
    worker: {
      concurrency: e.WORKER_CONCURRENCY,
      localQueueSize: e.WORKER_LOCAL_QUEUE_SIZE,
      heartbeatIntervalMs: e.WORKER_HEARTBEAT_INTERVAL_MS,
      staleAfterMs: e.WORKER_STALE_AFTER_MS,
      jobLockMaxMs: e.WORKER_JOB_LOCK_MAX_MS,
      taskTimeoutMs: e.WORKER_TASK_TIMEOUT_MS,
      shutdownGraceMs: e.WORKER_SHUTDOWN_GRACE_MS,
      relayBatchSizeMax: e.RELAY_BATCH_SIZE_MAX,
      relayPollIntervalMs: e.RELAY_POLL_INTERVAL_MS,
      inboxBatchSizeMax: e.INBOX_BATCH_SIZE_MAX,
      inboxParkAfterAttempts: e.INBOX_PARK_AFTER_ATTEMPTS,
      inboxRetryBaseMs: e.INBOX_RETRY_BASE_MS,
      inboxRetryMaxMs: e.INBOX_RETRY_MAX_MS,
      outboxRetentionHours: e.OUTBOX_RETENTION_HOURS,
    },
    recovery: {
      initStaleMs: e.INIT_STALE_MS,
      processingStaleMs: e.PROCESSING_STALE_MS,
      processingQueryIntervalMs: e.PROCESSING_QUERY_INTERVAL_MS,
      manualQueryIntervalMs: e.MANUAL_QUERY_INTERVAL_MS,
      processingQueryAttemptsMax: e.PROCESSING_QUERY_ATTEMPTS_MAX,
      processingPendingQueriesMax: e.PROCESSING_PENDING_QUERIES_MAX,
      batchSizeMax: e.RECOVERY_BATCH_SIZE_MAX,
      manualBatchSizeMax: e.RECOVERY_MANUAL_BATCH_SIZE_MAX,
      concurrency: e.RECOVERY_CONCURRENCY,
      intervalMs: e.RECOVERY_INTERVAL_MS,
    },
    reconcile: {
      settleMs: e.RECONCILE_SETTLE_MS,
      windowMaxMs: e.RECONCILE_WINDOW_MAX_MS,
      pageSize: e.RECONCILE_PAGE_SIZE,
      providerChecksMax: e.RECONCILE_PROVIDER_CHECKS_MAX,
      providerConcurrency: e.RECONCILE_PROVIDER_CONCURRENCY,
      providerUnknownMax: e.RECONCILE_PROVIDER_UNKNOWN_MAX,
      recheckAfterMs: e.RECONCILE_RECHECK_AFTER_MS,
    },
    console: {
      sessionIdleMinutes: e.CONSOLE_SESSION_IDLE_MINUTES,
      sessionMaxHours: e.CONSOLE_SESSION_MAX_HOURS,
      loginFailuresMax: e.CONSOLE_LOGIN_FAILURES_MAX,
      lockoutMinutes: e.CONSOLE_LOCKOUT_MINUTES,
      approvalTtlHours: e.CONSOLE_APPROVAL_TTL_HOURS,
    },
    maintenance: {
      statementTimeoutMs: e.MAINTENANCE_STATEMENT_TIMEOUT_MS,
      checkpointSettleMs: e.LEDGER_CHECKPOINT_SETTLE_MS,
      checkpointDaysPerRunMax: e.LEDGER_CHECKPOINT_DAYS_PER_RUN_MAX,
      pruneRowsPerRunMax: e.PRUNE_ROWS_PER_RUN_MAX,
      pruneBatchSizeMax: e.PRUNE_BATCH_SIZE_MAX,
      inboxRetentionHours: e.GATEWAY_INBOX_RETENTION_HOURS,
    },
    webhooks: {
      timeoutMs: e.WEBHOOK_TIMEOUT_MS,
      connectTimeoutMs: e.WEBHOOK_CONNECT_TIMEOUT_MS,
      endpointConcurrency: e.WEBHOOK_ENDPOINT_CONCURRENCY,
      jobsMax: e.WEBHOOK_JOBS_MAX,
      retryBaseMs: e.WEBHOOK_RETRY_BASE_MS,
      retryMaxMs: e.WEBHOOK_RETRY_MAX_MS,
      retryHorizonHours: e.WEBHOOK_RETRY_HORIZON_HOURS,
      disableAfterHours: e.WEBHOOK_DISABLE_AFTER_HOURS,
    },
    gateway: {
      connectTimeoutMs: e.GATEWAY_CONNECT_TIMEOUT_MS,
      timeoutMs: e.GATEWAY_TIMEOUT_MS,
      connectionsMax: e.GATEWAY_CONNECTIONS_MAX,
      submitBatchSizeMax: e.GATEWAY_SUBMIT_BATCH_SIZE_MAX,
      submitAttemptsMax: e.GATEWAY_SUBMIT_ATTEMPTS_MAX,
      retryBaseMs: e.GATEWAY_RETRY_BASE_MS,
      retryMaxMs: e.GATEWAY_RETRY_MAX_MS,
    },
  });
}

function emptyToUndefined(env: NodeJS.ProcessEnv): Record<string, string | undefined> {
  const result: Record<string, string | undefined> = {};
  for (const [key, value] of Object.entries(env)) result[key] = value === '' && !EMPTY_MEANS_NONE.has(key) ? undefined : value;
  return result;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
