// The console driven in a real browser (Debian's Chromium through playwright-core), as operators
// would during an incident: sign in, find the order stuck in manual review and resolve it, find the
// failed job and retry it, ask for a credit that a second operator approves in their own browser,
// and see the screen marked stale once the session is gone. Every step asserts on what the page
// shows and on the databases; screenshots go to test-artifacts/console-browser/.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { sql } from 'slonik';
import { z } from 'zod';
import { projectRoot } from '../app/paths.ts';
import { createOperator, TEST_PASSWORD } from './helpers/consoleClient.ts';
import { accountMoney, failedJob, manualOrder, orderStatus } from './helpers/consoleFixtures.ts';
import { startTestSystem, type TestSystem } from './helpers/system.ts';

const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOTS = path.join(projectRoot, 'test-artifacts', 'console-browser');
const STEP_TIMEOUT_MS = 30_000;

let system: TestSystem;
const contexts: BrowserContext[] = [];
const watched: Watched[] = [];
const profiles: string[] = [];

test.before(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium (.ci/run installs it)`);
  system = await startTestSystem({ worker: true });
  await system.worker!.stop(); // the operators and the test are the only ones moving anything
  await rm(SCREENSHOTS, { recursive: true, force: true });
  await mkdir(SCREENSHOTS, { recursive: true });
});
test.after.always(async () => {
  await Promise.allSettled(contexts.map((c) => c.close()));
  await Promise.allSettled(profiles.map((dir) => rm(dir, { recursive: true, force: true })));
  await system?.stop();
});

type Watched = { page: Page; problems: string[] };

/** A fresh browser profile of its own (its own cookie jar), recording every error the page shows or throws. */
async function openBrowser(): Promise<Watched> {
  const profile = await mkdtemp(path.join(tmpdir(), 'withdraw-console-chromium-'));
  profiles.push(profile);
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
    ],
    viewport: { width: 1400, height: 1000 },
  });
  contexts.push(context);
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() !== 'error') return;
    // a request the server refused is logged by the browser itself; the page's handling is judged separately
    if (/Failed to load resource: the server responded with a status of (401|403|409|422)/.test(message.text())) return;
    problems.push(`console: ${message.text()}`);
  });
  const opened = { page, problems };
  watched.push(opened);
  return opened;
}

async function signInAs(page: Page, login: string) {
  await page.goto(`${system.url}/admin/`);
  await page.waitForURL(/\/admin\/login$/);
  await page.fill('input[name=login]', login);
  await page.fill('input[name=password]', TEST_PASSWORD);
  await page.click('#login-form button[type=submit]');
  await page.waitForURL(/\/admin\/$/);
  await page.locator('#who-name', { hasText: login }).waitFor();
}

async function shot(page: Page, name: string) {
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

const okMessage = (page: Page, text: RegExp) => page.locator('#messages .message.ok', { hasText: text }).first();

test.serial('when operators run an incident from the browser, then every step shows on the page and lands in the databases', async (t) => {
  t.timeout(180_000);
  t.teardown(async () => {
    // on a failure, what each browser showed at that moment
    for (const [i, context] of contexts.entries()) {
      const page = context.pages()[0];
      if (page && !t.passed)
        await page.screenshot({ path: path.join(SCREENSHOTS, `failure-browser-${i + 1}.png`), fullPage: true }).catch(() => {});
    }
    for (const w of watched) if (w.problems.length) t.log(w.problems.join('\n'));
  });
  await createOperator(system.url, system.adminToken, { login: 'otto', role: 'operator', displayName: 'Otto Operator' });
  await createOperator(system.url, system.adminToken, { login: 'april', role: 'approver', displayName: 'April Approver' });
  const stuck = await manualOrder(system, 'browser-user', true);
  const lost = await manualOrder(system, 'browser-other', false, '5.00');
  await system.db.databases.balance.query(sql.unsafe`
    select * from withdraw_transition(${lost.transactionId}, array['manual'], 'failed', 'operator', 'setup', 'setup', '{}'::jsonb, 'setup')`);
  const jobId = await failedJob(system, { transactionId: lost.transactionId }, 'gateway__submit');
  const creditAccount = await system.fundedAccount('browser-credit', '100.00');

  const otto = await openBrowser();
  await signInAs(otto.page, 'otto');
  await otto.page.locator('[data-chart=orders-per-hour] canvas').first().waitFor();
  const manualCard = otto.page.locator('[data-card=manual] .card-value');
  t.is(await manualCard.textContent(), '1');
  await shot(otto.page, '01-overview');

  // the order stuck in manual review: the provider's current answer is on the card
  await manualCard.click();
  const card = otto.page.locator(`.review-card[data-order="${stuck.orderId}"]`);
  await card.waitFor();
  t.regex((await card.locator('.provider').textContent()) ?? '', /Provider says now: paid/);
  await card.locator('select[name=outcome]').selectOption('success');
  await card.locator('textarea[name=reason]').fill('provider reports it paid; bank statement line 88');
  await shot(otto.page, '02-review-before-resolve');
  await card.locator('button[type=submit]').click();
  await okMessage(otto.page, /resolved: now success/).waitFor();
  await otto.page.locator('#review p.empty', { hasText: 'No order waits for a human' }).waitFor();
  await shot(otto.page, '03-review-resolved');
  t.is(await orderStatus(system, stuck.orderId), 'success');

  // its page tells the whole story: the operator's resolution and the provider's answer it was judged on
  await otto.page.goto(`${system.url}/admin/#/orders?q=${stuck.transactionId}`);
  await otto.page.locator(`tr[data-order="${stuck.orderId}"] a`).first().click();
  await otto.page.locator(`#order[data-status="success"]`).waitFor();
  const story = (await otto.page.locator('table.timeline').textContent()) ?? '';
  t.regex(story, /status manual → success.*operator otto.*provider reports it paid/s);
  t.regex(story, /provider status query: paid/);
  await shot(otto.page, '03b-order-timeline');

  // the failed job: its error and its order are shown; retry it
  await otto.page.goto(`${system.url}/admin/#/jobs?state=failed`);
  const row = otto.page.locator(`tr[data-job="${jobId}"]`);
  await row.waitFor();
  t.is(await row.getAttribute('data-state'), 'failed');
  t.regex((await row.locator('.last-error').textContent()) ?? '', /boom: provider said 500/);
  t.is(await row.locator('.tx-links a').first().getAttribute('href'), `#/orders?q=${lost.transactionId}`);
  await row.locator('details.job-actions summary').click();
  await row.locator('button.retry').click();
  await okMessage(otto.page, new RegExp(`retry job ${jobId}: retried: attempts 0/3`)).waitFor();
  // no longer failed: it waits for a worker again
  await otto.page.goto(`${system.url}/admin/#/jobs?task=gateway__submit`);
  await otto.page.locator(`tr[data-job="${jobId}"][data-state="queued"]`).waitFor();
  await shot(otto.page, '04-job-retried');
  const attempts = await system.db.databases.balance.oneFirst(sql.type(z.object({ attempts: z.number() }))`
    select attempts from graphile_worker._private_jobs where id = ${jobId}`);
  t.is(attempts, 0);

  // a credit: otto asks, april approves in her own browser
  await otto.page.goto(`${system.url}/admin/#/account/${creditAccount}`);
  await otto.page.fill('#credit-form input[name=amount]', '50.00');
  await otto.page.fill('#credit-form textarea[name=reason]', 'deposit wire 2026-12-01 ref 4711');
  await otto.page.click('#credit-form button[type=submit]');
  const requested = okMessage(otto.page, /request #\d+ waiting for a second operator/);
  await requested.waitFor();
  const approvalId = /#(\d+)/.exec((await requested.textContent()) ?? '')![1]!;
  await shot(otto.page, '05-credit-requested');
  t.like(await accountMoney(system, creditAccount), { balance: 10_000n }, 'nothing is credited on one signature');

  const april = await openBrowser();
  await signInAs(april.page, 'april');
  await april.page.locator('[data-card=approvals] .card-value', { hasText: '1' }).click();
  const pending = april.page.locator(`tr[data-approval="${approvalId}"]`);
  await pending.waitFor();
  t.regex((await pending.textContent()) ?? '', /credit 50\.00 USD/);
  await shot(april.page, '06-approval-pending');
  await pending.locator('button.approve').click();
  await okMessage(april.page, new RegExp(`request #${approvalId}: approved \\(credited\\)`)).waitFor();
  await shot(april.page, '07-approved-by-april');
  t.like(await accountMoney(system, creditAccount), { balance: 15_000n });

  // otto's screen shows it by itself: the approvals page refreshes in the background
  await otto.page.goto(`${system.url}/admin/#/approvals`);
  await otto.page.locator(`tr[data-approval="${approvalId}"] .approval-approved`, { hasText: 'approved (credited)' }).waitFor();
  await otto.page.goto(`${system.url}/admin/#/account/${creditAccount}`);
  await otto.page.locator('.account-line', { hasText: 'balance 150.00' }).waitFor();
  await shot(otto.page, '08-otto-sees-credit');

  // the session ends (an admin disabled otto): the screen says it is stale instead of showing old numbers as current
  await otto.page.goto(`${system.url}/admin/#/overview`);
  await otto.page.locator('[data-card=manual]').waitFor();
  await system.db.databases.balance.query(sql.unsafe`
    update operator_sessions set revoked_at = now() where operator_id = (select id from operators where login = 'otto')`);
  await otto.page.locator('#stale-banner', { hasText: 'This screen is stale' }).waitFor();
  t.true(await otto.page.locator('body.stale').isVisible());
  await shot(otto.page, '09-stale-after-sign-out');

  // what an operator clicked is in the audit trail under their name
  const audit = await system.db.databases.balance.any(sql.type(z.object({ operator: z.string(), action: z.string() }))`
    select operator, action from admin_audit_log where operator in ('otto', 'april') order by id`);
  t.deepEqual(
    audit.map((r) => `${r.operator} ${r.action}`),
    [
      'otto operator.login',
      'otto withdraw.resolve',
      'otto job.retry',
      'otto approval.request',
      'april operator.login',
      'april account.credit',
      'april approval.approve',
    ],
  );
  t.deepEqual(otto.problems, [], 'no error escaped on the page, no CSP violation');
  t.deepEqual(april.problems, []);
  t.log(`screenshots: ${SCREENSHOTS}`);
});
