// The admin dashboard in a real headless Chromium: rows render with health, counts and charts refresh by themselves.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { closedPort, startBackend } from '../helpers/backends.js';
import { waitFor } from '../helpers/wait.js';
import { startInProcess, upstreams } from '../helpers/gateway.js';
import { createClient, IN_CI } from '../helpers/http.js';
import { ADMIN_TOKEN, adminApi } from '../helpers/identity.js';
import { FAST_ARGON2, TEST_SECRET } from '../helpers/auth-gateway.js';
import { isolatedDatabase, taggedUrl, uniqueApplicationName } from '../helpers/postgres-db.js';
import { requirePostgres } from '../helpers/services.js';
import pg from 'pg';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const RESULTS = new URL('../../test-results/', import.meta.url).pathname;
const available = existsSync(CHROMIUM);
if (!available && IN_CI) throw new Error(`chromium not found at ${CHROMIUM} (apt-get install -y chromium)`);
const postgresSkip = await requirePostgres();

/** A headless Chromium with a throwaway profile; closed (and the profile removed) by the test's after hooks. */
async function launch(): Promise<BrowserContext> {
  const profile = mkdtempSync(join(tmpdir(), 'portcullis-chromium-'));
  let context: BrowserContext | undefined;
  after(async () => {
    await context?.close();
    rmSync(profile, { recursive: true, force: true });
  });
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  return context;
}

/** Text of the upstream row whose address is `address`, cell by cell. */
async function rowCells(page: Page, address: string): Promise<string[]> {
  return page.locator(`#upstreams tbody tr[data-upstream="${address}"] td`).allTextContents();
}

test('the dashboard shows upstream health and updates its counts and charts by itself', { skip: available ? false : `chromium not found at ${CHROMIUM}` }, async () => {
  // Each resource gets its cleanup hook as soon as it exists, so a failure half-way never leaves one running.
  const up = await startBackend('up');
  after(() => up.stop());
  // A port below the ephemeral range that nothing listens on: a stopped backend's port could be another file's
  // backend a moment later, on a CI machine running four files at once.
  const down = { port: await closedPort() };
  const gw = await startInProcess({
    load_balancing: {
      upstreams: [
        // A name with markup: the page must show it as text.
        { name: '<img src=x id=injected>api', address: '127.0.0.1', port: up.port, weight: 3 },
        { name: 'spare', address: '127.0.0.1', port: down.port, weight: 1 },
      ],
      // Three failures in a row: the spare's refused checks fail at once (unhealthy within a second), while a check
      // of the live backend that one slow turn of a loaded machine (Chromium starting) pushes past its timeout does
      // not turn it unhealthy. With one failure and 500 ms, two fresh-clone CIs saw the live row 'unhealthy'.
      health_check: { enabled: true, interval: '200ms', timeout: '2s', healthy_threshold: 1, unhealthy_threshold: 3 },
    },
  });
  after(() => gw.close());
  const client = createClient();
  after(() => client.close());
  const profile = mkdtempSync(join(tmpdir(), 'portcullis-chromium-'));
  let context: BrowserContext | undefined;
  after(async () => {
    await context?.close();
    rmSync(profile, { recursive: true, force: true });
  });

  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const problems: string[] = [];
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
  });

  // A little traffic first, so the charts have something to draw; once the checks have found the spare down, so that
  // none of it meets the refused port.
  await waitFor(async () => {
    const status = (await client.request(`${gw.adminUrl}/api/status`)).json<{ upstreams: Array<{ address: string; health: string }> }>();
    return status.upstreams.some((u) => u.address === `127.0.0.1:${down.port}` && u.health === 'unhealthy');
  }, 'the spare marked unhealthy', 10_000);
  for (let i = 0; i < 10; i++) assert.equal((await client.request(`${gw.url}/warm`)).status, 200);
  await page.goto(`${gw.adminUrl}/`);
  await page.locator('#conn', { hasText: 'live' }).waitFor({ timeout: 10_000 });
  const upAddress = `127.0.0.1:${up.port}`;
  const downAddress = `127.0.0.1:${down.port}`;
  await page.locator(`#upstreams tbody tr[data-upstream="${downAddress}"] .pill-unhealthy`).waitFor({ timeout: 10_000 });

  const [name, address, health, weight] = await rowCells(page, upAddress);
  assert.equal(name, '<img src=x id=injected>api', 'markup in a name is shown as text');
  assert.equal(await page.locator('#injected').count(), 0, 'and never becomes an element');
  assert.equal(address, upAddress);
  assert.equal(health, 'healthy');
  assert.equal(weight, '3');
  assert.deepEqual((await rowCells(page, downAddress)).slice(0, 3), ['spare', downAddress, 'unhealthy']);

  // Traffic after the page has loaded: the request count and the rate chart change without a reload.
  const requestsCell = page.locator(`#upstreams tbody tr[data-upstream="${upAddress}"] td.requests`);
  const before = Number(await requestsCell.textContent());
  const chartBefore = await page.locator('#chart-rate path.line').getAttribute('d');
  for (let i = 0; i < 40; i++) assert.equal((await client.request(`${gw.url}/burst/${i}`)).status, 200);
  await page.waitForFunction(
    ([selector, target]) => Number(document.querySelector(selector as string)?.textContent) >= (target as number),
    [`#upstreams tbody tr[data-upstream="${upAddress}"] td.requests`, before + 40] as const,
    { timeout: 10_000 },
  );
  // The chart leaves out the running second, so its line changes within one or two refreshes.
  await page.waitForFunction(
    ([old]) => {
      const d = document.querySelector('#chart-rate path.line')?.getAttribute('d');
      return typeof d === 'string' && d !== old;
    },
    [chartBefore] as const,
    { timeout: 12_000 },
  );
  assert.notEqual(await page.locator('#p99').textContent(), '–');
  assert.ok(Number((await page.locator('#requests').textContent())?.replace(/,/g, '')) >= 50);
  assert.equal(await page.locator('#chart-latency path.line.p99').count(), 1);
  assert.equal(await page.locator('#auth dd[data-key="login_failure"]').textContent(), '0');
  assert.equal(await page.locator('#ratelimit dd[data-key="reject"]').textContent(), '0');
  // The routes panel: the implicit catch-all route with its service and its request count.
  const routeCells = await page.locator('#routes tbody tr[data-route="proxy"] td').allTextContents();
  assert.equal(routeCells[1], 'default');
  assert.ok(Number(routeCells[6]?.replace(/,/g, '')) >= 50);
  assert.equal((await rowCells(page, upAddress))[7], 'default', 'each upstream names its service');

  mkdirSync(RESULTS, { recursive: true });
  await page.screenshot({ path: join(RESULTS, 'dashboard.png'), fullPage: true });
  assert.deepEqual(problems, [], 'no script errors or CSP violations');
});

