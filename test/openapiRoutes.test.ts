// The OpenAPI document is the API clients generate code from: every route express serves must be in
// it (and nothing it does not serve), found by walking the real app's router stack, so a route
// added anywhere without its description fails here. And the document says what the routes really
// accept and answer: amounts as a number or a string, the Idempotency-Key alias, 400 and 413. And it
// passes redocly's recommended rules (redocly.yaml), as `npm run lint:openapi` checks in CI.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import type { Express } from 'express';
import { v7 as uuidv7 } from 'uuid';
import { projectRoot } from '../app/paths.ts';
import { call } from './helpers/http.ts';
import { startTestSystem, type TestSystem } from './helpers/system.ts';

let system: TestSystem;

test.before(async () => {
  system = await startTestSystem();
});

test.after.always(async () => {
  await system?.stop();
});

type Layer = {
  route?: { path: string | string[]; methods: Record<string, boolean> };
  handle?: { stack?: Layer[] };
};

/** Every (METHOD, path) the app serves, paths in OpenAPI's form (/withdraw/{withdrawOrderId}). */
function servedRoutes(app: Express): string[] {
  const found = new Set<string>();
  const walk = (stack: readonly Layer[]) => {
    for (const layer of stack) {
      if (layer.route) {
        const paths = Array.isArray(layer.route.path) ? layer.route.path : [layer.route.path];
        for (const path of paths) {
          // routing is not strict: /admin/ is /admin
          const openapiPath = path.replace(/:(\w+)/g, '{$1}').replace(/(.)\/$/, '$1');
          for (const [method, on] of Object.entries(layer.route.methods))
            if (on && method !== '_all') found.add(`${method.toUpperCase()} ${openapiPath}`);
        }
      } else if (layer.handle?.stack) {
        walk(layer.handle.stack);
      }
    }
  };
  walk((app as unknown as { router: { stack: Layer[] } }).router.stack);
  return [...found].sort();
}

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'];

function documentedRoutes(document: any): string[] {
  return Object.entries(document.paths as Record<string, Record<string, unknown>>)
    .flatMap(([path, item]) =>
      Object.keys(item)
        .filter((m) => METHODS.includes(m))
        .map((m) => `${m.toUpperCase()} ${path}`),
    )
    .sort();
}

test('when the web process is up, then every route express serves is in /openapi.json, and every route there is served', async (t) => {
  const app = system.web.server.listeners('request')[0] as unknown as Express;
  const served = servedRoutes(app);
  t.true(served.length > 30, `only ${served.length} routes found: is the router stack walked?`);
  t.true(served.includes('POST /admin/withdraws/{withdrawOrderId}/resolve'));
  const reply = await call(system.url, 'GET', '/openapi.json');
  t.is(reply.status, 200);
  const documented = documentedRoutes(reply.body);
  t.deepEqual(
    served.filter((route) => !documented.includes(route)),
    [],
    'served but missing from the OpenAPI document: describe them in their module’s OpenApiExtension (app/http/openapi.ts)',
  );
  t.deepEqual(
    documented.filter((route) => !served.includes(route)),
    [],
    'in the document but not served',
  );
});

test('when the document describes a withdrawal, then amount is a number or a decimal string, both key headers are there, and 400/413 are answers', async (t) => {
  const { body: document } = await call(system.url, 'GET', '/openapi.json');
  const amount = document.components.schemas.WithdrawRequest.properties.amount;
  t.deepEqual(amount.anyOf.map((s: { type: string }) => s.type).sort(), ['number', 'string']);
  t.truthy(amount.anyOf.find((s: { type: string }) => s.type === 'string').pattern, 'a decimal string has a pattern (no exponent)');
  for (const path of ['/withdraw', '/withdraw/batch']) {
    const post = document.paths[path].post;
    const headers = post.parameters.filter((p: { in: string }) => p.in === 'header').map((p: { name: string }) => p.name.toLowerCase());
    t.deepEqual(headers.sort(), ['idempotency-key', 'idempotent-key'], path);
    for (const status of ['400', '401', '409', '413', '422', '503']) t.truthy(post.responses[status], `${path} answers ${status}`);
  }
  // every operation that takes a body can be refused as too large, and every one says what 4xx it gives
  for (const [path, item] of Object.entries(document.paths as Record<string, Record<string, any>>)) {
    for (const [method, operation] of Object.entries(item)) {
      if (!METHODS.includes(method)) continue;
      t.truthy(operation.responses['413'], `${method} ${path} answers 413 (the body limit applies to every request)`);
      t.truthy(operation.operationId, `${method} ${path} has an operationId`);
      if (operation.requestBody || (operation.parameters ?? []).some((p: { in: string }) => p.in === 'query'))
        t.truthy(operation.responses['400'], `${method} ${path} takes input and answers 400`);
    }
  }
});

test('when a body is too large, then the answer is the 413 the document describes', async (t) => {
  const token = await system.userToken('openapi-user');
  const big = await call(system.url, 'POST', '/withdraw', {
    token,
    headers: { 'idempotent-key': uuidv7() },
    rawBody: JSON.stringify({ toAccountId: 'b', amount: '1.00', pad: 'x'.repeat(system.config.http.bodySizeMaxBytes) }),
  });
  t.is(big.status, 413);
  t.is(big.body.code, 41301);
  // a bulk payout has its own, larger limit
  const items = Array.from({ length: 1_000 }, (_, i) => ({
    clientReference: `ref-${i}`,
    toAccountId: 'bank-account-0001',
    amount: '1.00',
  }));
  const batch = await call(system.url, 'POST', '/withdraw/batch', {
    token,
    headers: { 'idempotent-key': uuidv7() },
    body: { items },
  });
  t.not(batch.status, 413, 'a batch of 1,000 items fits HTTP_BATCH_BODY_SIZE_MAX_BYTES');
});

test('when the served document is linted with redocly’s recommended rules, then it has no error and no warning', async (t) => {
  const { body: document } = await call(system.url, 'GET', '/openapi.json');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'openapi-lint-'));
  try {
    const file = path.join(dir, 'openapi.json');
    await writeFile(file, JSON.stringify(document));
    const redocly = path.join(projectRoot, 'node_modules', '.bin', 'redocly');
    // redocly exits 1 when it finds errors; the JSON report is on stdout either way
    const stdout = await promisify(execFile)(
      redocly,
      ['lint', '--config', path.join(projectRoot, 'redocly.yaml'), '--format', 'json', file],
      { env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' }, maxBuffer: 16 * 1024 * 1024 },
    ).then(
      (r) => r.stdout,
      (error: { stdout?: string; stderr?: string; message?: string }) => {
        // no report at all: redocly did not run (not installed, crashed): say why, not "bad JSON"
        if (!error.stdout?.includes('{')) throw new Error(`redocly gave no report: ${error.message ?? ''} ${error.stderr ?? ''}`);
        return error.stdout;
      },
    );
    const report = JSON.parse(stdout.slice(stdout.indexOf('{'))) as {
      totals: { errors: number; warnings: number };
      problems: Array<{ ruleId: string; message: string; location?: Array<{ pointer?: string }> }>;
    };
    const problems = report.problems.map((p) => `${p.ruleId}: ${p.message} at ${p.location?.[0]?.pointer ?? '?'}`);
    t.deepEqual(problems, [], `${report.totals.errors} errors, ${report.totals.warnings} warnings`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
