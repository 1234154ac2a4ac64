// Property tests of the pure money module: exact parsing of request amounts into minor units,
// formatting back, and the canonical form used to compare requests.
import test from 'ava';
import fc from 'fast-check';
import {
  AMOUNT_MAJOR_MAX,
  canonicalDecimal,
  CURRENCIES,
  currencyExponent,
  formatMinor,
  parseAmount,
  type Currency,
} from '../app/money/money.ts';

const RUNS = 500;

const currency = fc.constantFrom(...CURRENCIES);

function scaleOf(c: Currency): bigint {
  return 10n ** BigInt(currencyExponent(c));
}

/** Largest amount accepted, in minor units of the currency. */
function maxMinor(c: Currency): bigint {
  return AMOUNT_MAJOR_MAX * scaleOf(c);
}

/** A currency and an amount inside the accepted range, in its minor units. */
const validAmount = currency.chain((c) =>
  fc.tuple(fc.constant(c), fc.oneof(fc.bigInt({ min: 1n, max: 10_000n }), fc.bigInt({ min: 1n, max: maxMinor(c) }))),
);

/** Appends `zeros` zeros to the fraction of a formatted amount (adding the point for JPY). */
function withTrailingZeros(text: string, zeros: number): string {
  if (zeros === 0) return text;
  return text.includes('.') ? text + '0'.repeat(zeros) : `${text}.${'0'.repeat(zeros)}`;
}

/** Rewrites a plain decimal ("123.45") as mantissa-and-exponent ("12345e-2"), exactly. */
function asExponent(text: string, shift: number, upper: boolean): string {
  const [integerPart = '', fractionPart = ''] = text.split('.');
  const digits = (integerPart + fractionPart).replace(/^0+(?=\d)/, '');
  const exponent = -fractionPart.length - shift;
  const mantissa = digits === '0' ? '0' : digits + '0'.repeat(shift);
  const e = upper ? 'E' : 'e';
  return `${mantissa}${e}${exponent >= 0 ? `+${exponent}` : exponent}`;
}

test('when any valid minor amount is formatted, then parsing it gives the same minor amount, in every currency', (t) => {
  fc.assert(
    fc.property(validAmount, ([c, minor]) => {
      const text = formatMinor(minor, c);
      const exponent = currencyExponent(c);
      const shape = exponent === 0 ? /^[1-9]\d*$/ : new RegExp(`^(0|[1-9]\\d*)\\.\\d{${exponent}}$`);
      return shape.test(text) && deepEqualResult(parseAmount(text, c), { ok: true, minor });
    }),
    { numRuns: RUNS },
  );
  for (const c of CURRENCIES) {
    t.deepEqual(parseAmount(formatMinor(1n, c), c), { ok: true, minor: 1n });
    t.deepEqual(parseAmount(formatMinor(maxMinor(c), c), c), { ok: true, minor: maxMinor(c) }, `${c} maximum`);
  }
  t.is(formatMinor(12312n, 'USD'), '123.12');
  t.is(formatMinor(5n, 'EUR'), '0.05');
  t.is(formatMinor(0n, 'USD'), '0.00');
  t.is(formatMinor(-150n, 'GBP'), '-1.50');
  t.is(formatMinor(1500n, 'JPY'), '1500');
});

test('when a formatted amount carries extra trailing zeros, then they do not count as decimals', (t) => {
  fc.assert(
    fc.property(validAmount, fc.integer({ min: 0, max: 30 }), ([c, minor], zeros) => {
      const text = withTrailingZeros(formatMinor(minor, c), zeros);
      return deepEqualResult(parseAmount(text, c), { ok: true, minor });
    }),
    { numRuns: RUNS },
  );
  t.deepEqual(parseAmount('1.50', 'USD'), { ok: true, minor: 150n });
  t.deepEqual(parseAmount('1.500000', 'USD'), { ok: true, minor: 150n });
  t.deepEqual(parseAmount('1500.000', 'JPY'), { ok: true, minor: 1500n });
  t.deepEqual(parseAmount('7.0', 'JPY'), { ok: true, minor: 7n });
});

test('when an amount has more significant decimals than the currency allows, then it is refused as precision', (t) => {
  fc.assert(
    fc.property(validAmount, fc.integer({ min: 1, max: 9 }), fc.integer({ min: 0, max: 10 }), ([c, minor], digit, zeros) => {
      // a non-zero digit past the currency's decimals (after some zeros), then zeros that change nothing
      const base = formatMinor(minor, c);
      const text = `${base}${base.includes('.') ? '' : '.'}${'0'.repeat(zeros)}${digit}${'0'.repeat(zeros)}`;
      return deepEqualResult(parseAmount(text, c), { ok: false, reason: 'precision' });
    }),
    { numRuns: RUNS },
  );
  t.deepEqual(parseAmount('1.001', 'USD'), { ok: false, reason: 'precision' });
  t.deepEqual(parseAmount('1.5', 'JPY'), { ok: false, reason: 'precision' });
  t.deepEqual(parseAmount('0.001', 'EUR'), { ok: false, reason: 'precision' });
  t.deepEqual(parseAmount('1.0010', 'USD'), { ok: false, reason: 'precision' });
});

