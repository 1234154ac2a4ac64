// Fault knobs of the payout provider simulator, their environment form, and the seeded decisions
// they drive. Pure: no I/O, no clock.
import { z } from 'zod';

/** Upper bound of every millisecond knob (10 minutes): enough for any fault scenario. */
export const KNOB_MS_MAX = 600_000;

const rateKnob = z.number().min(0).max(1);
const msKnob = z.number().int().min(0).max(KNOB_MS_MAX);
/** Upper bound of the fee knob, in the smallest unit the amount is written in. */
export const KNOB_FEE_MINOR_MAX = 1_000_000;
const feeKnob = z.number().int().min(0).max(KNOB_FEE_MINOR_MAX);

export const KnobsSchema = z
  .object({
    latencyMs: msKnob,
    rejectRate: rateKnob,
    errorRate: rateKnob,
    hangRate: rateKnob,
    failAfterAcceptRate: rateKnob,
    duplicateCallbackRate: rateKnob,
    lateCallbackMs: msKnob,
    dropCallbackRate: rateKnob,
    reverseAfterPaidRate: rateKnob,
    // the provider's fee on each paid payout, in the smallest unit of the amount as written
    // ("10.00" → cents): shown on the settlement statement, never taken from the payout itself
    feeMinor: feeKnob,
  })
  .strict();
export type Knobs = z.infer<typeof KnobsSchema>;
export type KnobName = keyof Knobs;

/** What POST /control and setKnobs() accept: any subset, nothing unknown. */
export const KnobsPatchSchema = KnobsSchema.partial().strict();
export type KnobsPatch = z.infer<typeof KnobsPatchSchema>;

export const KNOBS_DEFAULT: Readonly<Knobs> = Object.freeze({
  latencyMs: 0,
  rejectRate: 0,
  errorRate: 0,
  hangRate: 0,
  failAfterAcceptRate: 0,
  duplicateCallbackRate: 0,
  lateCallbackMs: 0,
  dropCallbackRate: 0,
  reverseAfterPaidRate: 0,
  feeMinor: 0,
});

const KNOB_NAMES = Object.keys(KnobsSchema.shape) as KnobName[];
const ENV_NUMBER_PATTERN = /^\d+(\.\d+)?$/;

/** `latencyMs` → `PSP_SIM_LATENCY_MS`. */
export function knobEnvName(name: KnobName): string {
  return `PSP_SIM_${name.replace(/[A-Z]/g, (letter) => `_${letter}`).toUpperCase()}`;
}

function knobRule(name: KnobName): string {
  if (name === 'feeMinor') return `an integer in [0, ${KNOB_FEE_MINOR_MAX}]`;
  return name.endsWith('Ms') ? `an integer number of milliseconds in [0, ${KNOB_MS_MAX}]` : 'a number in [0, 1]';
}

/** `base` with the given knobs applied; undefined entries are ignored. Throws on a bad value. */
export function mergeKnobs(base: Knobs, partial: Partial<Knobs> | undefined): Knobs {
  const given = Object.entries(partial ?? {}).filter(([, value]) => value !== undefined);
  return KnobsSchema.parse({ ...base, ...Object.fromEntries(given) });
}

/** Reads every knob from `PSP_SIM_*`; unset or empty means the default (0). Throws naming the variable. */
export function knobsFromEnv(env: Readonly<Record<string, string | undefined>>): Knobs {
  const knobs: Knobs = { ...KNOBS_DEFAULT };
  for (const name of KNOB_NAMES) {
    const variable = knobEnvName(name);
    const text = env[variable]?.trim();
    if (text === undefined || text === '') continue;
    const parsed = KnobsSchema.shape[name].safeParse(ENV_NUMBER_PATTERN.test(text) ? Number(text) : Number.NaN);
    if (!parsed.success) throw new Error(`${variable} must be ${knobRule(name)}, got "${text}"`);
    knobs[name] = parsed.data;
  }
  return knobs;
}

// ---------------------------------------------------------------------------------------------
// Decisions

/** mulberry32: tiny, fast, seedable; the same seed gives the same sequence. Not for secrets. */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let mixed = state;
    mixed = Math.imul(mixed ^ (mixed >>> 15), mixed | 1);
    mixed ^= mixed + Math.imul(mixed ^ (mixed >>> 7), mixed | 61);
    return ((mixed ^ (mixed >>> 14)) >>> 0) / 4_294_967_296;
  };
}

export type CallbackPlan = { drop: boolean; duplicate: boolean };
export type Decision = {
  kind: 'hang' | 'error' | 'error_executed' | 'reject' | 'accept';
  outcome: 'paid' | 'failed';
  settleExtraMs: number;
  outcomeCallback: CallbackPlan;
  reverse: boolean;
  reverseDelayMs: number;
  reversalCallback: CallbackPlan;
};

/** A reversal follows its `paid` at least this much later, so the two are rarely simultaneous. */
const REVERSAL_DELAY_MIN_MS = 5;

/**
 * Decides everything about a first request at once, drawing the same number of values whatever
 * the knobs, so that one seed and one request order give one history even when callbacks race.
 */
export function decide(random: () => number, knobs: Knobs): Decision {
  const hang = random() < knobs.hangRate;
  const error = random() < knobs.errorRate;
  const executedBeforeError = random() < 0.5;
  const reject = random() < knobs.rejectRate;
  const failed = random() < knobs.failAfterAcceptRate;
  const settleExtraMs = Math.floor(random() * (knobs.lateCallbackMs + 1));
  const outcomeCallback = { drop: random() < knobs.dropCallbackRate, duplicate: random() < knobs.duplicateCallbackRate };
  const reverse = random() < knobs.reverseAfterPaidRate;
  const reverseDelayMs = REVERSAL_DELAY_MIN_MS + Math.floor(random() * knobs.lateCallbackMs);
  const reversalCallback = { drop: random() < knobs.dropCallbackRate, duplicate: random() < knobs.duplicateCallbackRate };
  const kind = hang ? 'hang' : error ? (executedBeforeError ? 'error_executed' : 'error') : reject ? 'reject' : 'accept';
  const outcome = failed ? 'failed' : 'paid';
  return { kind, outcome, settleExtraMs, outcomeCallback, reverse: reverse && outcome === 'paid', reverseDelayMs, reversalCallback };
}
