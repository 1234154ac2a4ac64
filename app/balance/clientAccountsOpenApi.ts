// The client API of wallets in the OpenAPI document.
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { ALWAYS, errors, okResponse, SECURITY } from '../http/openapiShapes.ts';
import { z } from '../http/zod.ts';
import { AccountListView, ListAccountsQuery, StatementQuery, StatementView } from './clientAccountRoutes.ts';

export function clientAccountsOpenApi(registry: OpenAPIRegistry): void {
  const tags = ['accounts'];
  registry.registerPath({
    method: 'get',
    path: '/accounts',
    operationId: 'listAccounts',
    tags,
    summary: 'The user’s accounts with balance, available and reserved (an admin: anyone’s)',
    security: SECURITY.userOrAdmin,
    request: { query: ListAccountsQuery },
    responses: { 200: okResponse('a page of accounts', AccountListView), ...errors(400, 401, ...ALWAYS, 503) },
  });
  registry.registerPath({
    method: 'get',
    path: '/accounts/{accountId}/statement',
    operationId: 'getStatement',
    tags,
    summary: 'A wallet’s statement from the ledger: opening and closing balances, each entry with its running balance',
    description:
      'The user’s view: a credit to the user is positive. openingBalance plus every amount of the period is closingBalance. A ' +
      'withdrawal shows when its amount is held (negative); a failed one is given back (withdrawal_returned); so the closing ' +
      'balance is what the account could spend at `to` (available), and equals its balance when nothing is in flight.',
    security: SECURITY.userOrAdmin,
    request: { params: z.object({ accountId: z.string().uuid() }), query: StatementQuery.innerType() },
    responses: { 200: okResponse('a page of the statement', StatementView), ...errors(400, 401, 403, 404, ...ALWAYS, 503) },
  });
}
