// Operators and their sessions on the Balance DB (sql/balance/0011_operations_console.sql).
import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import { isUniqueViolation } from '../http/errorHandler.ts';

/** In increasing order of power; each role may do what the ones before it may. */
export const OPERATOR_ROLES = ['viewer', 'operator', 'approver', 'admin'] as const;
export type OperatorRole = (typeof OPERATOR_ROLES)[number];

export function roleAtLeast(role: OperatorRole, least: OperatorRole): boolean {
  return OPERATOR_ROLES.indexOf(role) >= OPERATOR_ROLES.indexOf(least);
}

export const LOGIN_PATTERN = /^[a-z0-9][a-z0-9_.-]{1,63}$/;
const SESSIONS_PRUNED_PER_LOGIN = 100;

const OperatorRow = z.object({
  operatorId: z.bigint(),
  login: z.string(),
  displayName: z.string(),
  role: z.enum(OPERATOR_ROLES),
  disabledAt: z.number().nullable(),
  lockedUntil: z.number().nullable(),
  failedLogins: z.number(),
  passwordChangedAt: z.number(),
  createdBy: z.string(),
  createdAt: z.number(),
  activeSessions: z.number(),
});
export type OperatorRow = z.infer<typeof OperatorRow>;

const operatorColumns = sql.fragment`
  o.id as "operatorId", o.login, o.display_name as "displayName", o.role, o.disabled_at as "disabledAt",
  case when o.locked_until > now() then o.locked_until end as "lockedUntil", o.failed_logins as "failedLogins",
  o.password_changed_at as "passwordChangedAt", o.created_by as "createdBy", o.created_at as "createdAt",
  (select count(*)::int from operator_sessions s
    where s.operator_id = o.id and s.revoked_at is null and s.expires_at > now()) as "activeSessions"`;

export function operatorView(row: OperatorRow) {
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  return {
    operatorId: row.operatorId.toString(),
    login: row.login,
    displayName: row.displayName,
    role: row.role,
    disabled: row.disabledAt !== null,
    disabledAt: iso(row.disabledAt),
    lockedUntil: iso(row.lockedUntil),
    failedLogins: row.failedLogins,
    passwordChangedAt: iso(row.passwordChangedAt),
    createdBy: row.createdBy,
    createdAt: iso(row.createdAt),
    activeSessions: row.activeSessions,
  };
}

export async function insertOperator(
  db: CommonQueryMethods,
  input: { login: string; displayName: string; role: OperatorRole; passwordHash: string; createdBy: string },
): Promise<OperatorRow | 'login_taken'> {
  try {
    return await db.one(sql.type(OperatorRow)`
      with o as (
        insert into operators (login, display_name, role, password_hash, created_by)
        values (${input.login}, ${input.displayName}, ${input.role}, ${input.passwordHash}, ${input.createdBy})
        returning *
      )
      select ${operatorColumns} from o`);
  } catch (error) {
    if (isUniqueViolation(error, 'operators_login_key')) return 'login_taken';
    throw error;
  }
}

export async function listOperators(db: CommonQueryMethods): Promise<readonly OperatorRow[]> {
  return db.any(sql.type(OperatorRow)`select ${operatorColumns} from operators o order by o.login limit 1000`);
}

export async function findOperator(db: CommonQueryMethods, operatorId: string): Promise<OperatorRow | null> {
  return db.maybeOne(sql.type(OperatorRow)`select ${operatorColumns} from operators o where o.id = ${operatorId}`);
}

const LoginRow = z.object({
  operatorId: z.bigint(),
  passwordHash: z.string(),
  usable: z.boolean(),
});

/** The operator a sign-in names; `usable`: neither disabled nor locked out. */
export async function operatorForLogin(db: CommonQueryMethods, login: string) {
  return db.maybeOne(sql.type(LoginRow)`
    select id as "operatorId", password_hash as "passwordHash",
           disabled_at is null and (locked_until is null or locked_until <= now()) as usable
      from operators where login = ${login}`);
}

/** Counts a failed sign-in; at `failuresMax` in a row the account locks for `lockoutMinutes`. */
export async function recordLoginFailure(db: CommonQueryMethods, operatorId: bigint, failuresMax: number, lockoutMinutes: number) {
  return db.one(sql.type(z.object({ failedLogins: z.number(), locked: z.boolean() }))`
    update operators
       set failed_logins = failed_logins + 1,
           locked_until = case when failed_logins + 1 >= ${failuresMax}
                               then now() + make_interval(mins => ${lockoutMinutes}) else locked_until end,
           updated_at = now()
     where id = ${operatorId}
    returning failed_logins as "failedLogins", coalesce(locked_until > now(), false) as locked`);
}

export async function recordLoginSuccess(db: CommonQueryMethods, operatorId: bigint): Promise<void> {
  await db.query(sql.unsafe`
    update operators set failed_logins = 0, locked_until = null, updated_at = now()
     where id = ${operatorId} and (failed_logins <> 0 or locked_until is not null)`);
}

