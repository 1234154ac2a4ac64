// Runs a "drain once" function until there is nothing left, whenever it is woken (a NOTIFY, a
// poll tick, a reconnect). Wake-ups while running coalesce into one more pass. Errors back off
// (bounded) and retry; they never stop the drainer.
import type { Logger } from '../logger.ts';

export type DrainerSettings = Readonly<{
  name: string;
  errorBackoffBaseMs?: number;
  errorBackoffMaxMs?: number;
  /**
   * After a pass that found rows, one more pass this much later: a writer that saw the rows of
   * the running pass as a backlog did not notify, and its row may commit just after the empty pass
   * that ended the loop. Without it such a row waits for the poll.
   */
  tailPassMs?: number;
}>;

export type Drainer = Readonly<{
  name: string;
  wake: () => void;
  /** resolves when the current pass (if any) ends; no new pass starts afterwards */
  stop: () => Promise<void>;
  /** for tests and sweeps: drain now, resolve when empty */
  drain: () => Promise<number>;
  stats: () => { passes: number; rows: number; errors: number };
}>;

export function createDrainer(settings: DrainerSettings, drainOnce: () => Promise<number>, logger: Logger): Drainer {
  const backoffBaseMs = settings.errorBackoffBaseMs ?? 100;
  const backoffMaxMs = settings.errorBackoffMaxMs ?? 5_000;
  let running: Promise<number> | null = null;
  let again = false;
  let stopped = false;
  let consecutiveErrors = 0;
  let retryTimer: NodeJS.Timeout | null = null;
  let tailTimer: NodeJS.Timeout | null = null;
  const tailPassMs = settings.tailPassMs ?? 25;
  const counters = { passes: 0, rows: 0, errors: 0 };

  // Passes repeat until one finds nothing: rows committed while a pass ran are picked up by the
  // next (writers notify only when they see no backlog, so the drainer must not stop early).
  async function loop(): Promise<number> {
    let total = 0;
    let processed: number;
    do {
      again = false;
      processed = await drainOnce();
      counters.passes += 1;
      counters.rows += processed;
      total += processed;
    } while ((processed > 0 || again) && !stopped);
    return total;
  }

  function run(): Promise<number> {
    if (running) {
      again = true;
      return running;
    }
    running = loop()
      .then((total) => {
        consecutiveErrors = 0;
        if (total > 0 && tailPassMs > 0 && !stopped && !tailTimer) {
          tailTimer = setTimeout(() => {
            tailTimer = null;
            if (!stopped) void run();
          }, tailPassMs);
          tailTimer.unref();
        }
        return total;
      })
      .catch((error: unknown) => {
        counters.errors += 1;
        consecutiveErrors += 1;
        const delayMs = Math.min(backoffBaseMs * 2 ** (consecutiveErrors - 1), backoffMaxMs);
        logger.warn({ err: error, drainer: settings.name, retryInMs: delayMs }, 'drain pass failed');
        if (!stopped && !retryTimer) {
          retryTimer = setTimeout(() => {
            retryTimer = null;
            void run();
          }, delayMs);
          retryTimer.unref();
        }
        return 0;
      })
      .finally(() => {
        running = null;
        if (again && !stopped) void run();
      });
    return running;
  }

  return {
    name: settings.name,
    wake: () => {
      if (!stopped) void run();
    },
    drain: async () => {
      let total = 0;
      // a pass that was already running may have started before the caller's rows committed
      if (running) total += await running;
      total += await run();
      return total;
    },
    stop: async () => {
      stopped = true;
      if (retryTimer) clearTimeout(retryTimer);
      if (tailTimer) clearTimeout(tailTimer);
      retryTimer = null;
      tailTimer = null;
      if (running) await running;
    },
    stats: () => ({ ...counters }),
  };
}
