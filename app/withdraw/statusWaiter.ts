// Long-poll support: GET /withdraw/{id}?waitMs=N waits for a NOTIFY on withdraw_status (sent by
// every transition) or the deadline, then the route re-reads the database. Waiters are bounded.
import type { Logger } from '../logger.ts';
import { listenForNotifications, type NotificationListener } from '../outbox/notificationListener.ts';

export type StatusWaiter = Readonly<{
  /** resolves on a notification for orderId or at the deadline; `stillSame` is re-checked after subscribing */
  wait: (orderId: string, stillSame: () => Promise<boolean>, waitMs: number) => Promise<boolean>;
  /** how many requests for orderId are parked now, waiting for a change or their deadline */
  parked: (orderId: string) => number;
  close: () => Promise<void>;
}>;

export function createStatusWaiter(options: { balanceUrl: string; waitersMax: number; logger: Logger }): StatusWaiter {
  const waiters = new Map<string, Set<() => void>>();
  let count = 0;
  const parked = new Map<string, number>();
  const wakeAll = () => {
    for (const set of waiters.values()) for (const wake of set) wake();
  };
  const listener: NotificationListener = listenForNotifications({
    url: options.balanceUrl,
    name: 'withdraw-status',
    logger: options.logger,
    channels: {
      // payload: comma-separated order ids (the relay notifies once per batch)
      withdraw_status: (payload) => {
        for (const orderId of payload.split(',')) for (const wake of waiters.get(orderId) ?? []) wake();
      },
    },
    // anything may have changed while disconnected: let every waiter re-read
    onConnected: wakeAll,
  });

  /** false when it could not wait (no capacity, listener down): the caller answers at once */
  async function wait(orderId: string, stillSame: () => Promise<boolean>, waitMs: number): Promise<boolean> {
    if (count >= options.waitersMax || !listener.connected()) return false;
    let wake!: () => void;
    const woken = new Promise<void>((resolve) => {
      wake = resolve;
    });
    const set = waiters.get(orderId) ?? new Set();
    set.add(wake);
    waiters.set(orderId, set);
    count += 1;
    const timer = setTimeout(wake, waitMs);
    try {
      if (await stillSame()) {
        parked.set(orderId, (parked.get(orderId) ?? 0) + 1);
        try {
          await woken;
        } finally {
          const left = (parked.get(orderId) ?? 1) - 1;
          if (left === 0) parked.delete(orderId);
          else parked.set(orderId, left);
        }
      }
      return true;
    } finally {
      clearTimeout(timer);
      set.delete(wake);
      if (set.size === 0) waiters.delete(orderId);
      count -= 1;
    }
  }

  return {
    wait,
    parked: (orderId) => parked.get(orderId) ?? 0,
    close: async () => {
      wakeAll();
      await listener.close();
    },
  };
}
