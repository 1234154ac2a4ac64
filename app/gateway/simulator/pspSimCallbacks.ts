// Callback delivery of the payout provider simulator: signed POSTs to the system's
// /withdraw/notify over a keep-alive undici Pool, retried with capped exponential backoff.
// Fire and forget: nothing here blocks request handling.
import { randomUUID } from 'node:crypto';
import { Pool } from 'undici';
import { signWebhook } from '../webhookSignature.ts';
import type { CallbackPlan } from './pspSimKnobs.ts';

export type CallbackEvent = {
  reference: string;
  status: 'paid' | 'failed';
  failureCode?: string;
  occurredAt: string;
};

export type CallbackSenderSettings = {
  callbackUrl: string;
  webhookSecret: string;
  /** Delivery attempts per callback, the first included. */
  callbackRetryMax: number;
  callbackBackoffBaseMs: number;
  callbackBackoffMaxMs: number;
  callbackTimeoutMs: number;
  callbackConnectionsMax: number;
  /** Schedules a retry; the owner cancels these on stop. */
  later: (delayMs: number, action: () => void) => void;
  isStopped: () => boolean;
  warn: (obj: object, msg: string) => void;
};

export type CallbackCounters = {
  callbacksSent: number;
  callbacksDropped: number;
  callbacksDuplicated: number;
  callbacksFailed: number;
};

export type CallbackSender = {
  /** Sends (or drops, or duplicates) one event, with a new eventId. */
  emit(event: CallbackEvent, plan: CallbackPlan): void;
  counters(): CallbackCounters;
  /** Aborts in-flight deliveries. */
  close(): Promise<void>;
};

export function createCallbackSender(settings: CallbackSenderSettings): CallbackSender {
  const url = new URL(settings.callbackUrl);
  const path = `${url.pathname}${url.search}`;
  const pool = new Pool(url.origin, { connections: settings.callbackConnectionsMax });
  const counters: CallbackCounters = { callbacksSent: 0, callbacksDropped: 0, callbacksDuplicated: 0, callbacksFailed: 0 };

  async function post(rawBody: string): Promise<boolean> {
    try {
      // Signed at send time, so a retry minutes later still carries a fresh timestamp.
      const signature = signWebhook(settings.webhookSecret, rawBody, Math.floor(Date.now() / 1000));
      const response = await pool.request({
        path,
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-signature': signature },
        body: rawBody,
        headersTimeout: settings.callbackTimeoutMs,
        bodyTimeout: settings.callbackTimeoutMs,
      });
      await response.body.dump(); // frees the keep-alive connection
      return response.statusCode >= 200 && response.statusCode < 300;
    } catch {
      return false; // network error or timeout: retried like a non-2xx
    }
  }

  function backoffMs(attempt: number): number {
    return Math.min(settings.callbackBackoffBaseMs * 2 ** (attempt - 1), settings.callbackBackoffMaxMs);
  }

  function deliver(rawBody: string, reference: string, attempt: number): void {
    void post(rawBody).then((delivered) => {
      if (settings.isStopped()) return;
      if (delivered) {
        counters.callbacksSent += 1;
      } else if (attempt >= settings.callbackRetryMax) {
        counters.callbacksFailed += 1;
        settings.warn({ reference, attempts: attempt }, 'psp-sim: callback delivery given up');
      } else {
        settings.later(backoffMs(attempt), () => deliver(rawBody, reference, attempt + 1));
      }
    });
  }

  function emit(event: CallbackEvent, plan: CallbackPlan): void {
    if (plan.drop) {
      counters.callbacksDropped += 1;
      return;
    }
    const { reference, status, failureCode, occurredAt } = event;
    const body = { eventId: randomUUID(), reference, status, ...(failureCode === undefined ? {} : { failureCode }), occurredAt };
    const rawBody = JSON.stringify(body);
    deliver(rawBody, reference, 1);
    if (plan.duplicate) {
      counters.callbacksDuplicated += 1;
      deliver(rawBody, reference, 1); // the same bytes, so the same eventId
    }
  }

  return { emit, counters: () => ({ ...counters }), close: () => pool.destroy() };
}
