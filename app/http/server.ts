// The web process's express app: request ids, access logs, metrics, the envelope, the routes.
import type { NextFunction, Request, Response, Router } from 'express';
import express from 'express';
import { pinoHttp } from 'pino-http';
import { v7 as uuidv7 } from 'uuid';
import type { Logger } from '../logger.ts';
import { errorHandler, notFoundHandler } from './errorHandler.ts';
import { jsonBody } from './jsonBody.ts';
import type { Metrics } from './metrics.ts';

const REQUEST_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;
const QUIET_PATHS = new Set(['/healthz', '/readyz', '/metrics']);

export function createHttpApp(deps: {
  logger: Logger;
  metrics: Metrics;
  bodySizeMaxBytes: number;
  /** larger limits for some paths (exact match), e.g. bulk payouts */
  bodySizeMaxBytesByPath?: Readonly<Record<string, number>>;
  routers: readonly Router[];
}): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');
  app.set('trust proxy', 'loopback, linklocal, uniquelocal');

  app.use((req: Request, res: Response, next: NextFunction) => {
    const presented = req.get('x-request-id');
    const id = presented && REQUEST_ID_PATTERN.test(presented) ? presented : uuidv7();
    res.setHeader('X-Request-Id', id);
    (req as Request & { id: string }).id = id;
    next();
  });

  // Access lines are written at info; below that level pino-http would only cost CPU (a child
  // logger per request, ~7% of a request here), so requests then get a plain child logger.
  if (deps.logger.isLevelEnabled('info')) {
    app.use(
      pinoHttp({
        logger: deps.logger,
        genReqId: (req) => (req as unknown as { id: string }).id,
        // the error handler logs the error itself, once; the access line only records the outcome
        customLogLevel: (req, res) => {
          if (res.statusCode >= 500) return 'warn';
          return QUIET_PATHS.has(req.url?.split('?')[0] ?? '') ? 'debug' : 'info';
        },
        customProps: (_req, res) => {
          const transactionId = (res as unknown as Response).locals?.transactionId;
          return transactionId ? { transactionId } : {};
        },
        serializers: {
          req: (req) => ({ id: req.id, method: req.method, url: req.url }),
          res: (res) => ({ statusCode: res.statusCode }),
        },
      }),
    );
  } else {
    app.use((req: Request, _res: Response, next: NextFunction) => {
      (req as Request & { log: Logger }).log = deps.logger;
      next();
    });
  }

  app.use((req: Request, res: Response, next: NextFunction) => {
    const end = deps.metrics.httpRequests.startTimer();
    res.once('finish', () => {
      const route = req.route?.path ? `${req.baseUrl}${String(req.route.path)}` : 'unmatched';
      end({ method: req.method, route, status: String(res.statusCode) });
    });
    next();
  });

  app.use(jsonBody(deps.bodySizeMaxBytes, deps.bodySizeMaxBytesByPath));
  for (const router of deps.routers) app.use(router);
  app.use(notFoundHandler());
  app.use(errorHandler());
  return app;
}
