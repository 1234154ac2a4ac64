// Sending outgoing events. One round per endpoint (the job webhook__deliver): claim the heads of
// its (endpoint, order) chains that are due, at most WEBHOOK_ENDPOINT_CONCURRENCY in flight, POST
// them at once, each signed with the endpoint's secret exactly as providers sign their callbacks to
// us (X-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">), with bounded connect and
// response deadlines; record what came back and schedule the endpoint's next round, in one
// transaction. A round holds a worker slot for at most one request's deadline, and at most
// WEBHOOK_JOBS_MAX rounds run at once per worker process.
//
// Isolation: a slow or hanging endpoint must never take what another endpoint needs. So, in a
// worker process, an endpoint has at most ONE round running at a time (a round asked for meanwhile
// is left to the running one, which goes again when it ends), so one endpoint holds at most one of
// the WEBHOOK_JOBS_MAX rounds (at least 2); and the HTTP connections are never what an endpoint
// waits for: there are as many per origin as this process can have requests open (rounds ×
// requests per round), so two endpoints on one host never queue behind each other's sockets.
import { Agent, request } from 'undici';
import type { CommonQueryMethods, DatabasePool } from 'slonik';
import { signWebhook } from '../gateway/webhookSignature.ts';
import {
  claimDeliveries,
  recordResults,
  wakeEndpoint,
  type ClaimedDelivery,
  type DeliveryResult,
  type DeliverySchedule,
} from './webhookQueries.ts';

export type WebhookSettings = Readonly<{
  timeoutMs: number;
  connectTimeoutMs: number;
  endpointConcurrency: number;
  jobsMax: number;
  retryBaseMs: number;
  retryMaxMs: number;
  retryHorizonHours: number;
  disableAfterHours: number;
}>;

const RESPONSE_TEXT_LENGTH_MAX = 200;
/** A round that finds the process's rounds all busy comes back this much later. */
const BUSY_RETRY_MS = 250;
const USER_AGENT = 'withdraw-system-webhooks/1';

/**
 * busy: every round of this process was taken (by other endpoints), it comes back BUSY_RETRY_MS later;
 * deferred: this endpoint's round is already running here, and goes again when it ends.
 */
export type RoundOutcome = Readonly<{ sent: number; delivered: number; busy: boolean; deferred: boolean; disabled: boolean }>;

/** The body every delivery of an event carries: the same bytes on every attempt and to every endpoint. */
export function eventBody(delivery: Pick<ClaimedDelivery, 'eventId' | 'type' | 'occurredAt' | 'data'>): string {
  return JSON.stringify({
    eventId: delivery.eventId,
    type: delivery.type,
    createdAt: new Date(delivery.occurredAt).toISOString(),
    data: delivery.data,
  });
}