test('when an amount is zero or negative, then it is refused as not_positive', (t) => {
  fc.assert(
    fc.property(validAmount, fc.integer({ min: 0, max: 5 }), ([c, minor], zeros) => {
      const negative = `-${withTrailingZeros(formatMinor(minor, c), zeros)}`;
      return deepEqualResult(parseAmount(negative, c), { ok: false, reason: 'not_positive' });
    }),
    { numRuns: RUNS },
  );
  for (const c of CURRENCIES) {
    for (const zero of ['0', '-0', '0.00', '0.0000', '0e5', '-0.0', '0E-2']) {
      t.deepEqual(parseAmount(zero, c), { ok: false, reason: 'not_positive' }, `${zero} ${c}`);
    }
    t.deepEqual(parseAmount('-1', c), { ok: false, reason: 'not_positive' });
    t.deepEqual(parseAmount('-1e2', c), { ok: false, reason: 'not_positive' });
  }
});

test('when an amount is above 1e12 major units, then it is refused as too_large, and 1e12 itself is accepted', (t) => {
  fc.assert(
    fc.property(
      currency.chain((c) => fc.tuple(fc.constant(c), fc.bigInt({ min: maxMinor(c) + 1n, max: 10n ** 40n }))),
      ([c, minor]) => deepEqualResult(parseAmount(formatMinor(minor, c), c), { ok: false, reason: 'too_large' }),
    ),
    { numRuns: RUNS },
  );
  t.deepEqual(parseAmount('1000000000000', 'USD'), { ok: true, minor: 100_000_000_000_000n });
  t.deepEqual(parseAmount('1e12', 'JPY'), { ok: true, minor: 1_000_000_000_000n });
  t.deepEqual(parseAmount('1000000000000.01', 'USD'), { ok: false, reason: 'too_large' });
  t.deepEqual(parseAmount('1e13', 'USD'), { ok: false, reason: 'too_large' });
  t.deepEqual(parseAmount('1000000000001', 'JPY'), { ok: false, reason: 'too_large' });
});

test('when an amount is written with an exponent, then it is parsed exactly', (t) => {
  fc.assert(
    fc.property(validAmount, fc.integer({ min: 0, max: 12 }), fc.boolean(), ([c, minor], shift, upper) => {
      const text = asExponent(formatMinor(minor, c), shift, upper);
      return deepEqualResult(parseAmount(text, c), { ok: true, minor });
    }),
    { numRuns: RUNS },
  );
  t.deepEqual(parseAmount('1e2', 'USD'), { ok: true, minor: 10_000n });
  t.deepEqual(parseAmount('1E2', 'JPY'), { ok: true, minor: 100n });
  t.deepEqual(parseAmount('1.5E+1', 'USD'), { ok: true, minor: 1_500n });
  t.deepEqual(parseAmount('1.5E+1', 'JPY'), { ok: true, minor: 15n });
  t.deepEqual(parseAmount('150e-2', 'USD'), { ok: true, minor: 150n });
  t.deepEqual(parseAmount('1e-2', 'USD'), { ok: true, minor: 1n });
  t.deepEqual(parseAmount('12312e-2', 'EUR'), { ok: true, minor: 12_312n });
  t.deepEqual(parseAmount('1e-3', 'USD'), { ok: false, reason: 'precision' });
  t.deepEqual(parseAmount('1.5e-1', 'JPY'), { ok: false, reason: 'precision' });
  t.deepEqual(parseAmount('0.1e1', 'JPY'), { ok: true, minor: 1n });
});

const GARBAGE = [
  '',
  ' ',
  ' 1',
  '1 ',
  '\t1',
  '1\n',
  '1,00',
  '1.',
  '.5',
  '+1',
  '01',
  '00.5',
  '0x10',
  '0b1',
  'NaN',
  'Infinity',
  '-Infinity',
  '1e',
  '1e+',
  '1e-',
  'e5',
  '--1',
  '1..2',
  '1.2.3',
  '1_000',
  '1 000',
  '١٢٣',
  '１２',
  '12abc',
  'abc',
  '$1',
  '1$',
  '1e2.5',
  '1e999999999',
  '1e-999999999',
  '1E+999999999999999999999',
  '0e999999999',
  `1e${'9'.repeat(100)}`,
  '9'.repeat(65),
  `1.${'0'.repeat(100)}`,
  '1e41',
  '1e-41',
  'null',
  'true',
  '[1]',
  '{"a":1}',
  '"1"',
];