export async function updateOperator(
  db: CommonQueryMethods,
  operatorId: string,
  change: { role?: OperatorRole; displayName?: string; disabled?: boolean; unlock?: boolean },
): Promise<OperatorRow | null> {
  const keep = (column: string) => sql.identifier([column]);
  return db.maybeOne(sql.type(OperatorRow)`
    with o as (
      update operators set
        role = ${change.role ?? keep('role')},
        display_name = ${change.displayName ?? keep('display_name')},
        disabled_at = ${change.disabled === undefined ? keep('disabled_at') : change.disabled ? sql.fragment`coalesce(disabled_at, now())` : null},
        failed_logins = ${change.unlock ? 0 : keep('failed_logins')},
        locked_until = ${change.unlock ? null : keep('locked_until')},
        updated_at = now()
       where id = ${operatorId}
      returning *
    )
    select ${operatorColumns} from o`);
}

export async function setOperatorPassword(db: CommonQueryMethods, operatorId: string, passwordHash: string): Promise<boolean> {
  const result = await db.query(sql.unsafe`
    update operators set password_hash = ${passwordHash}, password_changed_at = now(), failed_logins = 0, locked_until = null,
           updated_at = now()
     where id = ${operatorId}`);
  return result.rowCount === 1;
}

export async function passwordHashOf(db: CommonQueryMethods, operatorId: string): Promise<string | null> {
  return db.maybeOneFirst(sql.type(z.object({ passwordHash: z.string() }))`
    select password_hash as "passwordHash" from operators where id = ${operatorId}`);
}

// ---- sessions

export async function insertSession(
  db: CommonQueryMethods,
  input: { idHash: Buffer; operatorId: bigint; maxHours: number; clientIp: string | null; userAgent: string | null },
): Promise<number> {
  await db.query(sql.unsafe`
    delete from operator_sessions where id_hash in (
      select id_hash from operator_sessions where expires_at < now() - interval '1 day' order by expires_at
       limit ${SESSIONS_PRUNED_PER_LOGIN})`);
  return db.oneFirst(sql.type(z.object({ expiresAt: z.number() }))`
    insert into operator_sessions (id_hash, operator_id, expires_at, client_ip, user_agent)
    values (${sql.binary(input.idHash)}, ${input.operatorId}, now() + make_interval(hours => ${input.maxHours}),
            ${input.clientIp}, ${input.userAgent === null ? null : input.userAgent.slice(0, 512)})
    returning expires_at as "expiresAt"`);
}

const SessionRow = z.object({
  operatorId: z.bigint(),
  login: z.string(),
  displayName: z.string(),
  role: z.enum(OPERATOR_ROLES),
  expiresAt: z.number(),
  idleExpiresAt: z.number(),
  stale: z.boolean(),
});
export type SessionRow = z.infer<typeof SessionRow>;

/** The live session with this hash: not revoked, not past its absolute or idle expiry, its operator enabled. */
export async function findLiveSession(db: CommonQueryMethods, idHash: Buffer, idleMinutes: number): Promise<SessionRow | null> {
  return db.maybeOne(sql.type(SessionRow)`
    select o.id as "operatorId", o.login, o.display_name as "displayName", o.role, s.expires_at as "expiresAt",
           least(s.expires_at, s.last_seen_at + make_interval(mins => ${idleMinutes})) as "idleExpiresAt",
           s.last_seen_at < now() - interval '30 seconds' as stale
      from operator_sessions s join operators o on o.id = s.operator_id
     where s.id_hash = ${sql.binary(idHash)} and s.revoked_at is null and s.expires_at > now()
       and s.last_seen_at > now() - make_interval(mins => ${idleMinutes}) and o.disabled_at is null`);
}

/** The operator acted: the idle clock starts again (at most one write per 30 s per session). */
export async function touchSession(db: CommonQueryMethods, idHash: Buffer): Promise<void> {
  await db.query(sql.unsafe`
    update operator_sessions set last_seen_at = now()
     where id_hash = ${sql.binary(idHash)} and last_seen_at < now() - interval '30 seconds'`);
}

export async function revokeSession(db: CommonQueryMethods, idHash: Buffer): Promise<boolean> {
  const result = await db.query(sql.unsafe`
    update operator_sessions set revoked_at = now() where id_hash = ${sql.binary(idHash)} and revoked_at is null`);
  return result.rowCount === 1;
}

/** Ends every session of an operator (disabled, password changed) but `except`; returns how many. */
export async function revokeOperatorSessions(db: CommonQueryMethods, operatorId: string | bigint, except?: Buffer): Promise<number> {
  const result = await db.query(sql.unsafe`
    update operator_sessions set revoked_at = now()
     where operator_id = ${operatorId} and revoked_at is null
       ${except ? sql.fragment`and id_hash <> ${sql.binary(except)}` : sql.fragment``}`);
  return result.rowCount;
}
