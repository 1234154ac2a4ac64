// The callback inbox, applied by the worker: a batch of INBOX_BATCH_SIZE_MAX rows in one
// transaction (the common case); when that batch fails, its rows one by one, each in its own
// transaction, so one row the database refuses never holds back the others. The failing row keeps
// its error and attempt count, is retried after a backoff, and after INBOX_PARK_AFTER_ATTEMPTS is
// parked: out of the queue, and an open break (inbox_parked) for an operator.
import type { DatabasePool } from 'slonik';
import type { Logger } from '../logger.ts';
import { applyInboxBatch, applyInboxRow, pendingInboxIds, recordInboxFailure } from './gatewayQueries.ts';

export type InboxDrainSettings = Readonly<{ batchSizeMax: number; parkAfterAttempts: number; retryBaseMs: number; retryMaxMs: number }>;

/** One pass over the inbox; returns how many rows it applied or set aside (0: nothing left now). */
export async function drainInboxOnce(balance: DatabasePool, settings: InboxDrainSettings, logger: Logger): Promise<number> {
  try {
    return (await applyInboxBatch(balance, settings.batchSizeMax)).length;
  } catch (batchError) {
    logger.warn({ err: batchError }, 'a callback batch failed; applying its rows one by one');
    let handled = 0;
    for (const inboxId of await pendingInboxIds(balance, settings.batchSizeMax)) {
      try {
        handled += (await applyInboxRow(balance, inboxId)).length;
      } catch (error) {
        // the row's own failure; an error recording it (the database is gone) ends the pass
        const outcome = await recordInboxFailure(balance, {
          inboxId,
          error: error instanceof Error ? error.message : String(error),
          parkAfter: settings.parkAfterAttempts,
          retryBaseMs: settings.retryBaseMs,
          retryMaxMs: settings.retryMaxMs,
        });
        handled += 1;
        (outcome === 'parked' ? logger.error : logger.warn).call(
          logger,
          { err: error, inboxId: inboxId.toString(), outcome },
          outcome === 'parked' ? 'callback parked after repeated failures' : 'callback could not be applied; retried later',
        );
      }
    }
    return handled;
  }
}
