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
import { invalidRequest, parseJson, readBody, send, zodMessage } from './pspSimHttp.ts';
import { createCallbackSender, type CallbackCounters, type CallbackEvent } from './pspSimCallbacks.ts';
import {
  KNOB_MS_MAX,
  KNOBS_DEFAULT,
  KnobsPatchSchema,
  decide,
  mergeKnobs,
  mulberry32,
  type Decision,
  type Knobs,
  type KnobsPatch,
} from './pspSimKnobs.ts';

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

export type PayoutStatus = 'pending' | 'paid' | 'failed';

type PayoutRecord = {
  reference: string;
  amount: string;
  currency: string;
  destination: string;
  status: PayoutStatus;
  failureCode?: string;
  updatedAt: string;
  /** The first answer, replayed verbatim to every repeat. */
  replyStatus: number;
  replyBody: string;
};

export type PspSimulatorStats = CallbackCounters & {
  executed: Record<string, number>;
  payouts: number;
  accepted: number;
  rejected: number;
  errors: number;
  hangs: number;
  reversed: string[];
};

export type PspSimulator = {
  start(): Promise<{ url: string; port: number }>;
  stop(): Promise<void>;
  getKnobs(): Knobs;
  /** Validates like POST /control; throws (and changes nothing) on a bad patch. */
  setKnobs(partial: KnobsPatch): Knobs;
  stats(): PspSimulatorStats;
};

const PayoutRequestSchema = z.object({
  reference: z.string().min(1).max(128),
  amount: z
    .string()
    .regex(/^\d{1,20}(\.\d{1,8})?$/, 'must be a positive decimal string')
    .refine((a) => /[1-9]/.test(a), 'must be positive'),
  currency: z.string().regex(/^[A-Z]{3}$/, 'must be an ISO-4217 code'),
  destination: z.string().min(1).max(256),
});
type PayoutRequest = z.infer<typeof PayoutRequestSchema>;

const FAILED_AFTER_ACCEPT_CODE = 'beneficiary_bank_rejected';
const REJECT_CODE = 'destination_account_closed';
const REVERSED_CODE = 'payout_reversed';

const REPLY_INTERNAL_ERROR = JSON.stringify({ error: { code: 'internal_error' } });
const REPLY_MISMATCH = JSON.stringify({ error: { code: 'idempotency_mismatch' } });
const REPLY_NOT_FOUND = JSON.stringify({ error: { code: 'not_found' } });
const REPLY_CAPACITY = JSON.stringify({ error: { code: 'capacity_exceeded' } });
const REPLY_REJECTED = JSON.stringify({ error: { code: 'payout_rejected', reason: REJECT_CODE }, definitive: true });

function publicPayout(record: PayoutRecord): string {
  const { reference, status, failureCode, amount, currency, destination, updatedAt } = record;
  return JSON.stringify({
    reference,
    status,
    ...(failureCode === undefined ? {} : { failureCode }),
    amount,
    currency,
    destination,
    updatedAt,
  });
}

function callbackEvent(record: PayoutRecord): CallbackEvent {
  if (record.status === 'pending') throw new Error(`psp-sim invariant broken: callback for pending ${record.reference}`);
  const { reference, status, failureCode, updatedAt } = record;
  return { reference, status, ...(failureCode === undefined ? {} : { failureCode }), occurredAt: updatedAt };
}

function sameRequest(record: PayoutRecord, request: PayoutRequest): boolean {
  return record.amount === request.amount && record.currency === request.currency && record.destination === request.destination;
}

const noopLogger: SimulatorLogger = { info() {}, warn() {}, error() {} };

// ---------------------------------------------------------------------------------------------
// The simulator

