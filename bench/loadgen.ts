// The benchmark's clients: POST /withdraw over keep-alive connections (undici), closed loop (N
// requests, C in flight) or open loop (a fixed rate, whatever the answers' latency).
import { Pool } from 'undici';
import { v7 as uuidv7 } from 'uuid';

export type BenchUser = Readonly<{ userId: string; token: string }>;

export type LoadResult = {
  orderIds: string[];
  rejected: number;
  statuses: Record<string, number>;
  latenciesMs: number[];
  firstAt: number;
  lastAnswerAt: number;
};

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export function createLoadgen(deps: { url: string; users: readonly BenchUser[]; connections: number }) {
  const pool = new Pool(deps.url, { connections: deps.connections, pipelining: 1, keepAliveTimeout: 60_000 });
  let next = 0;

  async function withdraw(amount: string, result: LoadResult): Promise<void> {
    const user = deps.users[next++ % deps.users.length]!;
    const started = performance.now();
    try {
      const response = await pool.request({
        path: '/withdraw',
        method: 'POST',
        headers: { authorization: `Bearer ${user.token}`, 'idempotent-key': uuidv7(), 'content-type': 'application/json' },
        body: JSON.stringify({ toAccountId: 'bench-bank', amount }),
      });
      const text = await response.body.text();
      result.latenciesMs.push(performance.now() - started);
      result.statuses[response.statusCode] = (result.statuses[response.statusCode] ?? 0) + 1;
      const body = JSON.parse(text) as { data?: { withdrawOrderId?: string } };
      if (response.statusCode === 202 && body.data?.withdrawOrderId) result.orderIds.push(body.data.withdrawOrderId);
      else result.rejected += 1;
    } catch {
      result.statuses.error = (result.statuses.error ?? 0) + 1;
      result.rejected += 1;
    }
    result.lastAnswerAt = Date.now();
  }

  const emptyResult = (): LoadResult => ({
    orderIds: [],
    rejected: 0,
    statuses: {},
    latenciesMs: [],
    firstAt: Date.now(),
    lastAnswerAt: 0,
  });

  /** `count` withdrawals, `inFlight` at a time. */
  async function closedLoop(count: number, inFlight: number, amount: string, progress?: (done: number) => void): Promise<LoadResult> {
    const result = emptyResult();
    let issued = 0;
    let done = 0;
    const lane = async () => {
      while (issued < count) {
        issued += 1;
        await withdraw(amount, result);
        done += 1;
        if (progress && done % 1000 === 0) progress(done);
      }
    };
    await Promise.all(Array.from({ length: inFlight }, lane));
    return result;
  }

  /** `ratePerSecond` withdrawals a second for `durationMs`, sent on a 10 ms tick; resolves when all are answered. */
  async function openLoop(
    ratePerSecond: number,
    durationMs: number,
    amount: string,
    progress?: (sent: number) => void,
  ): Promise<LoadResult> {
    const result = emptyResult();
    const started = performance.now();
    const pending: Promise<void>[] = [];
    let sent = 0;
    let lastReport = 0;
    while (performance.now() - started < durationMs) {
      const due = Math.floor(((performance.now() - started) / 1000) * ratePerSecond);
      while (sent < due) {
        sent += 1;
        pending.push(withdraw(amount, result));
      }
      if (progress && performance.now() - lastReport > 5_000) {
        lastReport = performance.now();
        progress(sent);
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    await Promise.all(pending);
    return result;
  }

  return { closedLoop, openLoop, close: () => pool.close() };
}
