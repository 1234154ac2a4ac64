import { createHmac } from 'node:crypto';
import test from 'ava';
import fc from 'fast-check';
import { signWebhook, verifyWebhook, WEBHOOK_HEADER_LENGTH_MAX, WEBHOOK_SIGNATURES_MAX } from '../app/gateway/webhookSignature.ts';

const SECRET = 'whsec_test_0123456789abcdef';
const OTHER_SECRET = 'whsec_other_fedcba9876543210';
const NOW_SEC = 1_760_000_000;
const BODY = '{"eventId":"e-1","reference":"r-1","status":"paid","occurredAt":"2025-10-09T08:53:20.000Z"}';

function v1(secret: string, timestampSec: number, rawBody: string): string {
  return createHmac('sha256', secret).update(`${timestampSec}.${rawBody}`).digest('hex');
}

test('when a body is signed with the secret, then it verifies with its timestamp', (t) => {
  const header = signWebhook(SECRET, BODY, NOW_SEC);
  t.is(header, `t=${NOW_SEC},v1=${v1(SECRET, NOW_SEC, BODY)}`);
  t.deepEqual(verifyWebhook(header, BODY, [SECRET], NOW_SEC), { ok: true, timestampSec: NOW_SEC });
});

test('when the raw body is a Buffer, then it verifies like the same string', (t) => {
  const header = signWebhook(SECRET, BODY, NOW_SEC);
  t.true(verifyWebhook(header, Buffer.from(BODY, 'utf8'), [SECRET], NOW_SEC).ok);
});

test('when one byte of the body changes, then the signature is bad', (t) => {
  const header = signWebhook(SECRET, BODY, NOW_SEC);
  const tampered = BODY.replace('"paid"', '"fail"');
  t.deepEqual(verifyWebhook(header, tampered, [SECRET], NOW_SEC), { ok: false, reason: 'bad_signature' });
  t.deepEqual(verifyWebhook(header, `${BODY} `, [SECRET], NOW_SEC), { ok: false, reason: 'bad_signature' });
});

test('when the timestamp in the header is altered, then the signature is bad', (t) => {
  const header = signWebhook(SECRET, BODY, NOW_SEC).replace(`t=${NOW_SEC}`, `t=${NOW_SEC + 1}`);
  t.deepEqual(verifyWebhook(header, BODY, [SECRET], NOW_SEC), { ok: false, reason: 'bad_signature' });
});

test('when signed with another secret, then the signature is bad', (t) => {
  const header = signWebhook(OTHER_SECRET, BODY, NOW_SEC);
  t.deepEqual(verifyWebhook(header, BODY, [SECRET], NOW_SEC), { ok: false, reason: 'bad_signature' });
  t.deepEqual(verifyWebhook(header, BODY, [], NOW_SEC), { ok: false, reason: 'bad_signature' });
});

test('when the timestamp is older or newer than the tolerance, then it is stale, and at the edge it passes', (t) => {
  const old = signWebhook(SECRET, BODY, NOW_SEC - 301);
  const future = signWebhook(SECRET, BODY, NOW_SEC + 301);
  t.deepEqual(verifyWebhook(old, BODY, [SECRET], NOW_SEC), { ok: false, reason: 'stale' });
  t.deepEqual(verifyWebhook(future, BODY, [SECRET], NOW_SEC), { ok: false, reason: 'stale' });
  t.true(verifyWebhook(signWebhook(SECRET, BODY, NOW_SEC - 300), BODY, [SECRET], NOW_SEC).ok);
  t.true(verifyWebhook(signWebhook(SECRET, BODY, NOW_SEC + 300), BODY, [SECRET], NOW_SEC).ok);
  t.deepEqual(verifyWebhook(signWebhook(SECRET, BODY, NOW_SEC - 61), BODY, [SECRET], NOW_SEC, 60), { ok: false, reason: 'stale' });
});

test('when the header carries several v1 entries, then any one matching a configured secret passes', (t) => {
  const header = `t=${NOW_SEC},v1=${v1(OTHER_SECRET, NOW_SEC, BODY)},v1=${v1(SECRET, NOW_SEC, BODY)}`;
  t.true(verifyWebhook(header, BODY, [SECRET], NOW_SEC).ok);
  t.true(verifyWebhook(header, BODY, [OTHER_SECRET], NOW_SEC).ok);
  t.deepEqual(verifyWebhook(header, BODY, ['third-secret'], NOW_SEC), { ok: false, reason: 'bad_signature' });
});

test('when several secrets are configured (rotation), then a signature by any of them passes', (t) => {
  const header = signWebhook(OTHER_SECRET, BODY, NOW_SEC);
  t.true(verifyWebhook(header, BODY, [SECRET, OTHER_SECRET], NOW_SEC).ok);
  t.true(verifyWebhook(header, BODY, [OTHER_SECRET, SECRET], NOW_SEC).ok);
});

