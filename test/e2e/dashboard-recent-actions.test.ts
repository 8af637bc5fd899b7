// The dashboard's recent admin actions: an operator's action stays listed however many users log themselves out of
// every session. Those logouts are recorded too (actor user), and anyone can register and log out on the public
// listener: when they shared the operators' 20 kept rows, a dozen of them pushed a disable off the page.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bearer, register } from '../helpers/auth-gateway.js';
import { adminStackHooks } from '../helpers/identity.js';

interface RecentAction {
  actor: string;
  action: string;
  target_id: string;
}

const hooks = adminStackHooks();

async function recentActions(): Promise<RecentAction[]> {
  const res = await hooks.admin().get('/api/status');
  assert.equal(res.status, 200, res.text);
  return res.json<{ identity: { recent_actions: RecentAction[] } }>().identity.recent_actions;
}

/** Polls the dashboard data (the change log is read every second) until `done` holds, for at most `ms`. */
async function recentWhen(done: (rows: RecentAction[]) => boolean, ms: number): Promise<RecentAction[]> {
  const deadline = Date.now() + ms;
  for (;;) {
    const rows = await recentActions();
    if (done(rows) || Date.now() > deadline) return rows;
    await new Promise((r) => setTimeout(r, 200));
  }
}

test("a burst of users' own logouts does not push an operator's action off the recent list", async () => {
  const stack = hooks.stack;
  const target = await register(stack);
  const disabled = await hooks.admin().post(`/admin/users/${target.user_id}/disable`);
  assert.equal(disabled.status, 200, disabled.text);
  const isTheDisable = (r: RecentAction): boolean => r.action === 'disable' && r.target_id === target.user_id;
  assert.ok((await recentWhen((rows) => rows.some(isTheDisable), 5000)).some(isTheDisable), 'listed once read');

  // More than the ten rows the dashboard shows.
  const selfLogouts: string[] = [];
  for (let i = 0; i < 12; i++) {
    const user = await register(stack);
    const out = await stack.client.postJson(`${stack.url}/auth/logout`, { all_sessions: true }, bearer(user.access_token));
    assert.equal(out.status, 200, out.text);
    selfLogouts.push(user.user_id);
  }
  const last = selfLogouts.at(-1);
  const rows = await recentWhen((r) => r.some((row) => row.actor === 'user' && row.target_id === last), 5000);

  assert.ok(rows.some((r) => r.actor === 'user' && r.action === 'logout' && r.target_id === last), 'the latest self-logout is listed');
  assert.ok(rows.some(isTheDisable), `the operator's disable is still listed: ${JSON.stringify(rows)}`);
  assert.ok(rows.filter((r) => r.actor === 'user').length <= 3, 'users’ own logouts take at most three rows');
  assert.ok(rows.length <= 10);
});