test('with admin.token the page asks for the token once, keeps it for the tab, and shows the Users panel without emails', { skip: available ? false : `chromium not found at ${CHROMIUM}` }, async () => {
  const up = await startBackend('up');
  after(() => up.stop());
  const gw = await startInProcess({
    load_balancing: { upstreams: upstreams([up.port]) },
    jwt: { secret: TEST_SECRET },
    middleware: { auth: { enabled: true, argon2: FAST_ARGON2 } },
    admin: { token: ADMIN_TOKEN },
  });
  after(() => gw.close());
  const client = createClient();
  after(() => client.close());
  const admin = adminApi(client, gw.adminUrl!);
  const created = await admin.post('/admin/users', { email: 'panel-user@example.com', password: 'a-long-password' });
  assert.equal(created.status, 201);
  assert.equal((await admin.post(`/admin/users/${created.json<{ user_id: string }>().user_id}/disable`)).status, 200);

  const context = await launch();
  const page = context.pages()[0] ?? (await context.newPage());
  const problems: string[] = [];
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  const statusRequests: (string | undefined)[] = [];
  page.on('request', (req) => {
    if (req.url().endsWith('/api/status')) statusRequests.push(req.headers().authorization);
  });

  await page.goto(`${gw.adminUrl}/`);
  await page.locator('#token-form').waitFor({ state: 'visible', timeout: 10_000 });
  await page.locator('#conn', { hasText: 'token required' }).waitFor();
  // A wrong token is refused and asked for again.
  await page.fill('#token-input', 'not-the-token');
  await page.click('#token-form button');
  await page.locator('#token-error').waitFor({ state: 'visible', timeout: 10_000 });
  await page.fill('#token-input', ADMIN_TOKEN);
  await page.click('#token-form button');
  await page.locator('#conn', { hasText: 'live' }).waitFor({ timeout: 10_000 });
  assert.equal(await page.locator('#token-form').isVisible(), false);
  assert.equal(await page.evaluate(() => sessionStorage.getItem('portcullis-admin-token')), ADMIN_TOKEN);

  await page.locator('#users-panel').waitFor({ state: 'visible', timeout: 10_000 });
  await page.locator('#users-totals dd[data-key="disabled"]', { hasText: '1' }).waitFor({ timeout: 10_000 });
  assert.equal(await page.locator('#users-totals dd[data-key="users"]').textContent(), '1');
  await page.locator('#admin-actions tbody tr[data-action="disable"]').waitFor({ timeout: 10_000 });
  assert.ok(!(await page.content()).includes('panel-user@example.com'), 'no email on the dashboard');

  // Reloading the tab does not ask again: the token comes from sessionStorage.
  await page.reload();
  await page.locator('#conn', { hasText: 'live' }).waitFor({ timeout: 10_000 });
  assert.equal(await page.locator('#token-form').isVisible(), false);
  assert.ok(statusRequests.includes(`Bearer ${ADMIN_TOKEN}`));
  mkdirSync(RESULTS, { recursive: true });
  await page.screenshot({ path: join(RESULTS, 'dashboard-users.png'), fullPage: true });
  assert.deepEqual(problems, []);
});