test('when an amount is garbage or has a huge exponent, then it is refused as format (and does not hang)', (t) => {
  for (const text of GARBAGE) {
    for (const c of CURRENCIES) {
      t.deepEqual(parseAmount(text, c), { ok: false, reason: 'format' }, JSON.stringify(text));
    }
    t.is(canonicalDecimal(text), null, JSON.stringify(text));
  }
});

test('when any string is parsed, then it never throws, and an accepted one formats back to the same value', (t) => {
  const text = fc.oneof(fc.string({ maxLength: 80, unit: 'binary' }), fc.stringMatching(/^-?\d{1,20}(\.\d{0,20})?([eE][+-]?\d{1,12})?$/));
  const run = fc.check(
    fc.property(text, currency, (s, c) => {
      const result = parseAmount(s, c);
      if (!result.ok) return ['format', 'precision', 'not_positive', 'too_large'].includes(result.reason);
      return result.minor > 0n && result.minor <= maxMinor(c) && canonicalDecimal(s) === canonicalDecimal(formatMinor(result.minor, c));
    }),
    { numRuns: 2_000 },
  );
  t.false(run.failed, fc.defaultReportMessage(run));
  t.is(run.numRuns, 2_000, 'every generated string was parsed');
  t.deepEqual(parseAmount('\u0000', 'USD'), { ok: false, reason: 'format' });
  t.deepEqual(parseAmount('12.30', 'USD'), { ok: true, minor: 1_230n });
  t.is(canonicalDecimal('12.30'), canonicalDecimal(formatMinor(1_230n, 'USD')));
});

/** A decimal value as digits / 10^scale, rendered several ways that all mean the same number. */
const decimalValue = fc.record({
  digits: fc.oneof(fc.bigInt({ min: 0n, max: 1_000n }), fc.bigInt({ min: 0n, max: 10n ** 18n })),
  scale: fc.integer({ min: 0, max: 12 }),
  negative: fc.boolean(),
});

function renderings(v: { digits: bigint; scale: number; negative: boolean }, zeros: number, shift: number): string[] {
  const sign = v.negative ? '-' : '';
  const padded = v.digits.toString().padStart(v.scale + 1, '0');
  const integerPart = padded.slice(0, padded.length - v.scale);
  const fractionPart = padded.slice(padded.length - v.scale);
  const plain = v.scale === 0 ? integerPart : `${integerPart}.${fractionPart}`;
  return [
    sign + plain,
    sign + withTrailingZeros(plain, zeros),
    sign + asExponent(plain, shift, false),
    sign + asExponent(withTrailingZeros(plain, zeros), shift, true),
    `${sign}${plain}e0`,
    `${sign}${plain}E-0`,
  ];
}

test('when two texts mean the same value, then their canonicalDecimal is equal; when not, it differs', (t) => {
  fc.assert(
    fc.property(decimalValue, fc.integer({ min: 0, max: 8 }), fc.integer({ min: 0, max: 8 }), (v, zeros, shift) => {
      const forms = renderings(v, zeros, shift);
      const canonical = forms.map(canonicalDecimal);
      return canonical[0] !== null && canonical.every((c) => c === canonical[0]);
    }),
    { numRuns: RUNS },
  );
  fc.assert(
    fc.property(decimalValue, decimalValue, (a, b) => {
      const sameValue =
        (a.digits === 0n && b.digits === 0n) ||
        (a.negative === b.negative && a.digits * 10n ** BigInt(b.scale) === b.digits * 10n ** BigInt(a.scale));
      const [ca] = renderings(a, 0, 0);
      const [cb] = renderings(b, 0, 0);
      return (canonicalDecimal(ca!) === canonicalDecimal(cb!)) === sameValue;
    }),
    { numRuns: RUNS },
  );
  fc.assert(
    fc.property(decimalValue, (v) => {
      const [plain] = renderings({ ...v, negative: false }, 0, 0);
      const positive = canonicalDecimal(plain!);
      const negative = canonicalDecimal(`-${plain!}`);
      return v.digits === 0n ? positive === negative : positive !== negative;
    }),
    { numRuns: RUNS },
  );
  t.not(canonicalDecimal('-1.5'), canonicalDecimal('1.5'));
  t.is(canonicalDecimal('1.50'), canonicalDecimal('1.5'));
  t.is(canonicalDecimal('150e-2'), canonicalDecimal('1.5'));
  t.is(canonicalDecimal('0.05'), '0.05');
  t.is(canonicalDecimal('-0.0'), canonicalDecimal('0'));
  t.not(canonicalDecimal('1.5'), canonicalDecimal('15'));
  t.not(canonicalDecimal('0.5'), canonicalDecimal('0.05'));
});

function deepEqualResult(actual: ReturnType<typeof parseAmount>, expected: ReturnType<typeof parseAmount>): boolean {
  if (actual.ok !== expected.ok) return false;
  if (actual.ok && expected.ok) return actual.minor === expected.minor;
  return !actual.ok && !expected.ok && actual.reason === expected.reason;
}
