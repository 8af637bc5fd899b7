// The image's HEALTHCHECK (Dockerfile) run as Docker runs it, against a gateway started as the image starts it
// (config/proxy.yaml), with PORTCULLIS_PORT moving the proxy port: the probe must follow it. It was fixed on 8080,
// so `docker run -e PORTCULLIS_PORT=8443 …` gave a container that served but was marked unhealthy (and restarted
// by an orchestrator that acts on health).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { startProcess, type GatewayProcess } from '../helpers/gateway.js';
import { closedPort } from '../helpers/backends.js';

const ROOT = new URL('../../', import.meta.url).pathname;
let gateway: GatewayProcess | undefined;
after(async () => {
  await gateway?.cleanup();
});

/** The script of the Dockerfile's `HEALTHCHECK … CMD node -e "…"`. */
function healthcheckScript(): string {
  const match = /^HEALTHCHECK .* CMD node -e "(.*)"$/m.exec(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
  assert.ok(match, 'Dockerfile has a HEALTHCHECK running node -e "…"');
  return match[1]!;
}

/** Runs the probe with `env` as the container's environment; resolves to its exit code. */
function probe(env: NodeJS.ProcessEnv): Promise<number | null> {
  const child = spawn(process.execPath, ['-e', healthcheckScript()], { env: { PATH: process.env.PATH, ...env }, stdio: 'ignore' });
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000); // Docker's --timeout=3s, with room
  return new Promise((resolve) =>
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    }),
  );
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.once('error', reject);
  });
}

test('the image HEALTHCHECK probes the port PORTCULLIS_PORT gives config/proxy.yaml', async () => {
  const port = await freePort();
  const env = { PORTCULLIS_PORT: String(port), ADMIN_PORT: '0', TLS_CERT_FILE: '', TLS_KEY_FILE: '', ACCESS_LOG_FILE: '' };
  gateway = await startProcess(process.execPath, [join(ROOT, 'bin/portcullis.js'), 'start'], 'config/proxy.yaml', {
    env: { ...env, PORTCULLIS_CONFIG: join(ROOT, 'config/proxy.yaml'), NODE_ENV: 'production' },
  });
  assert.equal(gateway.port, port);
  assert.equal(await probe(env), 0, 'healthy: /health answers 200 on PORTCULLIS_PORT');
  // And it is that port it asks: one where nothing listens is unhealthy.
  assert.equal(await probe({ ...env, PORTCULLIS_PORT: String(await closedPort()) }), 1);
});
