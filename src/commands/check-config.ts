// `check-config`: what it checks (checkConfig, which runs in-process too), and how it ends its process.
// It ends its process once its verdict is out. It imports and runs plugin code (create(), close()), and
// that code may leave something behind that keeps node's event loop alive: a create() past plugin_load_timeout whose
// promise still waits on a timer or a connection, a client or interval an instance opened and its close() did not
// end. Waiting for those to go away by themselves would make a command that has already answered hang for as long as
// they last (a minute, or for ever), which a deploy script or CI step calling it cannot tell from a check still
// running.

import { dirname } from 'node:path';
import { loadConfigFile } from '../config/load.js';
import type { Config } from '../config/schema.js';
import type { Registry } from '../observability/prom-client.js';
import { checkTlsFiles } from '../tls/setup.js';
import { whenFlushed } from '../stream-flushed.js';

/**
 * Everything `check-config` checks, in start-up's order and with start-up's messages: throws the ConfigError start
 * would stop with for a reason in the files (not for a server it cannot reach); returns the config when it would
 * start. `dataDir` as start-up resolves it. Schema and cross-key rules (trusted_proxies, URLs, jwt.secret's length)
 * are in loadConfigFile. Runs in-process (the README's snippet test calls it), so it never exits: the command does.
 */
export async function checkConfig(configPath: string, dataDir: string, env: NodeJS.ProcessEnv = process.env): Promise<Config> {
  const config = loadConfigFile(configPath, env);
  checkTlsFiles(config);
  await checkSigningKeyFiles(config, dataDir);
  // The certificate files database.url names, read as the store's opening reads them (only auth opens the store).
  if (config.middleware.auth.enabled && config.database.url !== '') (await import('../config/postgres-files.js')).checkPostgresUrlFiles(config.database.url);
  // The files and directories start-up writes (access log, data dir), asked about without creating anything.
  await (await import('./check-writable.js')).checkWritablePaths(config, dataDir);
  // Plugins too: each module imported, validated and created, then closed again, as start-up would.
  await checkPlugins(config, dirname(configPath));
  // Then the listen addresses, as start-up binds its listeners after its plugins: a host that is not this machine's.
  await (await import('./check-listeners.js')).checkListenAddresses(config);
  return config;
}

/**
 * `check-config`: the JWT key pair files, read and matched as start-up reads them when auth is on (the same
 * ConfigError: missing, unreadable, not a PEM key of the algorithm's kind, too short an RSA key, halves that do not
 * match). HS256 needs nothing more: the secret's length is a schema rule, and an empty one is generated (or read) in
 * the data dir at start-up, which check-config does not write to.
 */
async function checkSigningKeyFiles(config: Config, dataDir: string): Promise<void> {
  if (!config.middleware.auth.enabled || config.jwt.algorithm === 'HS256') return;
  const { loadSigningKeys } = await import('../auth/keys.js');
  await loadSigningKeys({ jwt: config.jwt, dataDir, logger: { warn: () => undefined } });
}

/**
 * `check-config`: every plugin imported, validated and its instance created as start-up creates it (the gateway's
 * PluginHost: the same checks of what create() returns, the same plugin_load_timeout and plugin_timeout, the same
 * config errors), then closed again. api.store is an in-process memory store here, whatever `redis.*` says.
 * api.metrics registers on a registry of its own holding the gateway's metrics, as start-up's does: without one,
 * `api.metrics.registry` threw, so a plugin with a prom-client metric of its own was refused here and started, and
 * one whose metric takes a gateway metric's name would pass here and fail at start. What the plugins log at warn and
 * above (a close() that fails: Plugin Failed) goes to stderr; a failing close() does not fail the check, as it does
 * not fail a start.
 */
async function checkPlugins(config: Config, baseDir: string): Promise<void> {
  if (config.plugins.length === 0) return;
  const [{ PluginHost }, { MemoryKvStore }, { pino }, registry] = await Promise.all([
    import('../plugins/host.js'),
    import('../kv/memory.js'),
    import('pino'),
    startupRegistry(config),
  ]);
  const kv = new MemoryKvStore();
  const logger = pino({ level: 'warn', base: { service: 'portcullis' } }, pino.destination({ fd: 2, sync: true }));
  const host = new PluginHost({ logger, kv: () => kv, registry, baseDir });
  try {
    await host.discard(await host.prepare(config));
  } finally {
    await kv.close();
  }
}

/**
 * A registry holding the metrics start-up's holds when the plugins are created (features.ts: the gateway's metrics,
 * the certificate-expiry gauge, and with auth the admin-action counter), so that a plugin's metric of its own meets
 * the same names here as there.
 */
async function startupRegistry(config: Config): Promise<Registry> {
  const [{ GatewayMetrics }, { adminActionCounter }] = await Promise.all([import('../observability/metrics.js'), import('../identity/audit.js')]);
  const metrics = new GatewayMetrics(() => []);
  metrics.watchCertificates(() => []);
  if (config.middleware.auth.enabled) adminActionCounter(metrics.registry);
  return metrics.registry;
}

/**
 * Ends the process with `code` once check-config's verdict (`config ok: …` on stdout, or the error on stderr) has been
 * flushed, whatever plugin code left running. Called after the verdict is written (main()'s `finally`).
 */
export function exitWithVerdict(code: number): void {
  whenFlushed(process.stdout, () => whenFlushed(process.stderr, () => process.exit(code)));
}
