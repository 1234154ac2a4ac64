// Operators' passwords: argon2id (the `argon2` package's prebuilt binary; its install script is
// not run, see package.json allowScripts), with OWASP's minimum parameters (19 MiB, 2 passes, 1
// lane: about 20 ms here). Hashing is bounded: a flood of logins waits in a short queue or gets a
// 503, it cannot take every core.
import { argon2id, hash as argonHash, needsRehash, verify as argonVerify } from 'argon2';
import { ApiError } from '../http/apiErrors.ts';

const HASH_OPTIONS = { type: argon2id, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;
const HASHES_IN_FLIGHT_MAX = 2;
const HASHES_WAITING_MAX = 32;
export const PASSWORD_LENGTH_MIN = 12;
export const PASSWORD_LENGTH_MAX = 200;

let inFlight = 0;
const waiting: Array<() => void> = [];

async function bounded<T>(work: () => Promise<T>): Promise<T> {
  if (inFlight >= HASHES_IN_FLIGHT_MAX) {
    if (waiting.length >= HASHES_WAITING_MAX) throw new ApiError('unavailable', 'too many sign-ins at once; try again in a moment');
    await new Promise<void>((resolve) => waiting.push(resolve));
  }
  inFlight += 1;
  try {
    return await work();
  } finally {
    inFlight -= 1;
    waiting.shift()?.();
  }
}

export function hashPassword(password: string): Promise<string> {
  return bounded(() => argonHash(password, HASH_OPTIONS));
}

// verified against when the login does not exist, so that an unknown login costs the same time
let dummyHash: Promise<string> | null = null;

/** Whether `password` matches `hash`; with a null hash (no such operator) it still spends the time and says no. */
export async function verifyPassword(hash: string | null, password: string): Promise<boolean> {
  if (hash === null) {
    dummyHash ??= hashPassword('not a password of anyone');
    const spent = await dummyHash;
    await bounded(() => argonVerify(spent, password));
    return false;
  }
  return bounded(() => argonVerify(hash, password));
}

/** Whether a stored hash was made with other parameters than today's (it is replaced at the next sign-in). */
export function passwordNeedsRehash(hash: string): boolean {
  return needsRehash(hash, { memoryCost: HASH_OPTIONS.memoryCost, timeCost: HASH_OPTIONS.timeCost, parallelism: HASH_OPTIONS.parallelism });
}

/** Why a new password is refused, or null. */
export function passwordProblem(password: string, login: string): string | null {
  if (password.length < PASSWORD_LENGTH_MIN) return `must be at least ${PASSWORD_LENGTH_MIN} characters`;
  if (password.length > PASSWORD_LENGTH_MAX) return `must be at most ${PASSWORD_LENGTH_MAX} characters`;
  if (password.toLowerCase().includes(login.toLowerCase())) return 'must not contain the login';
  if (new Set(password).size < 5) return 'must use at least 5 different characters';
  return null;
}