export function createWebhookSender(settings: WebhookSettings, clock: { nowMs: () => number } = { nowMs: () => Date.now() }) {
  const agent = new Agent({
    connect: { timeout: settings.connectTimeoutMs },
    // per origin: every request this process can have open at once (a round sends at most
    // endpointConcurrency), so a request never waits for a socket another endpoint's request holds
    connections: settings.jobsMax * settings.endpointConcurrency,
    headersTimeout: settings.timeoutMs,
    bodyTimeout: settings.timeoutMs,
    keepAliveTimeout: 10_000,
  });
  const schedule: DeliverySchedule = {
    retryBaseMs: settings.retryBaseMs,
    retryMaxMs: settings.retryMaxMs,
    horizonMs: settings.retryHorizonHours * 3_600_000,
    disableAfterMs: settings.disableAfterHours * 3_600_000,
  };
  // the lease outlives a request's deadline, so a delivery in flight is never claimed twice
  const leaseMs = settings.timeoutMs + settings.connectTimeoutMs + 5_000;
  let running = 0;
  // the endpoints with a round running in this process, and those asked for again meanwhile
  const active = new Set<string>();
  const again = new Set<string>();

  async function send(delivery: ClaimedDelivery, signal: AbortSignal | undefined): Promise<DeliveryResult> {
    const body = eventBody(delivery);
    const deadline = AbortSignal.timeout(settings.timeoutMs);
    const base = { deliveryId: delivery.deliveryId.toString() };
    try {
      const response = await request(delivery.url, {
        method: 'POST',
        dispatcher: agent,
        headers: {
          'content-type': 'application/json',
          'user-agent': USER_AGENT,
          'x-signature': signWebhook(delivery.secret, body, Math.floor(clock.nowMs() / 1000)),
          'x-event-id': delivery.eventId,
          'x-event-type': delivery.type,
          'x-delivery-attempt': String(delivery.attempts),
        },
        body,
        signal: signal ? AbortSignal.any([signal, deadline]) : deadline,
      });
      const text = await readBounded(response.body);
      if (response.statusCode >= 200 && response.statusCode < 300) {
        return { ...base, delivered: true, statusCode: response.statusCode, error: null };
      }
      return { ...base, delivered: false, statusCode: response.statusCode, error: `HTTP ${response.statusCode}${text ? `: ${text}` : ''}` };
    } catch (error) {
      return { ...base, delivered: false, statusCode: null, error: describeError(error) };
    }
  }

  /** One round for one endpoint; returns what it did. */
  async function deliverRound(db: DatabasePool, endpointId: string, signal?: AbortSignal): Promise<RoundOutcome> {
    // one round per endpoint at a time here: a hanging endpoint holds one round, never all of them
    if (active.has(endpointId)) {
      again.add(endpointId);
      return { sent: 0, delivered: 0, busy: false, deferred: true, disabled: false };
    }
    // the rounds running in this process are bounded: the worker's other slots belong to the money path
    if (running >= settings.jobsMax) {
      await wakeEndpoint(db, endpointId, BUSY_RETRY_MS);
      return { sent: 0, delivered: 0, busy: true, deferred: false, disabled: false };
    }
    running += 1;
    active.add(endpointId);
    let outcome: RoundOutcome;
    try {
      outcome = await sendRound(db, endpointId, signal);
    } finally {
      running -= 1;
      active.delete(endpointId);
    }
    // a round deferred to this one after it scheduled the next (a wake racing its end) is not lost
    if (again.delete(endpointId)) await wakeEndpoint(db, endpointId);
    return outcome;
  }

  async function sendRound(db: DatabasePool, endpointId: string, signal: AbortSignal | undefined): Promise<RoundOutcome> {
    const claimed = await claimDeliveries(db, { endpointId, limit: settings.endpointConcurrency, leaseMs });
    const sent = await Promise.all(claimed.map((delivery) => send(delivery, signal)));
    // stopping (SIGTERM): what was cut short is not the endpoint's failure; its lease runs out and
    // it goes again (at least once)
    const results = signal?.aborted ? sent.filter((r) => r.delivered) : sent;
    const recorded = await record(db, endpointId, results);
    return {
      sent: sent.length,
      delivered: results.filter((r) => r.delivered).length,
      busy: false,
      deferred: false,
      disabled: recorded.disabled,
    };
  }

  function record(db: CommonQueryMethods, endpointId: string, results: readonly DeliveryResult[]) {
    return recordResults(db, { endpointId, results, schedule });
  }

  return { deliverRound, close: () => agent.close() };
}

export type WebhookSender = ReturnType<typeof createWebhookSender>;

function describeError(error: unknown): string {
  const e = error as { name?: string; code?: string; message?: string };
  const text = [e.name, e.code, e.message].filter(Boolean).join(': ') || 'transport error';
  return text.toWellFormed().replaceAll('\u0000', '\ufffd').slice(0, 300);
}

async function readBounded(body: AsyncIterable<Buffer | Uint8Array>): Promise<string> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of body) {
    // keep draining so the connection can be reused; keep only the start, for the operators
    if (length < RESPONSE_TEXT_LENGTH_MAX * 4) chunks.push(Buffer.from(chunk));
    length += chunk.length;
  }
  return Buffer.concat(chunks).toString('utf8').toWellFormed().replaceAll('\u0000', '\ufffd').slice(0, RESPONSE_TEXT_LENGTH_MAX);
}
