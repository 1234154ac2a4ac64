// Idempotency keys are UUIDv7: the first 48 bits are the Unix time in milliseconds at which the
// client made the key. A key's stored reply is kept IDEMPOTENCY_KEY_RETENTION_HOURS (at least 24)
// and then pruned (jobs/tasks.ts, pruneIdempotencyKeys); a retry arriving later would find nothing
// and become a second withdrawal. So a key older than the retention, with no stored reply, is
// refused (422 42206): the client makes a new key, after checking whether the first request went
// through. Pruning deletes a key only when both its row and the time inside it are past the
// retention, so a key with a clock ahead of ours is never pruned while it is still accepted.
import { ApiError } from '../http/apiErrors.ts';

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;

/** The creation time inside a UUIDv7, in milliseconds since the epoch (null: not a UUIDv7). */
export function uuidv7TimeMs(key: string): number | null {
  if (!UUID_V7.test(key)) return null;
  return Number.parseInt(key.slice(0, 8) + key.slice(9, 13), 16);
}

/** Whether a key was made longer ago than the retention (its reply may be pruned already). */
export function idempotencyKeyExpired(key: string, nowMs: number, retentionHours: number): boolean {
  const madeAt = uuidv7TimeMs(key);
  return madeAt !== null && nowMs - madeAt > retentionHours * 3_600_000;
}

export function idempotencyKeyExpiredError(retentionHours: number): ApiError {
  return new ApiError(
    'idempotency_key_expired',
    `idempotent-key was made more than ${retentionHours} hours ago and has no stored reply: replies are kept ${retentionHours} hours; ` +
      'check whether the first request went through (GET /withdraw/{id}), then use a new key',
  );
}