test('when an empty secret is configured, then it never matches, and signing with it throws', (t) => {
  const forged = `t=${NOW_SEC},v1=${v1('', NOW_SEC, BODY)}`;
  t.deepEqual(verifyWebhook(forged, BODY, [''], NOW_SEC), { ok: false, reason: 'bad_signature' });
  t.throws(() => signWebhook('', BODY, NOW_SEC));
  t.throws(() => signWebhook(SECRET, BODY, -1));
  t.throws(() => signWebhook(SECRET, BODY, 1.5));
});

test('when the header is absent or blank, then it is missing', (t) => {
  t.deepEqual(verifyWebhook(undefined, BODY, [SECRET], NOW_SEC), { ok: false, reason: 'missing' });
  t.deepEqual(verifyWebhook('', BODY, [SECRET], NOW_SEC), { ok: false, reason: 'missing' });
  t.deepEqual(verifyWebhook('   ', BODY, [SECRET], NOW_SEC), { ok: false, reason: 'missing' });
});

test('when the header is malformed, then it is rejected as malformed', (t) => {
  const good = v1(SECRET, NOW_SEC, BODY);
  const malformed = [
    'garbage',
    `v1=${good}`, // no timestamp
    `t=${NOW_SEC}`, // no signature
    `t=${NOW_SEC},v0=${good}`, // only an unknown scheme
    `t=abc,v1=${good}`,
    `t=-5,v1=${good}`,
    `t=1.5,v1=${good}`,
    `t=${NOW_SEC},t=${NOW_SEC},v1=${good}`, // ambiguous timestamp
    `t=${NOW_SEC},v1=${good.slice(0, 63)}`, // short signature
    `t=${NOW_SEC},v1=${good}00`, // long signature
    `t=${NOW_SEC},v1=${'z'.repeat(64)}`, // not hex
    `t=${NOW_SEC},v1=`,
    `t=${NOW_SEC},=${good}`,
    `t=${NOW_SEC},,v1=${good}`,
  ];
  for (const header of malformed) {
    t.deepEqual(verifyWebhook(header, BODY, [SECRET], NOW_SEC), { ok: false, reason: 'malformed' }, header);
  }
});

test('when unknown schemes and spaces accompany a valid v1, then it still passes', (t) => {
  const header = `t=${NOW_SEC}, v0=legacy, v1=${v1(SECRET, NOW_SEC, BODY)}`;
  t.true(verifyWebhook(header, BODY, [SECRET], NOW_SEC).ok);
});

test('when the header is too long or carries too many v1 entries, then it is malformed even if one is valid', (t) => {
  const good = v1(SECRET, NOW_SEC, BODY);
  const decoy = '0'.repeat(64);
  const tooMany = [`t=${NOW_SEC}`, ...Array.from({ length: WEBHOOK_SIGNATURES_MAX }, () => `v1=${decoy}`), `v1=${good}`].join(',');
  t.deepEqual(verifyWebhook(tooMany, BODY, [SECRET], NOW_SEC), { ok: false, reason: 'malformed' });
  const atLimit = [`t=${NOW_SEC}`, ...Array.from({ length: WEBHOOK_SIGNATURES_MAX - 1 }, () => `v1=${decoy}`), `v1=${good}`].join(',');
  t.true(verifyWebhook(atLimit, BODY, [SECRET], NOW_SEC).ok);
  const tooLong = `t=${NOW_SEC},v1=${good},v0=${'x'.repeat(WEBHOOK_HEADER_LENGTH_MAX)}`;
  t.deepEqual(verifyWebhook(tooLong, BODY, [SECRET], NOW_SEC), { ok: false, reason: 'malformed' });
});

test('when any body is signed with any secret at any time, then it verifies, and a changed body does not', (t) => {
  const run = fc.check(
    fc.property(
      fc.string({ minLength: 1, maxLength: 64 }),
      fc.string({ maxLength: 512 }),
      fc.integer({ min: 0, max: 4_000_000_000 }),
      fc.string({ minLength: 1, maxLength: 8 }),
      (secret, body, timestampSec, suffix) => {
        const header = signWebhook(secret, body, timestampSec);
        const verified = verifyWebhook(header, body, [secret], timestampSec);
        const changed = verifyWebhook(header, body + suffix, [secret], timestampSec);
        return verified.ok && verified.timestampSec === timestampSec && !changed.ok && changed.reason === 'bad_signature';
      },
    ),
    { numRuns: 200 },
  );
  t.false(run.failed, fc.defaultReportMessage(run));
  t.is(run.numRuns, 200, 'every generated case was checked');
});
