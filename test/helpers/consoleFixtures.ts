// Fixtures for the console's tests: one operator of each role, orders stuck in manual review with
// the provider's answer chosen, failed jobs, breaks, and the audit rows to check.
import { sql } from 'slonik';
import { z } from 'zod';
import { eventually } from './asyncChecks.ts';
import { createOperator, signIn, type ConsoleClient } from './consoleClient.ts';
import type { TestSystem } from './system.ts';

export const ROLES = ['viewer', 'operator', 'approver', 'admin'] as const;
export type Crew = Record<'vera' | 'otto' | 'olga' | 'april' | 'arno' | 'ada', ConsoleClient> & { ids: Record<string, string> };

/** vera (viewer), otto and olga (operators), april and arno (approvers), ada (admin), each signed in. */
export async function crew(system: TestSystem): Promise<Crew> {
  const roles = { vera: 'viewer', otto: 'operator', olga: 'operator', april: 'approver', arno: 'approver', ada: 'admin' } as const;
  const ids: Record<string, string> = {};
  const clients: Partial<Crew> = {};
  for (const [login, role] of Object.entries(roles)) {
    ids[login] = await createOperator(system.url, system.adminToken, { login, role, displayName: `${login} ${role}` });
    (clients as Record<string, ConsoleClient>)[login] = await signIn(system.url, login);
  }
  return { ...(clients as Omit<Crew, 'ids'>), ids };
}

export const AuditRow = z.object({
  operator: z.string(),
  operatorId: z.string().nullable(),
  action: z.string(),
  subject: z.string(),
  details: z.record(z.unknown()),
});
export type AuditRow = z.infer<typeof AuditRow>;

export function auditWhere(system: TestSystem, subject: string): Promise<readonly AuditRow[]> {
  return system.db.databases.balance.any(sql.type(AuditRow)`
    select operator, operator_id::text as "operatorId", action, subject, details from admin_audit_log
     where subject = ${subject} order by id`);
}

/**
 * An order in manual review the way unknown outcomes put it there (no worker: nothing else moves
 * it). With `providerPaid` the simulator accepted and paid it (its callback lost), so the provider
 * answers "paid"; otherwise it never heard of it ("not found").
 */
export async function manualOrder(system: TestSystem, userId: string, providerPaid: boolean, amount = '25.00', fromAccountId?: string) {
  const accountId = fromAccountId ?? (await system.fundedAccount(userId, '100.00'));
  const token = await system.userToken(userId);
  const reply = await system.withdraw(token, { toAccountId: 'dest', amount, fromAccountId: accountId });
  if (reply.status !== 202) throw new Error(`withdraw: ${reply.status} ${reply.text}`);
  const { withdrawOrderId: orderId, transactionId } = reply.body.data as { withdrawOrderId: string; transactionId: string };
  if (providerPaid) {
    system.sim!.setKnobs({ dropCallbackRate: 1 });
    const payout = await fetch(`${system.simUrl}/payouts`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': transactionId },
      body: JSON.stringify({ reference: transactionId, amount, currency: 'USD', destination: 'dest' }),
    });
    if (payout.status !== 202) throw new Error(`provider refused the payout: ${payout.status}`);
    await eventually('the provider to settle the payout', async () => {
      const status = await fetch(`${system.simUrl}/payouts/${transactionId}`);
      return status.ok && ((await status.json()) as { status: string }).status === 'paid';
    });
  }
  await system.db.databases.balance.query(sql.unsafe`
    select * from withdraw_transition(${transactionId}, array['init'], 'manual', 'job', 'test', 'outcome unknown', '{}'::jsonb)`);
  return { orderId, transactionId, accountId, userId };
}

/** A job of a task no worker knows, its attempts used up: what a permanently failed job looks like. */
export async function failedJob(system: TestSystem, payload: Record<string, unknown> = {}, task = 'test__no_such_task'): Promise<string> {
  const db = system.db.databases.balance;
  const id = await db.oneFirst(sql.type(z.object({ id: z.bigint() }))`
    select id from graphile_worker.add_job(${task}, ${sql.json(payload as Parameters<typeof sql.json>[0])}, max_attempts := 3)`);
  await db.query(
    sql.unsafe`update graphile_worker._private_jobs set attempts = 3, last_error = 'boom: provider said 500' where id = ${id}`,
  );
  return id.toString();
}

export type AccountMoney = { balance: bigint; available: bigint; reserved: bigint };

export function accountMoney(system: TestSystem, accountId: string): Promise<AccountMoney> {
  return system.db.databases.balance.one(sql.type(z.object({ balance: z.bigint(), available: z.bigint(), reserved: z.bigint() }))`
    select balance_minor as balance, available_minor as available, reserved_minor as reserved from accounts where id = ${accountId}`);
}

export function orderStatus(system: TestSystem, orderId: string): Promise<string> {
  return system.db.databases.balance.oneFirst(sql.type(z.object({ status: z.string() }))`
    select status from withdraw_orders where id = ${orderId}`);
}
