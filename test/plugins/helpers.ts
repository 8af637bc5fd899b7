// Shared setup of the plugin suites: fixture paths, the events fixtures record, a gateway with plugins in front of an echo backend.
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { startInProcess, upstreams, type ConfigInput, type InProcessGateway } from '../helpers/gateway.js';

/** Absolute path of a fixture plugin module. */
export function fixture(file: string): string {
  return new URL(`./fixtures/${file}`, import.meta.url).pathname;
}

/** The hook calls the fixtures recorded on `channel` (they run in this process). */
export function events(channel: string): string[] {
  const all = ((globalThis as { __pluginEvents?: Record<string, string[]> }).__pluginEvents ??= {});
  return (all[channel] ??= []);
}

export interface PluginGateway {
  readonly gw: InProcessGateway;
  readonly backend: TestBackend;
  close(): Promise<void>;
}

/** An echo backend and an in-process gateway with `plugins` declared and `order` in middleware.plugins. */
export async function gatewayWithPlugins(
  plugins: ConfigInput[],
  order: string[],
  extra: ConfigInput = {},
): Promise<PluginGateway> {
  const backend = await startBackend('echo');
  const middleware = (extra.middleware ?? {}) as ConfigInput;
  let gw: InProcessGateway;
  try {
    gw = await startInProcess({
      ...extra,
      load_balancing: { upstreams: upstreams([backend.port]) },
      plugins,
      middleware: { ...middleware, plugins: order },
    });
  } catch (err) {
    await backend.stop();
    throw err;
  }
  return {
    gw,
    backend,
    async close() {
      await gw.close();
      await backend.stop();
    },
  };
}
