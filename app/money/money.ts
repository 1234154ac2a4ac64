// Money is an integer number of minor units (bigint) end to end; decimal strings on the wire.
// This module is pure: no I/O, no floats on any path.

export const CURRENCY_EXPONENTS = { USD: 2, EUR: 2, GBP: 2, JPY: 0 } as const;
export type Currency = keyof typeof CURRENCY_EXPONENTS;
/** The closed set of currencies, as a non-empty tuple (what z.enum takes). */
export const CURRENCIES = Object.keys(CURRENCY_EXPONENTS) as [Currency, ...Currency[]];

/** Largest amount accepted in a request, in major units (docs/api.md). */
export const AMOUNT_MAJOR_MAX = 10n ** 12n;
/** Longest decimal text we are willing to look at; anything longer is not a sane amount. */
const AMOUNT_TEXT_LENGTH_MAX = 64;
/** Exponent part of "1e5": bounded so that 10n ** exponent can never be expensive. */
const SCIENTIFIC_EXPONENT_ABS_MAX = 40;

export function isCurrency(value: string): value is Currency {
  return Object.hasOwn(CURRENCY_EXPONENTS, value);
}

export function currencyExponent(currency: Currency): number {
  return CURRENCY_EXPONENTS[currency];
}

export type AmountParseFailure = 'format' | 'precision' | 'not_positive' | 'too_large';
export type AmountParseResult = { readonly ok: true; readonly minor: bigint } | { readonly ok: false; readonly reason: AmountParseFailure };

// JSON number grammar (RFC 8259): what the source text of a JSON number may look like.
const DECIMAL_PATTERN = /^(-?)(0|[1-9]\d*)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/;

/**
 * A decimal STRING is digits with an optional point and fraction ("1000", "12.30"), and an optional
 * leading minus (read, so that "-1" is refused as not positive rather than as garbage). Exponent
 * notation belongs to JSON numbers only: the string "1e3" is not an amount.
 */
export const DECIMAL_STRING_PATTERN = /^-?(0|[1-9]\d*)(\.\d+)?$/;

export function isDecimalString(text: string): boolean {
  return text.length <= AMOUNT_TEXT_LENGTH_MAX && DECIMAL_STRING_PATTERN.test(text);
}

/**
 * A decimal value as an exact fraction digits / 10^scale, trailing zeros removed.
 * "123.10" → { digits: 12310n → 1231n, scale: 1 }.
 */
export type ExactDecimal = { readonly negative: boolean; readonly digits: bigint; readonly scale: number };

export function parseDecimal(text: string): ExactDecimal | null {
  if (text.length === 0 || text.length > AMOUNT_TEXT_LENGTH_MAX) return null;
  const match = DECIMAL_PATTERN.exec(text);
  if (!match) return null;
  const [, sign, integerPart = '0', fractionPart = '', exponentText] = match;
  const exponent = exponentText === undefined ? 0 : Number(exponentText);
  if (!Number.isSafeInteger(exponent) || Math.abs(exponent) > SCIENTIFIC_EXPONENT_ABS_MAX) return null;
  let digits = BigInt(integerPart + fractionPart);
  let scale = fractionPart.length - exponent;
  if (scale < 0) {
    digits *= 10n ** BigInt(-scale);
    scale = 0;
  }
  while (scale > 0 && digits % 10n === 0n) {
    digits /= 10n;
    scale -= 1;
  }
  if (digits === 0n) scale = 0;
  return { negative: sign === '-' && digits !== 0n, digits, scale };
}

const AMOUNT_FAILURE_TEXT: Readonly<Record<AmountParseFailure, string>> = {
  format: 'must be a decimal number',
  precision: 'has more decimals than the currency allows',
  not_positive: 'must be positive',
  too_large: 'must be at most 1e12',
};

export function describeAmountFailure(reason: AmountParseFailure): string {
  return AMOUNT_FAILURE_TEXT[reason];
}

/**
 * Parses a request amount (decimal string, or the exact source text of a JSON number) into minor
 * units of `currency`. Trailing zeros do not count as decimals: "1.50" is 150 cents.
 */
export function parseAmount(text: string, currency: Currency): AmountParseResult {
  const decimal = parseDecimal(text.trim() === text ? text : '');
  if (!decimal) return { ok: false, reason: 'format' };
  if (decimal.negative || decimal.digits === 0n) return { ok: false, reason: 'not_positive' };
  const exponent = currencyExponent(currency);
  if (decimal.scale > exponent) return { ok: false, reason: 'precision' };
  const minor = decimal.digits * 10n ** BigInt(exponent - decimal.scale);
  if (minor > AMOUNT_MAJOR_MAX * 10n ** BigInt(exponent)) return { ok: false, reason: 'too_large' };
  return { ok: true, minor };
}

/** Minor units → decimal string with exactly the currency's number of decimals: 12312n → "123.12". */
export function formatMinor(minor: bigint, currency: Currency): string {
  const exponent = currencyExponent(currency);
  const negative = minor < 0n;
  const absolute = (negative ? -minor : minor).toString();
  if (exponent === 0) return (negative ? '-' : '') + absolute;
  const padded = absolute.padStart(exponent + 1, '0');
  const integerPart = padded.slice(0, padded.length - exponent);
  const fractionPart = padded.slice(padded.length - exponent);
  return `${negative ? '-' : ''}${integerPart}.${fractionPart}`;
}

/** A normalized textual form of a decimal, used to compare requests ("1.50" and 1.5 are the same). */
export function canonicalDecimal(text: string): string | null {
  const decimal = parseDecimal(text);
  if (!decimal) return null;
  const digits = decimal.digits.toString().padStart(decimal.scale + 1, '0');
  const body = decimal.scale === 0 ? digits : `${digits.slice(0, -decimal.scale)}.${digits.slice(-decimal.scale)}`;
  return (decimal.negative ? '-' : '') + body;
}
