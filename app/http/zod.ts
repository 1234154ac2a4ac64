// zod, extended with .openapi() so the OpenAPI document is generated from the same schemas that
// validate requests. Schema modules import z from here.
import { extendZodWithOpenApi } from '@asteasolutions/zod-to-openapi';
import { isLosslessNumber, type LosslessNumber } from 'lossless-json';
import { z } from 'zod';
import { DECIMAL_STRING_PATTERN, isDecimalString } from '../money/money.ts';

extendZodWithOpenApi(z);

export { z };

const DECIMAL_STRING_MESSAGE = 'must be a decimal string: digits with an optional point (exponents only in JSON numbers)';

/**
 * A JSON number (its exact source text, exponent form allowed) or a decimal string (digits with an
 * optional point, no exponent); never a float. The result is the text, for parseAmount.
 */
export const decimalInput = z
  .union([
    z.string().openapi({ pattern: DECIMAL_STRING_PATTERN.source, example: '123.12' }),
    z.custom<LosslessNumber>((value) => isLosslessNumber(value), 'must be a number or a decimal string').openapi({ type: 'number' }),
  ])
  .superRefine((value, ctx) => {
    if (typeof value === 'string' && !isDecimalString(value))
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: DECIMAL_STRING_MESSAGE });
  })
  .transform((value) => (typeof value === 'string' ? value : value.value))
  .openapi({ description: 'decimal amount: a JSON number (exponent form allowed) or a decimal string of digits with an optional point' });

/** An integer sent as a JSON number or a string. */
export const integerInput = z
  .union([z.string(), z.custom<LosslessNumber>((value) => isLosslessNumber(value), 'must be an integer')])
  .transform((value) => (typeof value === 'string' ? value : value.value))
  .pipe(
    z
      .string()
      .regex(/^-?\d{1,15}$/, 'must be an integer')
      .transform(Number),
  );

export const uuidV7 = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i, 'must be a UUIDv7');

export const uuidAny = z.string().uuid();

/** "field: problem" for the first issue, which is what the envelope's msg carries. */
export function describeZodError(error: z.ZodError, prefix = ''): string {
  const issue = error.issues[0];
  if (!issue) return 'invalid request';
  const field = [prefix, ...issue.path.map(String)].filter(Boolean).join('.');
  const message = issue.code === 'invalid_type' && issue.received === 'undefined' ? 'is required' : issue.message;
  return field ? `${field}: ${message}` : message;
}
