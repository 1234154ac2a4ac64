// Request and response schemas of the withdraw API; the OpenAPI document is generated from them.
import { CURRENCIES } from '../money/money.ts';
import { decimalInput, z } from '../http/zod.ts';
import { WITHDRAW_STATUSES, type WithdrawStatus } from './withdrawStateMachine.ts';

export const ACCOUNT_ID_EXTERNAL = /^[A-Za-z0-9_-]{1,64}$/;

export const WithdrawRequestSchema = z
  .object({
    toAccountId: z.string().regex(ACCOUNT_ID_EXTERNAL, '1-64 characters of [A-Za-z0-9_-]'),
    amount: decimalInput,
    fromAccountId: z.string().min(1).max(64).optional(),
    currency: z.enum(CURRENCIES).optional().openapi({ description: 'picks the default account when fromAccountId is omitted' }),
  })
  .openapi('WithdrawRequest');
export type WithdrawRequest = z.infer<typeof WithdrawRequestSchema>;

export const IDEMPOTENCY_HEADERS = ['idempotent-key', 'idempotency-key'] as const;

export const WithdrawOrderView = z
  .object({
    withdrawOrderId: z.string().uuid(),
    transactionId: z.string().uuid(),
    status: z.enum(WITHDRAW_STATUSES),
    amount: z.string().openapi({ example: '123.12' }),
    currency: z.string(),
    fromAccountId: z.string(),
    toAccountId: z.string(),
    createdAt: z.string().datetime(),
    updatedAt: z.string().datetime(),
    failureReason: z.string().optional(),
  })
  .openapi('WithdrawOrder');

export const WaitQuerySchema = z.object({
  waitMs: z.coerce.number().int().min(0).max(30_000).optional(),
  status: z.enum(WITHDRAW_STATUSES).optional(),
});

export const LIST_LIMIT_DEFAULT = 50;
export const LIST_LIMIT_MAX = 200;

const statusList = z
  .string()
  .max(200)
  .transform((text, ctx) => {
    const statuses = [...new Set(text.split(','))];
    for (const status of statuses) {
      if (!(WITHDRAW_STATUSES as readonly string[]).includes(status)) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, message: `one or more of ${WITHDRAW_STATUSES.join(', ')}, comma-separated` });
        return z.NEVER;
      }
    }
    return statuses as WithdrawStatus[];
  })
  .openapi({
    type: 'string',
    description: `one or more of ${WITHDRAW_STATUSES.join(', ')}, comma-separated`,
    example: 'processing,manual',
  });

const instant = z
  .string()
  .datetime({ offset: true, message: 'must be an ISO-8601 date-time with a time zone (2026-01-31T00:00:00Z)' })
  .openapi({ format: 'date-time' });

/** An integer query parameter as text: digits only, no sign, no exponent. */
export const limitParam = (max: number, fallback: number) =>
  z
    .string()
    .regex(/^\d{1,4}$/, `must be an integer from 1 to ${max}`)
    .transform(Number)
    .pipe(z.number().int().min(1, `must be an integer from 1 to ${max}`).max(max, `must be an integer from 1 to ${max}`))
    .optional()
    .transform((value) => value ?? fallback)
    .openapi({ type: 'integer', minimum: 1, maximum: max, description: `default ${fallback}` });

export const ListWithdrawsQuery = z
  .object({
    status: statusList.optional(),
    createdFrom: instant.optional().openapi({ description: 'orders created at or after this instant' }),
    createdTo: instant.optional().openapi({ description: 'orders created before this instant' }),
    userId: z
      .string()
      .regex(/^[A-Za-z0-9_.:@-]{1,128}$/, '1-128 characters of [A-Za-z0-9_.:@-]')
      .optional()
      .openapi({ description: 'admins only: one user’s orders' }),
    limit: limitParam(LIST_LIMIT_MAX, LIST_LIMIT_DEFAULT),
    cursor: z.string().max(512).optional().openapi({ description: 'nextCursor of the previous page' }),
  })
  .strict()
  .refine((q) => q.createdFrom === undefined || q.createdTo === undefined || Date.parse(q.createdFrom) <= Date.parse(q.createdTo), {
    message: 'must not be after createdTo',
    path: ['createdFrom'],
  });

export const WithdrawListView = z
  .object({
    items: z.array(WithdrawOrderView.extend({ userId: z.string().optional().openapi({ description: 'in an admin’s listing' }) })),
    nextCursor: z.string().nullable().openapi({ description: 'pass as cursor for the next page; null on the last page' }),
  })
  .openapi('WithdrawList');
