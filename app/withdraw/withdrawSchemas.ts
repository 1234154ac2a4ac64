// Request and response schemas of the withdraw API; the OpenAPI document is generated from them.
import { CURRENCIES } from '../money/money.ts';
import { decimalInput, z } from '../http/zod.ts';
import { WITHDRAW_STATUSES } from './withdrawStateMachine.ts';

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
