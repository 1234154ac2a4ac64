// The console's shell: who is signed in, the navigation (hash routes), the refresh loop (every
// REFRESH_MS in the background, paused while the operator types, stopped once the session ends),
// the stale banner, and a last line of defence that shows any error instead of losing it.
import { api, describeError, h, markStale, onStale, say, state } from './consoleDom.js';
import { overviewView, workersView } from './viewOverview.js';
import { orderView, ordersView, reviewView } from './viewOrders.js';
import { breaksView, callbacksView, cronView, jobsView, outboxView, providerCallsView } from './viewOps.js';
import { accountView, accountsView, approvalsView, auditView, operatorsView, passwordView } from './viewAdmin.js';

const REFRESH_MS = 10_000;
const ROUTES = {
  overview: overviewView,
  orders: ordersView,
  order: orderView,
  review: reviewView,
  breaks: breaksView,
  jobs: jobsView,
  cron: cronView,
  approvals: approvalsView,
  accounts: accountsView,
  account: accountView,
  'provider-calls': providerCallsView,
  callbacks: callbacksView,
  outbox: outboxView,
  workers: workersView,
  audit: auditView,
  operators: operatorsView,
  password: passwordView,
};
const NAV = [
  ['overview', 'Overview'],
  ['orders', 'Orders'],
  ['review', 'Manual review'],
  ['breaks', 'Breaks'],
  ['jobs', 'Jobs'],
  ['cron', 'Cron'],
  ['approvals', 'Approvals'],
  ['accounts', 'Accounts'],
  ['audit', 'Audit trail'],
  ['operators', 'Operators', 'admin'],
];

let generation = 0;

function parseRoute() {
  const raw = location.hash.replace(/^#\/?/, '') || 'overview';
  const [pathPart, search = ''] = raw.split('?');
  const [name, ...rest] = pathPart.split('/');
  return { name: ROUTES[name] ? name : 'overview', id: rest.join('/') || null, params: Object.fromEntries(new URLSearchParams(search)) };
}

function renderNav(current) {
  const nav = document.getElementById('nav');
  nav.replaceChildren(
    ...NAV.filter(([, , role]) => !role || state.session?.operator.role === role).map(([name, label]) =>
      h('a', { href: `#/${name}`, class: current === name ? 'current' : null }, label),
    ),
  );
}

/** Shows the current route; `background`: a refresh (it does not count as the operator acting). */
async function show(background) {
  if (state.stale) return;
  const route = parseRoute();
  const main = document.getElementById('main');
  if (background && main.contains(document.activeElement) && /^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement.tagName)) {
    setStatus('auto-refresh paused while you type');
    return;
  }
  if (background && main.querySelector('form[data-dirty]')) {
    setStatus('auto-refresh paused: a form has unsent input');
    return;
  }
  const mine = ++generation;
  renderNav(route.name);
  try {
    const view = await ROUTES[route.name]({ id: route.id, params: route.params, background, refresh: () => show(false) });
    if (mine !== generation || state.stale) return;
    main.replaceChildren(view);
    main.classList.remove('outdated');
    state.refreshedAt = new Date();
    setStatus(`updated ${state.refreshedAt.toLocaleTimeString()}`);
  } catch (error) {
    if (mine !== generation) return;
    // what is on screen is kept but marked: it is no longer known to be true
    main.classList.add('outdated');
    setStatus(`not updated since ${state.refreshedAt ? state.refreshedAt.toLocaleTimeString() : 'loading'}: ${describeError(error)}`);
    if (!background) say('error', describeError(error));
  }
}

function setStatus(text) {
  document.getElementById('refresh-status').textContent = text;
}

onStale((reason) => {
  document.body.classList.add('stale');
  document
    .getElementById('stale-banner')
    .replaceChildren(
      h('strong', null, 'This screen is stale: '),
      `${reason}. What it shows may no longer be true and nothing refreshes. `,
      h('a', { href: '/admin/login' }, 'Sign in again'),
    );
  document.getElementById('stale-banner').hidden = false;
});

window.addEventListener('unhandledrejection', (event) => {
  event.preventDefault();
  say('error', `unexpected: ${describeError(event.reason)}`);
});
window.addEventListener('error', (event) => {
  say('error', `unexpected: ${event.message}`);
});

async function signOut() {
  try {
    await api('/admin/console/api/logout', { method: 'POST' });
  } catch (error) {
    say('error', `sign-out failed: ${describeError(error)}`);
    return;
  }
  location.assign('/admin/login');
}

async function start() {
  try {
    const reply = await api('/admin/console/api/session');
    state.session = reply.data;
    state.csrfToken = reply.data.csrfToken;
  } catch (error) {
    if (!state.stale) markStale(describeError(error));
    return;
  }
  const who = state.session.operator;
  document
    .getElementById('who')
    .replaceChildren(
      h('span', { id: 'who-name' }, `${who.displayName} (${who.login}, ${who.role})`),
      ' ',
      h('a', { href: '#/password' }, 'password'),
      ' ',
      h('button', { type: 'button', id: 'sign-out', onclick: signOut }, 'Sign out'),
    );
  document.getElementById('refresh-now').addEventListener('click', () => show(false));
  window.addEventListener('hashchange', () => show(false));
  await show(false);
  setInterval(() => {
    if (!document.hidden) show(true);
  }, REFRESH_MS);
}

start();