test('with the user store stuck behind a lock at the first count, the Users panel shows dashes, not zeros, until it answers', { skip: available ? (postgresSkip || false) : `chromium not found at ${CHROMIUM}` }, async () => {
  // The status answer carries totals null (unknown) when the first count has not answered within 1 s: the page showed
  // them as "0 users, 0 sessions, 0 API keys", which an operator reads as counts during a store incident.
  const db = await isolatedDatabase();
  after(() => db.cleanup('dash-totals-none-'));
  const dbUrl = taggedUrl(db.name, uniqueApplicationName('dashtotals'));
  const up = await startBackend('up');
  after(() => up.stop());
  const gw = await startInProcess({
    load_balancing: { upstreams: upstreams([up.port]) },
    jwt: { secret: TEST_SECRET },
    middleware: { auth: { enabled: true, argon2: FAST_ARGON2 }, rate_limit: { auth: { enabled: false } } },
    database: { url: dbUrl, pool_size: 4 },
    admin: { token: ADMIN_TOKEN },
  });
  after(() => gw.close());
  const client = createClient();
  after(() => client.close());
  const admin = adminApi(client, gw.adminUrl!);
  for (const email of ['dash-totals-none-1@example.com', 'dash-totals-none-2@example.com']) {
    assert.equal((await admin.post('/admin/users', { email, password: 'a-long-password' })).status, 201);
  }
  const locker = new pg.Client({ connectionString: dbUrl });
  // The database's cleanup (DROP ... WITH (FORCE)) ends this session if the test failed before it did.
  locker.on('error', () => undefined);
  await locker.connect();
  after(() => locker.end().catch(() => undefined));
  await locker.query('BEGIN');
  await locker.query('LOCK TABLE api_keys IN ACCESS EXCLUSIVE MODE');

  const context = await launch();
  const page = context.pages()[0] ?? (await context.newPage());
  await page.addInitScript((token) => sessionStorage.setItem('portcullis-admin-token', token), ADMIN_TOKEN);
  await page.goto(`${gw.adminUrl}/`);
  await page.locator('#users-panel').waitFor({ state: 'visible', timeout: 10_000 });
  await page.locator('#users-totals dd[data-key="users"]').waitFor({ timeout: 10_000 });
  assert.deepEqual(await page.locator('#users-totals dd').allTextContents(), ['–', '–', '–', '–'], 'unknown totals are no counts');

  await locker.query('ROLLBACK');
  await locker.end();
  await page.locator('#users-totals dd[data-key="users"]', { hasText: '2' }).waitFor({ timeout: 15_000 });
  assert.equal(await page.locator('#users-totals dd[data-key="api_keys"]').textContent(), '0');
});

test('an admin listener that stops answering turns the page from "live" to "disconnected", and back once it answers', { skip: available ? false : `chromium not found at ${CHROMIUM}` }, async () => {
  const up = await startBackend('up');
  after(() => up.stop());
  const gw = await startInProcess({ load_balancing: { upstreams: upstreams([up.port]) } });
  after(() => gw.close());
  const context = await launch();
  const page = context.pages()[0] ?? (await context.newPage());
  await page.goto(`${gw.adminUrl}/`);
  await page.locator('#conn', { hasText: 'live' }).waitFor({ timeout: 10_000 });

  // Every status request from now on is held unanswered, as by a stalled process or a dropped link.
  const held: (() => Promise<void>)[] = [];
  await page.route('**/api/status', (route) => {
    held.push(() => route.abort().catch(() => undefined));
  });
  await page.locator('#conn', { hasText: 'disconnected' }).waitFor({ timeout: 20_000 });

  await page.unroute('**/api/status');
  for (const release of held) await release();
  await page.locator('#conn', { hasText: 'live' }).waitFor({ timeout: 20_000 });
});
