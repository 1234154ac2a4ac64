import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import test, { type ExecutionContext } from 'ava';
import { request } from 'undici';
import {
  createPspSimulator,
  KNOBS_DEFAULT,
  knobEnvName,
  knobsFromEnv,
  type Knobs,
  type PspSimulator,
  type PspSimulatorOptions,
} from '../app/gateway/simulator/pspSimulator.ts';
import { verifyWebhook } from '../app/gateway/webhookSignature.ts';

const SECRET = 'psp-sim-test-secret-0123456789';
/** Generous: callbacks normally arrive within milliseconds; this only bounds a broken run. */
const WAIT_DEADLINE_MS = 10_000;
const POLL_INTERVAL_MS = 10;

// Bodies are JSON read back from the wire; the tests assert on their shape.
type Json = Record<string, any>;

type Delivery = { headers: IncomingHttpHeaders; rawBody: string; event: Json };

type Receiver = { url: string; deliveries: Delivery[]; close: () => Promise<void> };

/** A stand-in for the system's POST /withdraw/notify; `statusFor(n)` answers the n-th delivery (1-based). */
async function startReceiver(statusFor: (deliveryNumber: number) => number): Promise<Receiver> {
  const deliveries: Delivery[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const rawBody = Buffer.concat(chunks).toString('utf8');
      deliveries.push({ headers: req.headers, rawBody, event: JSON.parse(rawBody) as Json });
      res.writeHead(statusFor(deliveries.length), { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const close = async (): Promise<void> => {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    await closed;
  };
  return { url: `http://127.0.0.1:${port}/withdraw/notify`, deliveries, close };
}

type Harness = { sim: PspSimulator; url: string; receiver: Receiver };

type HarnessOptions = {
  knobs?: Partial<Knobs>;
  seed?: number;
  statusFor?: (deliveryNumber: number) => number;
} & Partial<Pick<PspSimulatorOptions, 'callbackRetryMax' | 'settleMs'>>;

async function startHarness(t: ExecutionContext, options: HarnessOptions = {}): Promise<Harness> {
  const receiver = await startReceiver(options.statusFor ?? (() => 200));
  const sim = createPspSimulator({
    port: 0,
    callbackUrl: receiver.url,
    webhookSecret: SECRET,
    seed: options.seed ?? 42,
    settleMs: options.settleMs ?? 1,
    knobs: options.knobs ?? {},
    ...(options.callbackRetryMax === undefined ? {} : { callbackRetryMax: options.callbackRetryMax }),
  });
  const { url } = await sim.start();
  t.teardown(async () => {
    await sim.stop();
    await receiver.close();
  });
  return { sim, url, receiver };
}

type Payout = { reference: string; amount: string; currency: string; destination: string };

let referenceCounter = 0;
function payout(overrides: Partial<Payout> = {}): Payout {
  referenceCounter += 1;
  return { reference: `ref-${process.pid}-${referenceCounter}`, amount: '123.45', currency: 'USD', destination: 'acct-9', ...overrides };
}

async function call(
  url: string,
  method: 'GET' | 'POST' | 'DELETE',
  path: string,
  body?: string,
  headers: Record<string, string> = {},
  signal?: AbortSignal,
) {
  const response = await request(`${url}${path}`, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    ...(body === undefined ? {} : { body }),
    ...(signal === undefined ? {} : { signal }),
  });
  const text = await response.body.text();
  return { status: response.statusCode, text, body: JSON.parse(text) as Json };
}

function postPayout(url: string, body: Payout, idempotencyKey: string = body.reference, signal?: AbortSignal) {
  return call(url, 'POST', '/payouts', JSON.stringify(body), { 'idempotency-key': idempotencyKey }, signal);
}

const getPayout = (url: string, reference: string) => call(url, 'GET', `/payouts/${encodeURIComponent(reference)}`);
const getStats = async (url: string) => (await call(url, 'GET', '/stats')).body;

/** Polls until `read` returns a truthy value; fails with `what` after the deadline. */
async function waitFor<T>(what: string, read: () => T | Promise<T>): Promise<NonNullable<T>> {
  const deadline = Date.now() + WAIT_DEADLINE_MS;
  for (;;) {
    const value = await read();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }
}

const nowSec = () => Math.floor(Date.now() / 1000);

// ---------------------------------------------------------------------------------------------

test('when a reference is posted twice, then it is accepted and executed once and the repeat replays the first answer', async (t) => {
  const { url, receiver } = await startHarness(t);
  const request1 = payout();
  const first = await postPayout(url, request1);
  t.is(first.status, 202);
  t.deepEqual(first.body, { reference: request1.reference, status: 'pending' });
  await waitFor('the paid callback', () => receiver.deliveries.length === 1);
  const repeat = await postPayout(url, request1);
  t.is(repeat.status, 202);
  t.is(repeat.text, first.text);
  const stats = await getStats(url);
  t.deepEqual(stats.executed, { [request1.reference]: 1 });
  t.is(stats.payouts, 1);
  t.is(stats.accepted, 1);
  const status = await getPayout(url, request1.reference);
  t.is(status.status, 200);
  t.like(status.body, { ...request1, status: 'paid' });
  t.false('failureCode' in status.body);
  t.false(Number.isNaN(Date.parse(status.body.updatedAt)));
});

test('when 50 identical requests race, then the payout is executed exactly once and all get the same answer', async (t) => {
  // latencyMs keeps the first answer in flight while the others arrive.
  const { url, sim, receiver } = await startHarness(t, { knobs: { latencyMs: 20 } });
  const request1 = payout();
  const answers = await Promise.all(Array.from({ length: 50 }, () => postPayout(url, request1)));
  for (const answer of answers) {
    t.is(answer.status, 202);
    t.deepEqual(answer.body, { reference: request1.reference, status: 'pending' });
  }
  t.deepEqual(sim.stats().executed, { [request1.reference]: 1 });
  await waitFor('the callback', () => sim.stats().callbacksSent === 1);
  t.is(receiver.deliveries.length, 1);
  t.is(sim.stats().accepted, 1);
});

test('when a reference is reused with a different amount, currency or destination, then 409 and nothing executes again', async (t) => {
  const { url, sim } = await startHarness(t);
  const request1 = payout();
  t.is((await postPayout(url, request1)).status, 202);
  for (const changed of [{ amount: '123.46' }, { currency: 'EUR' }, { destination: 'acct-10' }]) {
    const answer = await postPayout(url, { ...request1, ...changed });
    t.is(answer.status, 409);
    t.deepEqual(answer.body, { error: { code: 'idempotency_mismatch' } });
  }
  t.deepEqual(sim.stats().executed, { [request1.reference]: 1 });
});

test('when the request is invalid or the Idempotency-Key differs from the reference, then 400 definitive and nothing is recorded', async (t) => {
  const { url, sim } = await startHarness(t);
  const valid = payout();
  const invalidBodies: unknown[] = [
    { ...valid, amount: 123.45 },
    { ...valid, amount: '-1.00' },
    { ...valid, amount: '0.00' },
    { ...valid, amount: '1e5' },
    { ...valid, currency: 'usd' },
    { ...valid, destination: '' },
    { amount: '1.00', currency: 'USD', destination: 'x' },
    [valid],
  ];
  for (const body of invalidBodies) {
    const answer = await call(url, 'POST', '/payouts', JSON.stringify(body), { 'idempotency-key': valid.reference });
    t.is(answer.status, 400, JSON.stringify(body));
    t.like(answer.body, { error: { code: 'invalid_request' }, definitive: true });
  }
  t.is((await postPayout(url, valid, 'another-key')).status, 400);
  t.is((await call(url, 'POST', '/payouts', JSON.stringify(valid))).status, 400);
  t.is((await call(url, 'POST', '/payouts', '{"reference":', { 'idempotency-key': valid.reference })).status, 400);
  t.like(sim.stats(), { payouts: 0, accepted: 0, executed: {} });
  t.is((await postPayout(url, valid)).status, 202);
});

test('when rejectRate is 1, then 422 definitive is replayed on repeat, GET shows failed, and nothing executes', async (t) => {
  const { url, sim } = await startHarness(t, { knobs: { rejectRate: 1 } });
  const request1 = payout();
  const expected = { error: { code: 'payout_rejected', reason: 'destination_account_closed' }, definitive: true };
  const first = await postPayout(url, request1);
  t.is(first.status, 422);
  t.deepEqual(first.body, expected);
  sim.setKnobs({ rejectRate: 0 }); // a repeat must replay, not be decided again
  const repeat = await postPayout(url, request1);
  t.is(repeat.status, 422);
  t.is(repeat.text, first.text);
  const status = await getPayout(url, request1.reference);
  t.like(status.body, { reference: request1.reference, status: 'failed', failureCode: 'destination_account_closed' });
  t.like(sim.stats(), { executed: {}, rejected: 1, accepted: 0, payouts: 1 });
});

test('when errorRate is 1, then every answer is 500, some payouts were executed and some not, and retries learn which', async (t) => {
  const { url, sim } = await startHarness(t, { knobs: { errorRate: 1 } });
  const requests = Array.from({ length: 40 }, () => payout());
  for (const request1 of requests) {
    const answer = await postPayout(url, request1);
    t.is(answer.status, 500);
    t.deepEqual(answer.body, { error: { code: 'internal_error' } });
  }
  const executedBefore = Object.keys(sim.stats().executed);
  t.true(executedBefore.length > 0 && executedBefore.length < requests.length, `executed ${executedBefore.length} of 40`);
  t.is(sim.stats().errors, 40);
  for (const request1 of requests) {
    const status = await getPayout(url, request1.reference);
    t.is(status.status, executedBefore.includes(request1.reference) ? 200 : 404);
  }
  sim.setKnobs({ errorRate: 0 });
  for (const request1 of requests) t.is((await postPayout(url, request1)).status, 202);
  const executedAfter = sim.stats().executed;
  t.is(Object.keys(executedAfter).length, requests.length);
  t.true(Object.values(executedAfter).every((times) => times === 1));
});

test('when hangRate is 1, then the request is never answered and nothing is recorded', async (t) => {
  const { url, sim } = await startHarness(t, { knobs: { hangRate: 1 } });
  const request1 = payout();
  // The abort rejects with a DOMException (TimeoutError), not an Error.
  await t.throwsAsync(postPayout(url, request1, request1.reference, AbortSignal.timeout(300)), { any: true, name: 'TimeoutError' });
  t.like(sim.stats(), { hangs: 1, executed: {}, payouts: 0 });
  t.is((await getPayout(url, request1.reference)).status, 404);
});

test('when the simulator stops while a request hangs, then that socket is destroyed', async (t) => {
  const { url, sim } = await startHarness(t, { knobs: { hangRate: 1 } });
  const pending = postPayout(url, payout());
  await waitFor('the hang', () => sim.stats().hangs === 1);
  await sim.stop();
  await t.throwsAsync(pending);
});

test('when a payout settles, then the callback is signed and verifies with the secret', async (t) => {
  const { url, receiver } = await startHarness(t);
  const request1 = payout();
  await postPayout(url, request1);
  const [delivery] = await waitFor('the callback', () => (receiver.deliveries.length === 1 ? receiver.deliveries : undefined));
  if (delivery === undefined) return t.fail('no delivery');
  t.is(delivery.headers['content-type'], 'application/json');
  const signature = delivery.headers['x-signature'];
  t.is(typeof signature, 'string');
  t.true(verifyWebhook(signature as string, delivery.rawBody, [SECRET], nowSec()).ok);
  t.deepEqual(verifyWebhook(signature as string, delivery.rawBody, ['not-the-secret'], nowSec()), { ok: false, reason: 'bad_signature' });
  t.regex(delivery.event.eventId, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  t.like(delivery.event, { reference: request1.reference, status: 'paid' });
  t.false('failureCode' in delivery.event);
  t.false(Number.isNaN(Date.parse(delivery.event.occurredAt)));
});

test('when failAfterAcceptRate is 1, then the callback and GET say failed with a failure code', async (t) => {
  const { url, receiver, sim } = await startHarness(t, { knobs: { failAfterAcceptRate: 1 } });
  const request1 = payout();
  t.is((await postPayout(url, request1)).status, 202);
  await waitFor('the callback', () => receiver.deliveries.length === 1);
  t.like(receiver.deliveries[0]?.event, { reference: request1.reference, status: 'failed', failureCode: 'beneficiary_bank_rejected' });
  t.like((await getPayout(url, request1.reference)).body, { status: 'failed', failureCode: 'beneficiary_bank_rejected' });
  t.deepEqual(sim.stats().executed, { [request1.reference]: 1 });
});

test('when duplicateCallbackRate is 1, then the same event (same eventId) is delivered twice', async (t) => {
  const { url, receiver, sim } = await startHarness(t, { knobs: { duplicateCallbackRate: 1 } });
  await postPayout(url, payout());
  await waitFor('both deliveries', () => sim.stats().callbacksSent === 2);
  const [first, second] = receiver.deliveries;
  t.is(receiver.deliveries.length, 2);
  t.is(first?.event.eventId, second?.event.eventId);
  t.is(first?.rawBody, second?.rawBody);
  t.is(sim.stats().callbacksDuplicated, 1);
});

test('when dropCallbackRate is 1, then no callback is sent but GET shows the outcome', async (t) => {
  const { url, receiver, sim } = await startHarness(t, { knobs: { dropCallbackRate: 1 } });
  const request1 = payout();
  await postPayout(url, request1);
  await waitFor('the outcome', async () => (await getPayout(url, request1.reference)).body.status === 'paid');
  t.like(sim.stats(), { callbacksDropped: 1, callbacksSent: 0 });
  t.is(receiver.deliveries.length, 0);
});

test('when reverseAfterPaidRate is 1, then paid and later failed payout_reversed arrive with different eventIds', async (t) => {
  const { url, receiver, sim } = await startHarness(t, { knobs: { reverseAfterPaidRate: 1 } });
  const request1 = payout();
  await postPayout(url, request1);
  await waitFor('both callbacks', () => sim.stats().callbacksSent === 2);
  const paid = receiver.deliveries.find((delivery) => delivery.event.status === 'paid');
  const reversal = receiver.deliveries.find((delivery) => delivery.event.status === 'failed');
  t.like(paid?.event, { reference: request1.reference });
  t.like(reversal?.event, { reference: request1.reference, failureCode: 'payout_reversed' });
  t.not(paid?.event.eventId, reversal?.event.eventId);
  t.like((await getPayout(url, request1.reference)).body, { status: 'failed', failureCode: 'payout_reversed' });
  t.deepEqual(sim.stats().reversed, [request1.reference]);
  t.deepEqual(sim.stats().executed, { [request1.reference]: 1 });
});

test('when the receiver answers 500 twice, then the same event is retried until it is accepted', async (t) => {
  const { url, receiver, sim } = await startHarness(t, { statusFor: (n) => (n <= 2 ? 500 : 200) });
  await postPayout(url, payout());
  await waitFor('the accepted delivery', () => sim.stats().callbacksSent === 1);
  t.is(receiver.deliveries.length, 3);
  t.is(new Set(receiver.deliveries.map((delivery) => delivery.event.eventId)).size, 1);
  for (const delivery of receiver.deliveries) {
    t.true(verifyWebhook(delivery.headers['x-signature'] as string, delivery.rawBody, [SECRET], nowSec()).ok);
  }
  t.is(sim.stats().callbacksFailed, 0);
});

test('when the receiver always fails, then delivery gives up after callbackRetryMax attempts', async (t) => {
  const { url, receiver, sim } = await startHarness(t, { statusFor: () => 503, callbackRetryMax: 3 });
  await postPayout(url, payout());
  await waitFor('the give-up', () => sim.stats().callbacksFailed === 1);
  t.is(receiver.deliveries.length, 3);
  t.is(sim.stats().callbacksSent, 0);
});

test('when /control gets valid knobs, then they apply; bad values or unknown keys give 400 and change nothing', async (t) => {
  const { url, sim } = await startHarness(t);
  t.deepEqual((await call(url, 'GET', '/control')).body, KNOBS_DEFAULT);
  const changed = await call(url, 'POST', '/control', JSON.stringify({ rejectRate: 0.25, latencyMs: 7 }));
  t.is(changed.status, 200);
  const expected = { ...KNOBS_DEFAULT, rejectRate: 0.25, latencyMs: 7 };
  t.deepEqual(changed.body, expected);
  const invalid = [
    { rejectRate: 1.5 },
    { errorRate: -0.1 },
    { latencyMs: 1.5 },
    { lateCallbackMs: 600_001 },
    { latencyMs: '5' },
    { rejectRate: 0.5, unknownKnob: 1 },
    [],
    null,
  ];
  for (const body of invalid) {
    const answer = await call(url, 'POST', '/control', JSON.stringify(body));
    t.is(answer.status, 400, JSON.stringify(body));
    t.is(answer.body.error.code, 'invalid_request');
  }
  t.is((await call(url, 'POST', '/control', '{not json')).status, 400);
  t.deepEqual((await call(url, 'GET', '/control')).body, expected);
  t.throws(() => sim.setKnobs({ hangRate: 2 }));
  t.deepEqual(sim.getKnobs(), expected);
});

test('when two simulators share a seed, then the same request order gets the same decisions; another seed differs', async (t) => {
  const knobs = { rejectRate: 0.3, errorRate: 0.3, failAfterAcceptRate: 0.5, dropCallbackRate: 1 };
  const run = async (seed: number) => {
    const { url, sim } = await startHarness(t, { knobs, seed });
    const statuses: number[] = [];
    for (let index = 0; index < 30; index += 1) {
      statuses.push((await postPayout(url, { reference: `seeded-${index}`, amount: '1.00', currency: 'USD', destination: 'd' })).status);
    }
    await waitFor('all outcomes', () => sim.stats().callbacksDropped === sim.stats().accepted);
    const outcomes: string[] = [];
    for (let index = 0; index < 30; index += 1)
      outcomes.push((await getPayout(url, `seeded-${index}`)).text.replace(/"updatedAt":"[^"]*"/, ''));
    return { statuses, outcomes, executed: sim.stats().executed };
  };
  const first = await run(7);
  const second = await run(7);
  t.deepEqual(second, first);
  t.true(new Set(first.statuses).size >= 3, 'the knobs produce a mix of answers');
  t.notDeepEqual((await run(8)).statuses, first.statuses);
});

test('when a route is unknown, a payout is unknown, or a body is too large, then 404, 404 and 413', async (t) => {
  const { url, sim } = await startHarness(t);
  t.is((await call(url, 'GET', '/nope')).status, 404);
  t.is((await call(url, 'DELETE', '/payouts')).status, 404);
  const missing = await getPayout(url, 'no-such-reference');
  t.is(missing.status, 404);
  t.deepEqual(missing.body, { error: { code: 'payout_not_found', reference: 'no-such-reference' } }, 'the payout’s 404 names it');
  t.deepEqual((await call(url, 'GET', '/nope')).body, { error: { code: 'not_found' } }, 'a route’s 404 does not');
  const huge = payout({ destination: 'x'.repeat(70 * 1024) });
  t.is((await postPayout(url, huge)).status, 413);
  t.is(sim.stats().payouts, 0);
});

test('when knobs come from PSP_SIM_* variables, then they are read, and a bad value throws naming the variable', (t) => {
  t.is(knobEnvName('latencyMs'), 'PSP_SIM_LATENCY_MS');
  t.is(knobEnvName('reverseAfterPaidRate'), 'PSP_SIM_REVERSE_AFTER_PAID_RATE');
  t.deepEqual(knobsFromEnv({ PSP_SIM_LATENCY_MS: '15', PSP_SIM_REJECT_RATE: '0.2', PSP_SIM_HANG_RATE: '' }), {
    ...KNOBS_DEFAULT,
    latencyMs: 15,
    rejectRate: 0.2,
  });
  t.throws(() => knobsFromEnv({ PSP_SIM_REJECT_RATE: '2' }), { message: /PSP_SIM_REJECT_RATE/ });
  t.throws(() => knobsFromEnv({ PSP_SIM_LATENCY_MS: '1.5' }), { message: /PSP_SIM_LATENCY_MS/ });
  t.throws(() => knobsFromEnv({ PSP_SIM_DROP_CALLBACK_RATE: 'often' }), { message: /PSP_SIM_DROP_CALLBACK_RATE/ });
});
