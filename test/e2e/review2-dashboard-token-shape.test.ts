// The dashboard's token form, given a token no Authorization header can carry (a character outside Latin-1 pasted in:
// an ellipsis, a zero-width space, an emoji), says so and asks again. Before, fetch() threw on the header, the page
// showed "disconnected" as if the gateway were down, kept the token in sessionStorage, and after a reload of the tab
// hid the form for good: "disconnected" forever, with no way to enter the right token but closing the tab.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { IN_CI } from '../helpers/http.js';
import { ADMIN_TOKEN } from '../helpers/identity.js';
import { startBackend, type TestBackend } from '../helpers/backends.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const available = existsSync(CHROMIUM);
if (!available && IN_CI) throw new Error(`chromium not found at ${CHROMIUM} (apt-get install -y chromium)`);
const skip = available ? false : `chromium not found at ${CHROMIUM}`;

const TOKEN_KEY = 'portcullis-admin-token';
/** Tokens fetch() cannot put in a header: each character past U+00FF. */
const UNSENDABLE = [`${ADMIN_TOKEN}\u2026`, `\u200b${ADMIN_TOKEN}`, `${ADMIN_TOKEN.slice(0, 10)}\u{1F511}${ADMIN_TOKEN.slice(10)}`];

let backend: TestBackend | undefined;
let gw: InProcessGateway | undefined;
let context: BrowserContext | undefined;
let profile: string | undefined;
const problems: string[] = [];

before(async () => {
  if (!available) return;
  backend = await startBackend('one');
  gw = await startInProcess({ load_balancing: { upstreams: upstreams([backend.port]) }, admin: { token: ADMIN_TOKEN } });
  profile = mkdtempSync(join(tmpdir(), 'portcullis-chromium-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await context?.close();
  if (profile !== undefined) rmSync(profile, { recursive: true, force: true });
  await gw?.close();
  await backend?.stop();
});

/** A tab of the browser (each has its own sessionStorage), its page errors collected in `problems`. */
async function tab(i: number): Promise<Page> {
  const page = i === 0 ? (context!.pages()[0] ?? (await context!.newPage())) : await context!.newPage();
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  return page;
}

async function assertAsking(page: Page, what: string): Promise<void> {
  await page.locator('#token-form').waitFor({ state: 'visible', timeout: 5_000 });
  // Longer than one failed fetch and its retry: the pill must not turn "disconnected" meanwhile.
  await page.waitForTimeout(2_500);
  assert.equal(await page.locator('#token-form').isVisible(), true, `${what}: the form is shown`);
  assert.equal((await page.textContent('#conn'))?.trim(), 'token required', `${what}: the pill asks for the token`);
  assert.equal(await page.evaluate((key) => sessionStorage.getItem(key), TOKEN_KEY), null, `${what}: nothing kept`);
}

/**
 * One unsendable token in a tab of its own: typed in the form it is refused and the form asks again; kept from before
 * (a page from before this check) it is dropped on load and the form asks, instead of "disconnected" forever; the
 * right token then still connects. (The three tokens ran one after another in one tab: seven 2.5 s waits in a row.)
 */
async function refusedInItsOwnTab(page: Page, token: string): Promise<void> {
  const shown = JSON.stringify(token);
  await page.goto(`${gw!.adminUrl}/`);
  await assertAsking(page, `first load (tab of ${shown})`);
  await page.fill('#token-input', token);
  await page.click('#token-form button');
  await page.locator('#token-error').waitFor({ state: 'visible', timeout: 5_000 });
  assert.match((await page.textContent('#token-error')) ?? '', /ASCII/, `${shown}: the error says what a token is`);
  await assertAsking(page, `typed ${shown}`);
  await page.evaluate(([key, value]) => sessionStorage.setItem(key!, value!), [TOKEN_KEY, token]);
  await page.reload();
  await assertAsking(page, `kept ${shown}`);
  // The right token still connects.
  await page.fill('#token-input', ADMIN_TOKEN);
  await page.click('#token-form button');
  await page.locator('#conn', { hasText: 'live' }).waitFor({ timeout: 10_000 });
  assert.equal(await page.locator('#token-form').isVisible(), false, `tab of ${shown}: the form is hidden once connected`);
}

test('a token no header can carry is refused in the form, and one already kept is dropped on load', { skip }, async () => {
  const tabs = await Promise.all(UNSENDABLE.map((_token, i) => tab(i)));
  await Promise.all(UNSENDABLE.map((token, i) => refusedInItsOwnTab(tabs[i]!, token)));
  assert.deepEqual(problems, []);
});
