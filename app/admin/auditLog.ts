// The operators' audit trail: written in the same transaction as the action it records.
import { sql, type CommonQueryMethods } from 'slonik';

export async function recordAudit(
  db: CommonQueryMethods,
  entry: { operator: string; action: string; subject: string; details: Record<string, unknown>; requestId: string | null },
): Promise<void> {
  await db.query(sql.unsafe`
    insert into admin_audit_log (operator, action, subject, details, request_id)
    values (${entry.operator}, ${entry.action}, ${entry.subject}, ${sql.jsonb(entry.details as Parameters<typeof sql.jsonb>[0])}, ${entry.requestId})`);
}
