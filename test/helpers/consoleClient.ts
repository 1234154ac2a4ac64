// A console operator as an HTTP client: signs in, keeps the session cookie and the CSRF token, and
// sends both the way the console's script does.
import { call, type JsonReply } from './http.ts';

export type ConsoleClient = Readonly<{
  login: string;
  cookie: string;
  csrfToken: string;
  /** a request with the session cookie and (unless csrf: false) the CSRF header */
  call: (
    method: string,
    path: string,
    options?: { body?: unknown; headers?: Record<string, string>; csrf?: boolean; cookie?: boolean },
  ) => Promise<JsonReply>;
}>;

export const TEST_PASSWORD = 'correct horse battery staple';

export async function createOperator(
  url: string,
  adminToken: string,
  input: { login: string; role: string; displayName?: string; password?: string },
): Promise<string> {
  const reply = await call(url, 'POST', '/admin/operators', {
    token: adminToken,
    body: {
      login: input.login,
      displayName: input.displayName ?? input.login,
      role: input.role,
      password: input.password ?? TEST_PASSWORD,
    },
  });
  if (reply.status !== 201) throw new Error(`create operator ${input.login}: ${reply.status} ${reply.text}`);
  return reply.body.data.operatorId as string;
}

export function cookieOf(reply: JsonReply): string | null {
  const header = reply.headers.get('set-cookie');
  const match = header ? /^([^=;]+=[^;]*)/.exec(header) : null;
  return match?.[1] ?? null;
}

export async function signIn(url: string, login: string, password = TEST_PASSWORD): Promise<ConsoleClient> {
  const reply = await call(url, 'POST', '/admin/console/api/login', { body: { login, password } });
  if (reply.status !== 200) throw new Error(`sign in ${login}: ${reply.status} ${reply.text}`);
  const cookie = cookieOf(reply);
  if (!cookie) throw new Error(`sign in ${login}: no cookie`);
  const csrfToken = reply.body.data.csrfToken as string;
  return {
    login,
    cookie,
    csrfToken,
    call: (method, path, options = {}) =>
      call(url, method, path, {
        body: options.body,
        headers: {
          ...(options.cookie === false ? {} : { cookie }),
          ...(options.csrf === false ? {} : { 'x-csrf-token': csrfToken }),
          ...(options.headers ?? {}),
        },
      }),
  };
}
