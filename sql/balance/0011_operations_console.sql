-- Up Migration
-- The operations console (app/admin/console*): named operators with roles, their server-side
-- sessions, and the requests that wait for a second operator (dual control). The audit trail learns
-- which operator account acted.

-- Roles, in increasing order of power: viewer (reads), operator (retries, resolves), approver (the
-- second signature on dual-control requests), admin (manages operators).
create table operators (
  id bigint generated always as identity primary key,
  -- "admin" is the shared ADMIN_TOKEN's name in the audit trail: no person may take it
  login text not null constraint operators_login_key unique
  constraint operators_login_format check (login ~ '^[a-z0-9][a-z0-9_.-]{1,63}$' and login <> 'admin'),
  display_name text not null constraint operators_display_name_length check (length(display_name) between 1 and 128),
  role text not null constraint operators_role_known check (role in ('viewer', 'operator', 'approver', 'admin')),
  -- argon2id in PHC form ($argon2id$v=19$m=…,t=…,p=…$salt$hash); the password itself is never stored
  password_hash text not null constraint operators_password_hash_format check (password_hash like '$argon2id$%'),
  password_changed_at timestamptz not null default now(),
  -- consecutive failed logins; at the limit the account is locked until locked_until
  failed_logins int not null default 0 constraint operators_failed_logins_nonnegative check (failed_logins >= 0),
  locked_until timestamptz,
  disabled_at timestamptz,
  created_by text not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

-- A session is known by the SHA-256 of its cookie value: a copy of this table opens no session.
create table operator_sessions (
  id_hash bytea primary key constraint operator_sessions_id_hash_length check (length(id_hash) = 32),
  operator_id bigint not null references operators (id),
  created_at timestamptz not null default now(),
  -- the operator's last own request (the page's background refreshes do not count): idle expiry
  last_seen_at timestamptz not null default now(),
  -- absolute expiry, fixed at login
  expires_at timestamptz not null,
  revoked_at timestamptz,
  client_ip text,
  user_agent text constraint operator_sessions_user_agent_length check (length(user_agent) <= 512)
);
create index operator_sessions_operator_idx on operator_sessions (operator_id) where revoked_at is null;
create index operator_sessions_expires_idx on operator_sessions (expires_at);

-- Dual control (maker-checker): an action that needs a second operator is stored here by its maker
-- and runs when another operator approves it, in the approval's transaction.
create table approval_requests (
  id bigint generated always as identity primary key,
  kind text not null constraint approval_requests_kind_known
  check (kind in ('account.credit', 'withdraw.resolve_override', 'jobs.retry')),
  subject text not null,
  -- what the action needs, fixed when the request is made (the checker approves exactly this)
  payload jsonb not null,
  reason text not null constraint approval_requests_reason_length check (length(reason) between 3 and 500),
  -- pending → approved (the action ran) | failed (approved, but the action was refused: nothing
  -- changed) | rejected | cancelled (by its maker) | expired
  status text not null default 'pending' constraint approval_requests_status_known
  check (status in ('pending', 'approved', 'failed', 'rejected', 'cancelled', 'expired')),
  maker_id bigint not null references operators (id),
  checker_id bigint references operators (id),
  created_at timestamptz not null default now(),
  expires_at timestamptz not null,
  decided_at timestamptz,
  decision_note text constraint approval_requests_note_length check (length(decision_note) <= 500),
  -- what the action answered when it ran (e.g. credited, replay, account_unusable)
  outcome text,
  result jsonb,
  -- the second signature is never the first one's
  constraint approval_requests_checker_not_maker check (checker_id is null or checker_id <> maker_id),
  constraint approval_requests_decided check ((status = 'pending') = (decided_at is null)),
  constraint approval_requests_signed check (status not in ('approved', 'failed', 'rejected') or checker_id is not null)
);
create index approval_requests_pending_idx on approval_requests (created_at) where status = 'pending';
create index approval_requests_subject_idx on approval_requests (subject, id);

-- Which operator account acted; null for the admin tokens (ADMIN_TOKEN, ADMIN_TOKENS).
alter table admin_audit_log add column operator_id bigint references operators (id);
create index admin_audit_log_operator_idx on admin_audit_log (operator, id);

-- Password hashes and session hashes are nobody's report: the reporter role's default SELECT
-- on new tables (0004) is taken back from these two.
do $$
begin
  if exists (select 1 from pg_roles where rolname = 'withdraw_reporter') then
    revoke all on operators, operator_sessions from withdraw_reporter;
  end if;
end $$;
