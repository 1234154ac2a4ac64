// Operations endpoints: liveness, readiness (both databases reachable, migrations current),
// Prometheus metrics and the OpenAPI document.
import type { Request, Response, Router } from 'express';
import express from 'express';
import { sql } from 'slonik';
import { z } from 'zod';
import { expectedMigrations, functionFiles } from '../db/migrate.ts';
import type { Databases } from '../db/pools.ts';
import { okEnvelope } from './apiErrors.ts';
import type { Metrics } from './metrics.ts';

const READY_TIMEOUT_MS = 2_000;

type Expected = Readonly<{ migrations: readonly string[]; functions: ReadonlyMap<string, string> }>;

/** Every shipped migration applied, and every function file applied in the text this build ships. */
async function schemaCurrent(db: Databases['balance'], expected: Expected): Promise<'ok' | 'migrations pending' | 'functions stale'> {
  const applied = new Set(await db.anyFirst(sql.type(z.object({ name: z.string() }))`select name from schema_migrations`));
  if (!expected.migrations.every((name) => applied.has(name))) return 'migrations pending';
  const functions = await db.any(sql.type(z.object({ file: z.string(), sha256: z.string() }))`select file, sha256 from schema_functions`);
  const live = new Map(functions.map((f) => [f.file, f.sha256]));
  for (const [file, sha256] of expected.functions) if (live.get(file) !== sha256) return 'functions stale';
  return 'ok';
}

const expectedSchema = (set: 'balance' | 'ledger'): Expected => ({
  migrations: expectedMigrations(set),
  functions: new Map(functionFiles(set).map((f) => [f.file, f.sha256])),
});

export function opsRoutes(deps: { databases: Databases; metrics: Metrics; openApiDocument: () => unknown }): Router {
  const router = express.Router();
  const expected = { balance: expectedSchema('balance'), ledger: expectedSchema('ledger') };
  let document: unknown;

  router.get('/healthz', (_req: Request, res: Response) => {
    res.status(200).json(okEnvelope('ok', { uptimeSeconds: Math.round(process.uptime()) }));
  });

  router.get('/readyz', async (_req: Request, res: Response) => {
    const check = async (name: 'balance' | 'ledger') => {
      try {
        return await withTimeout(schemaCurrent(deps.databases[name], expected[name]), READY_TIMEOUT_MS);
      } catch (error) {
        return `unreachable: ${(error as Error).message}`;
      }
    };
    const [balance, ledger] = await Promise.all([check('balance'), check('ledger')]);
    const ready = balance === 'ok' && ledger === 'ok';
    res.status(ready ? 200 : 503).json({ code: ready ? 0 : 50301, msg: ready ? 'ready' : 'not ready', data: { balance, ledger } });
  });

  router.get('/metrics', async (_req: Request, res: Response) => {
    res.setHeader('Content-Type', deps.metrics.registry.contentType);
    res.status(200).send(await deps.metrics.registry.metrics());
  });

  router.get('/openapi.json', (_req: Request, res: Response) => {
    document ??= deps.openApiDocument();
    res.status(200).json(document);
  });

  return router;
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}
