// The console's plumbing: building DOM without innerHTML (every value is text), the JSON client
// (session cookie, CSRF header, background-refresh marker; an auth error marks the screen stale),
// messages to the operator, and small formatters. No framework, no inline script (CSP script-src 'self').

export const state = {
  session: null,
  csrfToken: null,
  stale: null,
  refreshedAt: null,
};

/** h('a', { href: '#/x', class: 'y', onclick: fn }, 'text', child, ...) */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') el.addEventListener(name.slice(2), value);
    else if (name === 'class') el.className = value;
    else if (name === 'dataset') Object.assign(el.dataset, value);
    else if (value === true) el.setAttribute(name, '');
    else el.setAttribute(name, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function link(href, ...children) {
  return h('a', { href }, ...children);
}

export function table(columns, rows, options = {}) {
  const head = h(
    'tr',
    null,
    columns.map(([label]) => h('th', null, label)),
  );
  const body = rows.map((row) =>
    h(
      'tr',
      options.rowAttrs?.(row) ?? null,
      columns.map(([, cell]) => h('td', null, cell(row))),
    ),
  );
  return h(
    'table',
    { class: options.class ?? 'grid' },
    h('thead', null, head),
    h(
      'tbody',
      null,
      body.length ? body : h('tr', null, h('td', { colspan: columns.length, class: 'empty' }, options.empty ?? 'nothing here')),
    ),
  );
}

export class ApiFailure extends Error {
  constructor(status, code, message, data) {
    super(message);
    this.status = status;
    this.code = code;
    this.data = data ?? null;
  }
}

const listeners = { stale: [] };
export function onStale(listener) {
  listeners.stale.push(listener);
}

/** The screen shows data that may no longer be true: the session ended, so nothing refreshes. */
export function markStale(reason) {
  if (state.stale) return;
  state.stale = reason;
  for (const listener of listeners.stale) listener(reason);
}

/** A request to the console's JSON API; throws ApiFailure with the envelope's message on anything but code 0. */
export async function api(path, options = {}) {
  const method = options.method ?? 'GET';
  const headers = { accept: 'application/json' };
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET') headers['x-csrf-token'] = state.csrfToken ?? '';
  if (options.background) headers['x-console-refresh'] = '1';
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      credentials: 'same-origin',
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
    });
  } catch (error) {
    throw new ApiFailure(0, null, `the server could not be reached (${error.message})`);
  }
  let envelope = null;
  try {
    envelope = await response.json();
  } catch {
    envelope = null;
  }
  if (response.status === 401) {
    markStale(envelope?.msg ?? 'not signed in');
    throw new ApiFailure(401, envelope?.code ?? 40101, `not signed in: ${envelope?.msg ?? 'sign in again'}`);
  }
  if (envelope?.code !== 0) {
    throw new ApiFailure(response.status, envelope?.code ?? null, envelope?.msg ?? `HTTP ${response.status}`, envelope?.data);
  }
  return envelope;
}

/** A message to the operator: kind 'ok' or 'error'; errors stay until dismissed. */
export function say(kind, text) {
  const box = document.getElementById('messages');
  if (!box) return;
  const item = h(
    'div',
    { class: `message ${kind}`, role: kind === 'error' ? 'alert' : 'status' },
    h('span', { class: 'text' }, text),
    h('button', { type: 'button', class: 'dismiss', 'aria-label': 'dismiss', onclick: () => item.remove() }, '×'),
  );
  box.prepend(item);
  while (box.children.length > 8) box.lastElementChild.remove();
  if (kind === 'ok') setTimeout(() => item.remove(), 15_000);
}

export function describeError(error) {
  if (error instanceof ApiFailure)
    return error.status ? `${error.message} (HTTP ${error.status}${error.code ? `, ${error.code}` : ''})` : error.message;
  return error?.message ?? String(error);
}

/** Runs an operator's action; shows what happened either way; never lets a rejection escape. */
export async function act(label, run) {
  try {
    const reply = await run();
    say('ok', `${label}: ${reply.msg}`);
    return reply;
  } catch (error) {
    say('error', `${label} failed: ${describeError(error)}`);
    return null;
  }
}

export function when(iso) {
  if (!iso) return '—';
  const at = new Date(iso);
  return `${at.toISOString().slice(0, 19).replace('T', ' ')}Z`;
}

export function age(seconds) {
  if (seconds === null || seconds === undefined) return '—';
  const s = Math.round(seconds);
  if (s < 90) return `${s} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  if (s < 172_800) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86_400)} d`;
}

export function short(id) {
  return id ? `${String(id).slice(0, 8)}…` : '—';
}

export function code(text) {
  return h('code', null, text ?? '—');
}

export function json(value) {
  return h('pre', { class: 'json' }, value === undefined || value === null ? '—' : JSON.stringify(value, null, 2));
}

export function query(params) {
  const search = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') search.set(k, v);
  const text = search.toString();
  return text ? `?${text}` : '';
}

/** A small form: fields [{ name, label, type: 'text'|'textarea'|'select'|'datetime-local', options, required, value }]. */
export function form(fields, submitLabel, onSubmit, attrs = {}) {
  const el = h(
    'form',
    { class: 'action-form', ...attrs },
    fields.map((f) =>
      h(
        'label',
        null,
        h('span', null, f.label),
        f.type === 'select'
          ? h(
              'select',
              { name: f.name },
              f.options.map((o) => h('option', { value: o, selected: o === f.value }, o)),
            )
          : f.type === 'textarea'
            ? h('textarea', { name: f.name, rows: 2, required: f.required, minlength: f.minlength, placeholder: f.placeholder })
            : h('input', {
                name: f.name,
                type: f.type ?? 'text',
                required: f.required,
                value: f.value,
                placeholder: f.placeholder,
                autocomplete: f.autocomplete,
              }),
      ),
    ),
    h('button', { type: 'submit' }, submitLabel),
  );
  el.addEventListener('input', () => {
    el.dataset.dirty = '1';
  });
  el.addEventListener('submit', (event) => {
    event.preventDefault();
    const values = Object.fromEntries(new FormData(el).entries());
    const button = el.querySelector('button[type=submit]');
    button.disabled = true;
    Promise.resolve(onSubmit(values, el))
      .catch((error) => say('error', describeError(error)))
      .finally(() => {
        button.disabled = false;
        delete el.dataset.dirty;
      });
  });
  return el;
}
