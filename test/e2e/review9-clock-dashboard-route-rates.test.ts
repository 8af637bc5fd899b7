// The dashboard's Routes panel turns each route's request count into a rate: the difference between two refreshes
// divided by the time between them. That time was read from `generated_at`, the gateway's wall clock, which NTP (a
// resumed laptop, a restored snapshot) may step between two refreshes: a step back of 10 minutes made it negative,
// held at 1 ms, and 20 requests showed as 20,000 a second; a step forward made it 600 s and the same requests 0.03 a
// second. It now reads `uptime_ms`, the admin listener's monotonic uptime. In a real headless Chromium against a
// gateway whose wall clock the test steps (test/helpers/clock-offset-import.mjs with a clock file, clock-step.ts).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { startClockedGateway, type ClockedGateway } from '../helpers/clock-gateway.js';
import { createClient, IN_CI } from '../helpers/http.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const available = existsSync(CHROMIUM);
if (!available && IN_CI) throw new Error(`chromium not found at ${CHROMIUM} (apt-get install -y chromium)`);
const skip = available ? false : `chromium not found at ${CHROMIUM}`;
const STEP_MS = 10 * 60_000;
const BURST = 20;

const client = createClient();
let stack: ClockedGateway | undefined;
let context: BrowserContext | undefined;
let profile: string | undefined;
let page: Page;
const problems: string[] = [];

before(async () => {
  if (!available) return;
  stack = await startClockedGateway('one');
  profile = mkdtempSync(join(tmpdir(), 'portcullis-chromium-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
});

after(async () => {
  await context?.close();
  if (profile !== undefined) rmSync(profile, { recursive: true, force: true });
  await client.close();
  await stack?.stop();
});

/** Waits for the page's next /api/status answer and its rendering. */
async function nextRefresh(): Promise<void> {
  await page.waitForResponse((res) => res.url().endsWith('/api/status'), { timeout: 10_000 });
  await page.waitForTimeout(200);
}

/** The proxy route's rate cell, as a number (requests a second). */
async function routeRate(): Promise<number> {
  const text = await page.locator('#routes tbody tr[data-route="proxy"] td.rate').textContent();
  return Number(text?.replace(/,/g, ''));
}

/** BURST requests right after a refresh, with the clock stepped to `offsetMs` first; the rate the next one shows. */
async function rateAfterStep(offsetMs: number): Promise<number> {
  await nextRefresh();
  await stack!.clock.step(offsetMs);
  for (let i = 0; i < BURST; i++) assert.equal((await client.request(`${stack!.gw.url}/r/${i}`)).status, 200);
  await nextRefresh();
  return routeRate();
}

test('the Routes panel\'s rates hold when the gateway\'s wall clock steps between two refreshes', { skip }, async () => {
  await page.goto(`http://127.0.0.1:${stack!.gw.adminPort!}/`);
  await page.locator('#conn', { hasText: 'live' }).waitFor({ timeout: 10_000 });
  // BURST requests over one refresh interval (2 s, a little more with the page's own timing): about 10 a second.
  const back = await rateAfterStep(-STEP_MS);
  assert.ok(back > 2 && back < 40, `after a step back: ${back}/s`);
  const forward = await rateAfterStep(0);
  assert.ok(forward > 2 && forward < 40, `after a step forward: ${forward}/s`);
  assert.deepEqual(problems, []);
});
