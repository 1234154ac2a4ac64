// Users who behave like real clients: random accounts and amounts, a retry with the SAME
// idempotency key after a timeout, a 5xx or a 409, some duplicate submissions, status polling.
// Everything they saw is recorded, so the checks can hold the system to every 202 it gave.
import { v7 as uuidv7 } from 'uuid';
import { between, type Random } from './faultSchedule.ts';

export type ChaosUser = Readonly<{ userId: string; token: string; accountId: string; currency: string }>;

export type KeyRecord = {
  readonly key: string;
  readonly userId: string;
  readonly body: Readonly<{ toAccountId: string; amount: string; fromAccountId: string }>;
  /** HTTP statuses in the order seen (0 = no answer) */
  readonly statuses: number[];
  readonly orderIds: Set<string>;
  readonly bodies: Set<string>;
  duplicateSent: boolean;
};

export type ClientStats = {
  requests: number;
  accepted: number;
  replayed: number;
  rejected: Record<string, number>;
  retries: number;
  noAnswer: number;
  abandoned: number;
  duplicates: number;
  polls: number;
};

export type ClientSettings = Readonly<{
  baseUrl: () => string;
  users: readonly ChaosUser[];
  orders: number;
  concurrency: number;
  /** issue orders at about this rate (per second) */
  ratePerSecond: number;
  requestTimeoutMs: number;
  retriesMax: number;
  duplicateShare: number;
  pollShare: number;
  random: Random;
}>;

const EXPONENTS: Readonly<Record<string, number>> = { USD: 2, EUR: 2, GBP: 2, JPY: 0 };

function randomAmount(random: Random, currency: string): string {
  const exponent = EXPONENTS[currency] ?? 2;
  const minor = between(random, 1, exponent === 0 ? 5_000 : 5_000);
  if (exponent === 0) return String(minor);
  return `${Math.floor(minor / 100)}.${String(minor % 100).padStart(2, '0')}`;
}

async function send(settings: ClientSettings, user: ChaosUser, key: string, body: KeyRecord['body']) {
  try {
    const response = await fetch(`${settings.baseUrl()}/withdraw`, {
      method: 'POST',
      headers: { authorization: `Bearer ${user.token}`, 'idempotent-key': key, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(settings.requestTimeoutMs),
    });
    const text = await response.text();
    return { status: response.status, text, replayed: response.headers.get('idempotent-replayed') === 'true' };
  } catch {
    return { status: 0, text: '', replayed: false };
  }
}

function record(stats: ClientStats, entry: KeyRecord, reply: { status: number; text: string; replayed: boolean }) {
  stats.requests += 1;
  entry.statuses.push(reply.status);
  if (reply.status === 0) {
    stats.noAnswer += 1;
    return;
  }
  if (reply.replayed) stats.replayed += 1;
  if (reply.status === 202) {
    stats.accepted += 1;
    try {
      const parsed = JSON.parse(reply.text) as { data?: { withdrawOrderId?: string } };
      if (parsed.data?.withdrawOrderId) entry.orderIds.add(parsed.data.withdrawOrderId);
    } catch {
      // a 202 whose body is not JSON is itself recorded as seen; the checks will flag it
    }
    entry.bodies.add(reply.text);
  } else if (reply.status === 422) {
    entry.bodies.add(reply.text);
    const code = /"code":(\d+)/.exec(reply.text)?.[1] ?? '422';
    stats.rejected[code] = (stats.rejected[code] ?? 0) + 1;
  } else {
    stats.rejected[String(reply.status)] = (stats.rejected[String(reply.status)] ?? 0) + 1;
  }
}

const retryable = (status: number) => status === 0 || status === 409 || status >= 500;

async function poll(settings: ClientSettings, user: ChaosUser, orderId: string): Promise<void> {
  try {
    await fetch(`${settings.baseUrl()}/withdraw/${orderId}?waitMs=2000&status=init`, {
      headers: { authorization: `Bearer ${user.token}` },
      signal: AbortSignal.timeout(settings.requestTimeoutMs),
    }).then((r) => r.text());
  } catch {
    // polling is best effort for a client
  }
}

/** Runs the clients until `orders` keys were issued and each finished (answered or abandoned). */
export async function runClients(settings: ClientSettings): Promise<{ keys: KeyRecord[]; stats: ClientStats }> {
  const stats: ClientStats = {
    requests: 0,
    accepted: 0,
    replayed: 0,
    rejected: {},
    retries: 0,
    noAnswer: 0,
    abandoned: 0,
    duplicates: 0,
    polls: 0,
  };
  const keys: KeyRecord[] = [];
  const started = Date.now();
  let issued = 0;
  const { random } = settings;

  async function oneOrder(): Promise<void> {
    const user = settings.users[between(random, 0, settings.users.length - 1)]!;
    const entry: KeyRecord = {
      key: uuidv7(),
      userId: user.userId,
      body: { toAccountId: `dest-${between(random, 1, 50)}`, amount: randomAmount(random, user.currency), fromAccountId: user.accountId },
      statuses: [],
      orderIds: new Set(),
      bodies: new Set(),
      duplicateSent: random() < settings.duplicateShare,
    };
    keys.push(entry);
    const wantsPoll = random() < settings.pollShare;
    if (entry.duplicateSent) {
      stats.duplicates += 1;
      const [a, b] = await Promise.all([send(settings, user, entry.key, entry.body), send(settings, user, entry.key, entry.body)]);
      record(stats, entry, a);
      record(stats, entry, b);
    } else {
      record(stats, entry, await send(settings, user, entry.key, entry.body));
    }
    for (
      let attempt = 1;
      attempt <= settings.retriesMax && retryable(entry.statuses.at(-1) ?? 0) && !entry.statuses.some((s) => s === 202 || s === 422);
      attempt += 1
    ) {
      stats.retries += 1;
      await new Promise((resolve) => setTimeout(resolve, Math.min(100 * 2 ** attempt, 3_000)));
      record(stats, entry, await send(settings, user, entry.key, entry.body));
    }
    if (!entry.statuses.some((s) => s === 202 || s === 422 || (s >= 400 && s < 500 && s !== 409))) stats.abandoned += 1;
    const [orderId] = entry.orderIds;
    if (wantsPoll && orderId) {
      stats.polls += 1;
      await poll(settings, user, orderId);
    }
  }

  async function loop(): Promise<void> {
    while (issued < settings.orders) {
      // pace: order i is due at started + i / rate
      const dueAt = started + (issued / settings.ratePerSecond) * 1000;
      issued += 1;
      const wait = dueAt - Date.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      await oneOrder();
    }
  }

  await Promise.all(Array.from({ length: settings.concurrency }, loop));
  return { keys, stats };
}
