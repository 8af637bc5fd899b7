// `npm run demo`: three demo backends on 3000-3002 behind the gateway, each answering with its own name.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startProcess, type GatewayProcess } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { waitFor } from '../helpers/wait.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const client = createClient();
let demo: GatewayProcess | undefined;
after(async () => {
  await client.close();
  await demo?.cleanup();
});

test('npm run demo shows round robin over backend1..3 with auth off, and stops on SIGTERM', async () => {
  // Free ports for the gateway and admin listener; the demo backends keep their documented ports 3000-3002.
  demo = await startProcess('npm', ['run', 'demo'], join(ROOT, 'config/demo.yaml'), {
    group: true,
    timeoutMs: 20_000,
    env: { PORTCULLIS_PORT: '0', ADMIN_PORT: '0', PORTCULLIS_CONFIG: '' },
  });
  const names: string[] = [];
  for (let i = 0; i < 3; i++) {
    const res = await client.request(`${demo.url}/`);
    assert.equal(res.status, 200);
    names.push(res.json<{ backend: string }>().backend);
  }
  assert.deepEqual([...names].sort(), ['backend1', 'backend2', 'backend3']);
  demo.signal('SIGTERM');
  await waitFor(() => demo!.logs.some((l) => l.msg === 'Gateway Stopped'), 'Gateway Stopped', 10_000);
  await demo.exited;
});
