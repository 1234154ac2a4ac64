// The simulator's book of payouts: what it was asked, what it executed (the one place money would
// move), and each payout's life after acceptance (settled paid or failed, perhaps reversed later),
// with the callbacks those steps send. No HTTP here: pspSimulator.ts routes requests to it.
import { z } from 'zod';
import type { CallbackCounters, CallbackEvent, CallbackSender } from './pspSimCallbacks.ts';
import type { Decision } from './pspSimKnobs.ts';

export const PayoutRequestSchema = z.object({
  reference: z.string().min(1).max(128),
  amount: z
    .string()
    .regex(/^\d{1,20}(\.\d{1,8})?$/, 'must be a positive decimal string')
    .refine((a) => /[1-9]/.test(a), 'must be positive'),
  currency: z.string().regex(/^[A-Z]{3}$/, 'must be an ISO-4217 code'),
  destination: z.string().min(1).max(256),
});
export type PayoutRequest = z.infer<typeof PayoutRequestSchema>;

export type PayoutStatus = 'pending' | 'paid' | 'failed';

export type PayoutRecord = {
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

export type PayoutBookStats = {
  executed: Record<string, number>;
  payouts: number;
  accepted: number;
  rejected: number;
  errors: number;
  hangs: number;
  reversed: string[];
};
export type PspSimulatorStats = CallbackCounters & PayoutBookStats;

const FAILED_AFTER_ACCEPT_CODE = 'beneficiary_bank_rejected';
const REJECT_CODE = 'destination_account_closed';
const REVERSED_CODE = 'payout_reversed';

export const REPLY_INTERNAL_ERROR = JSON.stringify({ error: { code: 'internal_error' } });
const REPLY_REJECTED = JSON.stringify({ error: { code: 'payout_rejected', reason: REJECT_CODE }, definitive: true });

export function publicPayout(record: PayoutRecord): string {
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

export function sameRequest(record: PayoutRecord, request: PayoutRequest): boolean {
  return record.amount === request.amount && record.currency === request.currency && record.destination === request.destination;
}

/** One line of a daily settlement statement (contract: GET /settlements). */
export type SettlementLine = Readonly<{
  reference: string;
  amount: string;
  currency: string;
  status: 'paid' | 'reversed';
  settledAt: string;
  fee: string;
}>;

export const SETTLEMENT_HEADER = 'reference,amount,currency,status,settledAt,fee';

/**
 * `feeMinor` of the smallest unit the amount is written in, as a decimal string with the same
 * number of decimals ("10.00" and 25 → "0.25"; "1500" and 3 → "3"). Digits only, no arithmetic
 * on amounts: the simulator never does money arithmetic.
 */
export function feeText(amount: string, feeMinor: number): string {
  const decimals = amount.includes('.') ? amount.length - amount.indexOf('.') - 1 : 0;
  const digits = String(feeMinor).padStart(decimals + 1, '0');
  return decimals === 0 ? digits : `${digits.slice(0, -decimals)}.${digits.slice(-decimals)}`;
}

function csvField(text: string): string {
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** RFC 4180 (CRLF), the header first, the lines in the order they settled. */
export function settlementCsv(lines: readonly SettlementLine[]): string {
  const rows = lines.map((l) => [l.reference, l.amount, l.currency, l.status, l.settledAt, l.fee].map(csvField).join(','));
  return [SETTLEMENT_HEADER, ...rows].map((row) => `${row}\r\n`).join('');
}

/** What a first request gets: never answered, or a status and body. */
export type FirstAnswer = 'hang' | { status: number; body: string };

export function createPayoutBook(deps: {
  settleMs: number;
  /** the fee knob at the moment a payout is paid */
  feeMinor: () => number;
  /** schedules a delayed action that the simulator cancels on stop */
  later: (delayMs: number, action: () => void) => void;
  callbacks: CallbackSender;
}) {
  const { later, callbacks } = deps;
  const payouts = new Map<string, PayoutRecord>();
  const executed = new Map<string, number>();
  const reversed: string[] = [];
  /** every paid and reversed payout, in the order it happened: the statements are cut from it by UTC day */
  const settlements: SettlementLine[] = [];
  const counters = { accepted: 0, rejected: 0, errors: 0, hangs: 0 };

  function setStatus(record: PayoutRecord, status: PayoutStatus, failureCode?: string): void {
    record.status = status;
    if (failureCode === undefined) delete record.failureCode;
    else record.failureCode = failureCode;
    record.updatedAt = new Date().toISOString();
  }

  function settlementLine(record: PayoutRecord, status: SettlementLine['status'], fee: string): SettlementLine {
    return { reference: record.reference, amount: record.amount, currency: record.currency, status, settledAt: record.updatedAt, fee };
  }

  function settle(record: PayoutRecord, decision: Decision): void {
    setStatus(record, decision.outcome, decision.outcome === 'failed' ? FAILED_AFTER_ACCEPT_CODE : undefined);
    if (record.status === 'paid') settlements.push(settlementLine(record, 'paid', feeText(record.amount, deps.feeMinor())));
    callbacks.emit(callbackEvent(record), decision.outcomeCallback);
    if (decision.reverse) later(decision.reverseDelayMs, () => reverse(record, decision));
  }

  function reverse(record: PayoutRecord, decision: Decision): void {
    setStatus(record, 'failed', REVERSED_CODE);
    reversed.push(record.reference);
    settlements.push(settlementLine(record, 'reversed', feeText(record.amount, 0)));
    callbacks.emit(callbackEvent(record), decision.reversalCallback);
  }

  function record(request: PayoutRequest, status: PayoutStatus, replyStatus: number, replyBody: string, failureCode?: string) {
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
    later(deps.settleMs + decision.settleExtraMs, () => settle(entry, decision));
    return entry;
  }

  /** A first request for `request.reference`: the decision (drawn from the knobs) seals its fate. */
  function firstRequest(request: PayoutRequest, decision: Decision): FirstAnswer {
    switch (decision.kind) {
      case 'hang':
        counters.hangs += 1;
        return 'hang';
      case 'error_executed':
        execute(request, decision);
        counters.errors += 1;
        return { status: 500, body: REPLY_INTERNAL_ERROR };
      case 'error':
        counters.errors += 1;
        return { status: 500, body: REPLY_INTERNAL_ERROR };
      case 'reject':
        counters.rejected += 1;
        record(request, 'failed', 422, REPLY_REJECTED, REJECT_CODE);
        return { status: 422, body: REPLY_REJECTED };
      case 'accept': {
        const entry = execute(request, decision);
        return { status: entry.replyStatus, body: entry.replyBody };
      }
    }
  }

  function stats(): PayoutBookStats {
    return { executed: Object.fromEntries(executed), payouts: payouts.size, ...counters, reversed: [...reversed] };
  }

  /** The statement of one UTC day (YYYY-MM-DD): the lines whose settledAt falls on it. */
  function statement(date: string): SettlementLine[] {
    return settlements.filter((line) => line.settledAt.startsWith(date));
  }

  return { get: (reference: string) => payouts.get(reference), size: () => payouts.size, firstRequest, stats, statement };
}

export type PayoutBook = ReturnType<typeof createPayoutBook>;