export function createPspSimulator(options: PspSimulatorOptions): PspSimulator {
  const settings = OptionsSchema.parse({ ...options, logger: undefined, knobs: undefined });
  const logger = options.logger ?? noopLogger;
  let knobs: Knobs = mergeKnobs(KNOBS_DEFAULT, options.knobs);
  const seed = settings.seed ?? randomInt(0, 2 ** 32);
  const random = mulberry32(seed);

  const payouts = new Map<string, PayoutRecord>();
  const executed = new Map<string, number>();
  const reversed: string[] = [];
  const counters = { accepted: 0, rejected: 0, errors: 0, hangs: 0 };
  const timers = new Set<NodeJS.Timeout>();
  const heldResponses = new Set<ServerResponse>();
  let state: 'new' | 'started' | 'stopped' = 'new';
  const callbacks = createCallbackSender({
    ...settings,
    later,
    isStopped: () => state === 'stopped',
    warn: (obj, msg) => logger.warn(obj, msg),
  });

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

  function setStatus(record: PayoutRecord, status: PayoutStatus, failureCode?: string): void {
    record.status = status;
    if (failureCode === undefined) delete record.failureCode;
    else record.failureCode = failureCode;
    record.updatedAt = new Date().toISOString();
  }

  // --- payout lifecycle -------------------------------------------------------------------

  function settle(record: PayoutRecord, decision: Decision): void {
    setStatus(record, decision.outcome, decision.outcome === 'failed' ? FAILED_AFTER_ACCEPT_CODE : undefined);
    callbacks.emit(callbackEvent(record), decision.outcomeCallback);
    if (decision.reverse) later(decision.reverseDelayMs, () => reverse(record, decision));
  }

  function reverse(record: PayoutRecord, decision: Decision): void {
    setStatus(record, 'failed', REVERSED_CODE);
    reversed.push(record.reference);
    callbacks.emit(callbackEvent(record), decision.reversalCallback);
  }

  function record(
    request: PayoutRequest,
    status: PayoutStatus,
    replyStatus: number,
    replyBody: string,
    failureCode?: string,
  ): PayoutRecord {
    const entry: PayoutRecord = { ...request, status, updatedAt: new Date().toISOString(), replyStatus, replyBody };
    if (failureCode !== undefined) entry.failureCode = failureCode;
    payouts.set(request.reference, entry);
    return entry;
  }

  /** The one place money moves. */
  function execute(request: PayoutRequest, decision: Decision): PayoutRecord {
    if (executed.has(request.reference)) {
      throw new Error(`psp-sim invariant broken: payout ${request.reference} executed twice`);
    }
    const entry = record(request, 'pending', 202, JSON.stringify({ reference: request.reference, status: 'pending' }));
    executed.set(request.reference, 1);
    counters.accepted += 1;
    later(settings.settleMs + decision.settleExtraMs, () => settle(entry, decision));
    return entry;
  }

  /** A first request for `request.reference`: the knobs decide its fate. */
  function handleFirstRequest(res: ServerResponse, request: PayoutRequest): void {
    const decision = decide(random, knobs);
    switch (decision.kind) {
      case 'hang':
        counters.hangs += 1;
        heldResponses.add(res);
        res.on('close', () => heldResponses.delete(res));
        return;
      case 'error_executed':
        execute(request, decision);
        counters.errors += 1;
        return answerPayout(res, 500, REPLY_INTERNAL_ERROR);
      case 'error':
        counters.errors += 1;
        return answerPayout(res, 500, REPLY_INTERNAL_ERROR);
      case 'reject':
        counters.rejected += 1;
        record(request, 'failed', 422, REPLY_REJECTED, REJECT_CODE);
        return answerPayout(res, 422, REPLY_REJECTED);
      case 'accept': {
        const entry = execute(request, decision);
        return answerPayout(res, entry.replyStatus, entry.replyBody);
      }
    }
  }

  function handlePostPayout(req: IncomingMessage, res: ServerResponse, raw: string): void {
    const json = parseJson(raw);
    if (!json.ok) return answerPayout(res, 400, invalidRequest('body is not valid JSON', true));
    const parsed = PayoutRequestSchema.safeParse(json.value);
    if (!parsed.success) return answerPayout(res, 400, invalidRequest(zodMessage(parsed.error), true));
    const request = parsed.data;
    if (req.headers['idempotency-key'] !== request.reference) {
      return answerPayout(res, 400, invalidRequest('Idempotency-Key header must equal reference', true));
    }
    const existing = payouts.get(request.reference);
    if (existing !== undefined) {
      if (!sameRequest(existing, request)) return answerPayout(res, 409, REPLY_MISMATCH);
      return answerPayout(res, existing.replyStatus, existing.replyBody);
    }
    if (payouts.size >= settings.payoutsMax) return answerPayout(res, 503, REPLY_CAPACITY);
    handleFirstRequest(res, request);
  }

  // --- other routes -----------------------------------------------------------------------

  function handleGetPayout(res: ServerResponse, encodedReference: string): void {
    let reference: string;
    try {
      reference = decodeURIComponent(encodedReference);
    } catch {
      return send(res, 400, invalidRequest('reference is not valid percent-encoding', true));
    }
    const entry = payouts.get(reference);
    if (entry === undefined) return send(res, 404, REPLY_NOT_FOUND);
    send(res, 200, publicPayout(entry));
  }

  function setKnobs(partial: KnobsPatch): Knobs {
    const patch = KnobsPatchSchema.parse(partial);
    knobs = { ...knobs, ...patch };
    logger.info({ knobs }, 'psp-sim: knobs changed');
    return { ...knobs };
  }

  function handlePostControl(res: ServerResponse, raw: string): void {
    const json = parseJson(raw);
    if (!json.ok) return send(res, 400, invalidRequest('body is not valid JSON', false));
    const parsed = KnobsPatchSchema.safeParse(json.value);
    if (!parsed.success) return send(res, 400, invalidRequest(zodMessage(parsed.error), false));
    send(res, 200, JSON.stringify(setKnobs(parsed.data)));
  }

  function stats(): PspSimulatorStats {
    return { executed: Object.fromEntries(executed), payouts: payouts.size, ...counters, ...callbacks.counters(), reversed: [...reversed] };
  }

  function route(req: IncomingMessage, res: ServerResponse): void {
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
