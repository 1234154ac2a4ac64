// Payout provider simulator (contract: "Payout provider simulator").
// A lean node:http server that behaves like a real payout provider, faults included: idempotent
// acceptance per reference, 5xx after (or before) executing, definitive rejections, hangs, and
// signed callbacks that may be late, duplicated, dropped or later contradicted by a reversal.
// `executed` in GET /stats counts how often money would really have moved per reference: the
// system's exactly-once check. The simulator itself never executes a reference twice.
// Amounts are opaque decimal strings here: the simulator compares them, never does arithmetic.
import { randomInt } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import { invalidRequest, parseJson, readBody, send, sendStatement, zodMessage } from './pspSimHttp.ts';
import { createCallbackSender } from './pspSimCallbacks.ts';
import {
  createPayoutBook,
  PayoutRequestSchema,
  publicPayout,
  REPLY_INTERNAL_ERROR,
  sameRequest,
  type PayoutRequest,
  type PspSimulatorStats,
} from './pspSimPayouts.ts';
import {
  KNOB_MS_MAX,
  KNOBS_DEFAULT,
  KnobsPatchSchema,
  decide,
  mergeKnobs,
  mulberry32,
  type Knobs,
  type KnobsPatch,
} from './pspSimKnobs.ts';

export type { PayoutStatus, PspSimulatorStats } from './pspSimPayouts.ts';
// The knobs API is part of the simulator's public face.
export {
  KNOB_MS_MAX,
  KNOBS_DEFAULT,
  KnobsPatchSchema,
  KnobsSchema,
  knobEnvName,
  knobsFromEnv,
  mulberry32,
  type KnobName,
  type Knobs,
  type KnobsPatch,
} from './pspSimKnobs.ts';

// ---------------------------------------------------------------------------------------------
// Options, state, wire formats

export type SimulatorLogger = {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
};

export type PspSimulatorOptions = {
  port: number;
  host?: string;
  callbackUrl: string;
  webhookSecret: string;
  knobs?: Partial<Knobs>;
  seed?: number;
  /** Delay between acceptance and the outcome (before `lateCallbackMs`). */
  settleMs?: number;
  /** Delivery attempts per callback, the first included. */
  callbackRetryMax?: number;
  callbackBackoffBaseMs?: number;
  callbackBackoffMaxMs?: number;
  callbackTimeoutMs?: number;
  callbackConnectionsMax?: number;
  /** Beyond this many recorded payouts new references get 503: memory stays bounded. */
  payoutsMax?: number;
  logger?: SimulatorLogger;
};

const OptionsSchema = z.object({
  port: z.number().int().min(0).max(65_535),
  host: z.string().min(1).default('127.0.0.1'),
  callbackUrl: z
    .string()
    .url()
    .refine((url) => /^https?:$/.test(new URL(url).protocol), 'must be http(s)'),
  webhookSecret: z.string().min(1),
  seed: z.number().int().optional(),
  settleMs: z.number().int().min(0).max(KNOB_MS_MAX).default(5),
  callbackRetryMax: z.number().int().min(1).max(100).default(8),
  callbackBackoffBaseMs: z.number().int().min(1).max(60_000).default(50),
  callbackBackoffMaxMs: z.number().int().min(1).max(600_000).default(2_000),
  callbackTimeoutMs: z.number().int().min(100).max(120_000).default(5_000),
  callbackConnectionsMax: z.number().int().min(1).max(1_024).default(32),
  payoutsMax: z.number().int().min(1).max(50_000_000).default(5_000_000),
});

export type PspSimulator = {
  start(): Promise<{ url: string; port: number }>;
  stop(): Promise<void>;
  getKnobs(): Knobs;
  /** Validates like POST /control; throws (and changes nothing) on a bad patch. */
  setKnobs(partial: KnobsPatch): Knobs;
  stats(): PspSimulatorStats;
};

const REPLY_MISMATCH = JSON.stringify({ error: { code: 'idempotency_mismatch' } });
const REPLY_NOT_FOUND = JSON.stringify({ error: { code: 'not_found' } });
const REPLY_CAPACITY = JSON.stringify({ error: { code: 'capacity_exceeded' } });

const noopLogger: SimulatorLogger = { info() {}, warn() {}, error() {} };

// ---------------------------------------------------------------------------------------------
// The simulator

