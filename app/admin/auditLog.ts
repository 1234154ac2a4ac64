// The operators' audit trail: written in the same transaction as the action it records. `operator`
// is who acted: a console operator's login (with `operatorId`, the operators row), or the name of
// the admin token used ("admin" for ADMIN_TOKEN, a name from ADMIN_TOKENS), never a name a caller
// sent in a header.
import { sql, type CommonQueryMethods } from 'slonik';

export async function recordAudit(
  db: CommonQueryMethods,
  entry: {
    operator: string;
    /** the operators row of a console operator; absent for the admin tokens */
    operatorId?: string | bigint | null;
    action: string;
    subject: string;
    details: Record<string, unknown>;
    requestId: string | null;
  },
): Promise<void> {
  await db.query(sql.unsafe`
    insert into admin_audit_log (operator, operator_id, action, subject, details, request_id)
    values (${entry.operator}, ${entry.operatorId ?? null}, ${entry.action}, ${entry.subject},
            ${sql.jsonb(entry.details as Parameters<typeof sql.jsonb>[0])}, ${entry.requestId})`);
}
