// Builds the web process from its parts; used by `npm run web`, `npm start` and the tests.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { accountRoutes } from './admin/accountRoutes.ts';
import { clientAccountRoutes } from './balance/clientAccountRoutes.ts';
import { webhookRoutes } from './webhooks/webhookRoutes.ts';
import { createAccountDirectory } from './balance/accountDirectory.ts';
import type { Config } from './config.ts';
import type { Databases } from './db/pools.ts';
import { createAuth } from './http/auth.ts';
import { createMetrics } from './http/metrics.ts';
import { buildOpenApiDocument } from './http/openapi.ts';
import { opsRoutes } from './http/opsRoutes.ts';
import { createHttpApp } from './http/server.ts';
import { userRateLimit } from './http/rateLimit.ts';
import type { Logger } from './logger.ts';
import { withdrawRoutes } from './withdraw/withdrawRoutes.ts';
import { createWithdrawService } from './withdraw/withdrawService.ts';
import { createStatusWaiter } from './withdraw/statusWaiter.ts';
import { gatewayRoutes } from './gateway/gatewayRoutes.ts';
import { dashboardRoutes } from './admin/dashboardRoutes.ts';
import { reviewRoutes } from './admin/reviewRoutes.ts';
import { createManualReview } from './admin/manualReview.ts';
import { consoleRouters } from './admin/consoleRouters.ts';
import { registerOperationalMetrics } from './admin/operationalMetrics.ts';
import { createPspHttpAdapter } from './gateway/pspHttpAdapter.ts';

export type WebProcess = Readonly<{
  url: string;
  port: number;
  server: Server;
  /** long-poll requests for orderId parked now, waiting for a change of the order or their deadline */
  longPollsParked: (orderId: string) => number;
  /** stop accepting connections, let in-flight requests finish (bounded), close keep-alives */
  close: (graceMs?: number) => Promise<void>;
}>;

export function adminTokensOf(config: Config): Map<string, string> {
  return new Map([['admin', config.auth.adminToken], ...config.auth.operatorTokens]);
}

export async function startWebProcess(deps: {
  config: Config;
  databases: Databases;
  /** for LISTEN (long-poll); pools do not lend connections for that */
  balanceUrl: string;
  logger: Logger;
}): Promise<WebProcess> {
  const { config, databases, logger } = deps;
  const metrics = createMetrics('web');
  registerOperationalMetrics(metrics.registry, databases);
  const auth = createAuth({
    jwtSecret: config.auth.jwtSecret,
    adminTokens: adminTokensOf(config),
    internalToken: config.auth.internalToken,
  });
  const accounts = createAccountDirectory(databases.balance, { factsSizeMax: 100_000, userListTtlMs: 5_000 });
  const withdraws = createWithdrawService({
    db: databases.balance,
    accounts,
    settings: {
      cacheSizeMax: config.idempotency.cacheSizeMax,
      cacheTtlMs: 10 * 60_000,
      keyRetentionHours: config.idempotency.retentionHours,
    },
  });
  // operators' resolutions ask the provider before releasing money
  const psp = config.psp.baseUrl ? createPspHttpAdapter({ baseUrl: config.psp.baseUrl, ...config.gateway }) : null;
  const review = createManualReview({ db: databases.balance, psp });
  const statusWaiter = createStatusWaiter({ balanceUrl: deps.balanceUrl, waitersMax: config.http.longPollWaitersMax, logger });
  const app = createHttpApp({
    logger,
    metrics,
    bodySizeMaxBytes: config.http.bodySizeMaxBytes,
    bodySizeMaxBytesByPath: { '/withdraw/batch': config.http.batchBodySizeMaxBytes },
    routers: [
      opsRoutes({ databases, metrics, openApiDocument: () => buildOpenApiDocument() }),
      withdrawRoutes({
        auth,
        withdraws,
        waitForChange: statusWaiter.wait,
        longPollWaitMsMax: config.http.longPollWaitMsMax,
        db: databases.balance,
        accounts,
        keyRetentionHours: config.idempotency.retentionHours,
        rateLimit: userRateLimit({ perSecond: config.http.rateLimitUserPerSecond, burst: config.http.rateLimitUserBurst }),
      }),
      accountRoutes({ auth, db: databases.balance, accounts }),
      clientAccountRoutes({ auth, balance: databases.balance, ledger: databases.ledger, accounts }),
      webhookRoutes({ auth, db: databases.balance }),
      gatewayRoutes({ auth, balance: databases.balance, webhookSecrets: config.psp.webhookSecrets }),
      dashboardRoutes({ auth, databases }),
      reviewRoutes({ auth, db: databases.balance, accounts, review }),
      ...consoleRouters({ config, auth, databases, review }),
    ],
  });
  const server = await new Promise<Server>((resolve, reject) => {
    const listening = app.listen(config.port, '0.0.0.0', (error?: Error) => (error ? reject(error) : resolve(listening)));
  });
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  server.requestTimeout = 60_000;
  server.maxHeadersCount = 100;
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    server,
    longPollsParked: statusWaiter.parked,
    close: async (graceMs = 10_000) => {
      await statusWaiter.close();
      await closeServer(server, graceMs);
      await psp?.close();
    },
  };
}

function closeServer(server: Server, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    const force = setTimeout(() => server.closeAllConnections(), graceMs);
    force.unref();
    server.close(() => {
      clearTimeout(force);
      resolve();
    });
    server.closeIdleConnections();
  });
}