export function createPspSimulator(options: PspSimulatorOptions): PspSimulator {
  const settings = OptionsSchema.parse({ ...options, logger: undefined, knobs: undefined });
  const logger = options.logger ?? noopLogger;
  let knobs: Knobs = mergeKnobs(KNOBS_DEFAULT, options.knobs);
  const seed = settings.seed ?? randomInt(0, 2 ** 32);
  const random = mulberry32(seed);

  const timers = new Set<NodeJS.Timeout>();
  const heldResponses = new Set<ServerResponse>();
  let state: 'new' | 'started' | 'stopped' = 'new';
  const callbacks = createCallbackSender({
    ...settings,
    later,
    isStopped: () => state === 'stopped',
    warn: (obj, msg) => logger.warn(obj, msg),
  });
  const book = createPayoutBook({ settleMs: settings.settleMs, feeMinor: () => knobs.feeMinor, later, callbacks });

  /** Every delayed action goes through here so stop() can cancel all of them. */
  function later(delayMs: number, action: () => void): void {
    if (state === 'stopped') return;
    const timer = setTimeout(() => {
      timers.delete(timer);
      if (state !== 'stopped') action();
    }, delayMs);
    timers.add(timer);
  }

  function answerPayout(res: ServerResponse, status: number, body: string): void {
    const { latencyMs } = knobs;
    if (latencyMs === 0) send(res, status, body);
    else later(latencyMs, () => send(res, status, body));
  }

  function handleFirstRequest(res: ServerResponse, request: PayoutRequest): void {
    const answer = book.firstRequest(request, decide(random, knobs));
    if (answer === 'hang') {
      heldResponses.add(res);
      res.on('close', () => heldResponses.delete(res));
      return;
    }
    answerPayout(res, answer.status, answer.body);
  }

  function handlePostPayout(req: IncomingMessage, res: ServerResponse, raw: string) {
    const json = parseJson(raw);
    if (!json.ok) return answerPayout(res, 400, invalidRequest('body is not valid JSON', true));
    const parsed = PayoutRequestSchema.safeParse(json.value);
    if (!parsed.success) return answerPayout(res, 400, invalidRequest(zodMessage(parsed.error), true));
    const request = parsed.data;
    if (req.headers['idempotency-key'] !== request.reference) {
      return answerPayout(res, 400, invalidRequest('Idempotency-Key header must equal reference', true));
    }
    const existing = book.get(request.reference);
    if (existing !== undefined) {
      if (!sameRequest(existing, request)) return answerPayout(res, 409, REPLY_MISMATCH);
      return answerPayout(res, existing.replyStatus, existing.replyBody);
    }
    if (book.size() >= settings.payoutsMax) return answerPayout(res, 503, REPLY_CAPACITY);
    handleFirstRequest(res, request);
  }

  // --- other routes -----------------------------------------------------------------------

  function handleGetPayout(res: ServerResponse, encodedReference: string) {
    let reference: string;
    try {
      reference = decodeURIComponent(encodedReference);
    } catch {
      return send(res, 400, invalidRequest('reference is not valid percent-encoding', true));
    }
    const entry = book.get(reference);
    // the payout's own 404 names it, so a client can tell it from a 404 of a wrong route or proxy
    if (entry === undefined) return send(res, 404, JSON.stringify({ error: { code: 'payout_not_found', reference } }));
    send(res, 200, publicPayout(entry));
  }

  function setKnobs(partial: KnobsPatch): Knobs {
    const patch = KnobsPatchSchema.parse(partial);
    knobs = { ...knobs, ...patch };
    logger.info({ knobs }, 'psp-sim: knobs changed');
    return { ...knobs };
  }

  function handlePostControl(res: ServerResponse, raw: string) {
    const json = parseJson(raw);
    if (!json.ok) return send(res, 400, invalidRequest('body is not valid JSON', false));
    const parsed = KnobsPatchSchema.safeParse(json.value);
    if (!parsed.success) return send(res, 400, invalidRequest(zodMessage(parsed.error), false));
    send(res, 200, JSON.stringify(setKnobs(parsed.data)));
  }

  function stats(): PspSimulatorStats {
    return { ...book.stats(), ...callbacks.counters() };
  }

  function route(req: IncomingMessage, res: ServerResponse) {
    const url = req.url ?? '/';
    const queryStart = url.indexOf('?');
    const path = queryStart === -1 ? url : url.slice(0, queryStart);
    const method = req.method ?? 'GET';
    if (method === 'POST' && path === '/payouts')
      return readBody(req, res, (raw) => guarded(req, res, () => handlePostPayout(req, res, raw)));
    if (method === 'GET' && path.startsWith('/payouts/') && path.length > '/payouts/'.length) {
      return handleGetPayout(res, path.slice('/payouts/'.length));
    }
    if (method === 'GET' && path === '/stats') return send(res, 200, JSON.stringify(stats()));
    if (method === 'GET' && path === '/settlements') return sendStatement(res, url, book.statement);
    if (method === 'GET' && path === '/control') return send(res, 200, JSON.stringify(knobs));
    if (method === 'POST' && path === '/control') return readBody(req, res, (raw) => guarded(req, res, () => handlePostControl(res, raw)));
    send(res, 404, REPLY_NOT_FOUND);
  }

  /** A bug (or a broken invariant) answers 500 and is logged, instead of killing the host process. */
  function guarded(req: IncomingMessage, res: ServerResponse, action: () => void): void {
    try {
      action();
    } catch (error) {
      logger.error({ err: error, url: req.url }, 'psp-sim: request handler failed');
      send(res, 500, REPLY_INTERNAL_ERROR);
    }
  }

  const server = createServer((req, res) => guarded(req, res, () => route(req, res)));

  async function start(): Promise<{ url: string; port: number }> {
    if (state !== 'new') throw new Error('psp-sim: start() may be called once');
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(settings.port, settings.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    state = 'started';
    const { port } = server.address() as AddressInfo;
    const host = settings.host.includes(':') ? `[${settings.host}]` : settings.host;
    const url = `http://${host}:${port}`;
    logger.info({ url, callbackUrl: settings.callbackUrl, seed, knobs }, 'psp-sim: listening');
    return { url, port };
  }

  async function stop(): Promise<void> {
    if (state === 'stopped') return;
    const wasStarted = state === 'started';
    state = 'stopped';
    for (const timer of timers) clearTimeout(timer);
    timers.clear();
    for (const res of heldResponses) res.socket?.destroy();
    heldResponses.clear();
    if (wasStarted) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections(); // keep-alive clients would otherwise hold close() open
      await closed;
    }
    await callbacks.close();
    logger.info({}, 'psp-sim: stopped');
  }

  return { start, stop, getKnobs: () => ({ ...knobs }), setKnobs, stats };
}
