// LISTEN on one database with pg-listen, reconnecting without end. pg-listen's own reconnect gives
// up silently when re-subscribing fails, so any error here tears the subscriber down and starts a
// new one after a bounded backoff. Notifications sent while disconnected are lost: every
// (re)connect calls onConnected (re-read state), and the callers poll as well.
import pgListen, { type Subscriber } from 'pg-listen';
import type { Logger } from '../logger.ts';

const createSubscriber = pgListen.default ?? (pgListen as unknown as typeof pgListen.default);

const RESTART_DELAY_MAX_MS = 5_000;

export type NotificationListener = Readonly<{ close: () => Promise<void>; connected: () => boolean }>;

export function listenForNotifications(options: {
  url: string;
  channels: Readonly<Record<string, (payload: string) => void>>;
  onConnected?: () => void;
  logger: Logger;
  name: string;
}): NotificationListener {
  let subscriber: Subscriber | null = null;
  let closed = false;
  let isConnected = false;
  let failures = 0;
  let restartTimer: NodeJS.Timeout | null = null;

  const scheduleRestart = (error: unknown) => {
    isConnected = false;
    if (closed || restartTimer) return;
    failures += 1;
    const delayMs = Math.min(100 * 2 ** (failures - 1), RESTART_DELAY_MAX_MS);
    if (failures === 1 || failures % 20 === 0) {
      options.logger.warn({ err: error, listener: options.name, retryInMs: delayMs }, 'notification listener down; restarting');
    }
    const previous = subscriber;
    subscriber = null;
    void previous?.close().catch(() => {});
    restartTimer = setTimeout(() => {
      restartTimer = null;
      void start();
    }, delayMs);
    restartTimer.unref();
  };

  async function start(): Promise<void> {
    if (closed) return;
    const current = createSubscriber(
      { connectionString: options.url, application_name: `withdraw-listen-${options.name}` },
      {
        retryLimit: 3,
        retryTimeout: 2_000,
        retryInterval: 200,
        paranoidChecking: 10_000,
        parse: (payload: string) => payload,
      },
    );
    subscriber = current;
    current.events.on('error', (error: Error) => {
      if (subscriber === current) scheduleRestart(error);
    });
    current.events.on('connected', () => {
      isConnected = true;
      options.onConnected?.();
    });
    current.events.on('notification', (notification) => {
      options.channels[notification.channel]?.(String(notification.payload ?? ''));
    });
    try {
      await current.connect();
      await Promise.all(Object.keys(options.channels).map((channel) => current.listenTo(channel)));
      failures = 0;
      isConnected = true;
      options.onConnected?.();
    } catch (error) {
      if (subscriber === current) scheduleRestart(error);
    }
  }

  void start();
  return {
    connected: () => isConnected,
    close: async () => {
      closed = true;
      if (restartTimer) clearTimeout(restartTimer);
      const current = subscriber;
      subscriber = null;
      await current?.close().catch(() => {});
    },
  };
}
