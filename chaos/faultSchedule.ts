// The fault schedule of a chaos run, drawn entirely from the seed before the run starts: the same
// seed (and the same duration and worker count) gives the same schedule.
import { mulberry32 } from '../app/gateway/simulator/pspSimKnobs.ts';
import type { Knobs } from '../app/gateway/simulator/pspSimulator.ts';

export type FaultKind =
  | 'kill_worker'
  | 'kill_web'
  | 'pg_restart_fast'
  | 'pg_restart_immediate'
  | 'pg_terminate_backends'
  | 'provider_errors'
  | 'provider_hangs'
  | 'provider_rejects'
  | 'provider_fail_after_accept'
  | 'provider_duplicate_callbacks'
  | 'provider_late_callbacks'
  | 'provider_drop_callbacks'
  | 'provider_reversals'
  | 'attack_forged_callback'
  | 'attack_replayed_callback';

export const FAULT_KINDS: readonly FaultKind[] = [
  'kill_worker',
  'kill_web',
  'pg_restart_fast',
  'pg_restart_immediate',
  'pg_terminate_backends',
  'provider_errors',
  'provider_hangs',
  'provider_rejects',
  'provider_fail_after_accept',
  'provider_duplicate_callbacks',
  'provider_late_callbacks',
  'provider_drop_callbacks',
  'provider_reversals',
  'attack_forged_callback',
  'attack_replayed_callback',
];

export type Fault = Readonly<{
  atMs: number;
  kind: FaultKind;
  /** kill_*: how long the process stays down; provider_*: how long the knob stays set */
  durationMs: number;
  /** worker number for kill_worker; share of backends for pg_terminate_backends; knob value for provider_* */
  target: number;
}>;

export type Random = () => number;

export function createRandom(seed: number): Random {
  return mulberry32(seed);
}

export const between = (random: Random, min: number, max: number) => min + Math.floor(random() * (max - min + 1));

/** Which simulator knobs a provider fault sets, and to what. */
export function providerKnobs(fault: Fault): Partial<Knobs> {
  switch (fault.kind) {
    case 'provider_errors':
      return { errorRate: fault.target };
    case 'provider_hangs':
      return { hangRate: fault.target };
    case 'provider_rejects':
      return { rejectRate: fault.target };
    case 'provider_fail_after_accept':
      return { failAfterAcceptRate: fault.target };
    case 'provider_duplicate_callbacks':
      return { duplicateCallbackRate: fault.target };
    case 'provider_late_callbacks':
      return { lateCallbackMs: Math.round(fault.target) };
    case 'provider_drop_callbacks':
      return { dropCallbackRate: fault.target };
    case 'provider_reversals':
      return { reverseAfterPaidRate: fault.target };
    default:
      return {};
  }
}

function drawFault(random: Random, kind: FaultKind, atMs: number, workers: number): Fault {
  switch (kind) {
    case 'kill_worker':
      return { atMs, kind, durationMs: between(random, 300, 4_000), target: between(random, 1, workers) };
    case 'kill_web':
      return { atMs, kind, durationMs: between(random, 300, 3_000), target: 0 };
    case 'pg_restart_fast':
    case 'pg_restart_immediate':
      return { atMs, kind, durationMs: 0, target: 0 };
    case 'pg_terminate_backends':
      return { atMs, kind, durationMs: 0, target: 0.2 + random() * 0.6 };
    case 'provider_late_callbacks':
      return { atMs, kind, durationMs: between(random, 2_000, 8_000), target: between(random, 200, 3_000) };
    case 'provider_hangs':
      return { atMs, kind, durationMs: between(random, 2_000, 6_000), target: 0.05 + random() * 0.25 };
    case 'attack_forged_callback':
    case 'attack_replayed_callback':
      return { atMs, kind, durationMs: 0, target: between(random, 1, 5) };
    default:
      return { atMs, kind, durationMs: between(random, 2_000, 8_000), target: 0.05 + random() * 0.35 };
  }
}

/**
 * Every kind once at a random time, then more faults at random kinds and times (about one every
 * `meanGapMs`), sorted by time. Database restarts are kept apart so the system gets to breathe.
 */
export function faultSchedule(options: { seed: number; durationMs: number; workers: number; meanGapMs?: number }): Fault[] {
  const random = createRandom(options.seed);
  const span = Math.max(1_000, options.durationMs - 2_000);
  const faults: Fault[] = FAULT_KINDS.map((kind) => drawFault(random, kind, between(random, 500, span), options.workers));
  const extra = Math.floor(options.durationMs / (options.meanGapMs ?? 3_000));
  for (let i = 0; i < extra; i += 1) {
    const kind = FAULT_KINDS[between(random, 0, FAULT_KINDS.length - 1)]!;
    faults.push(drawFault(random, kind, between(random, 500, span), options.workers));
  }
  faults.sort((a, b) => a.atMs - b.atMs);
  // at least 4 s between two database restarts
  let lastRestart = -Infinity;
  return faults
    .map((fault) => {
      if (fault.kind !== 'pg_restart_fast' && fault.kind !== 'pg_restart_immediate') return fault;
      const atMs = Math.max(fault.atMs, lastRestart + 4_000);
      lastRestart = atMs;
      return { ...fault, atMs };
    })
    .sort((a, b) => a.atMs - b.atMs);
}
