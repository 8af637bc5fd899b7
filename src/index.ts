// The package's main entry point (`import ... from 'portcullis'`): embedding, the plugin helper and the public types.
// It loads next to nothing: a plugin that imports definePlugin from here runs inside a gateway that is already
// loaded (from dist/bundle/, a copy of its own), and must not load a second gateway's worth of modules for it.
import type { EmbeddedGateway, GatewayConfig, StartOptions } from './embedding/start.js';

export type { EmbeddedGateway, GatewayConfig, StartOptions };
export { ConfigError } from './config/config-error.js';

/** Starts a gateway in this process (see README, "Embedding"). The gateway's modules load on the first call. */
export async function startGateway(config: GatewayConfig, options: StartOptions = {}): Promise<EmbeddedGateway> {
  const { startGateway: start } = await import('./embedding/start.js');
  return start(config, options);
}
export {
  definePlugin,
  type Awaitable,
  type Plugin,
  type PluginApi,
  type PluginConsumer,
  type PluginContext,
  type PluginHeaders,
  type PluginHooks,
  type PluginLogger,
  type PluginMetricOptions,
  type PluginMetrics,
  type PluginRequest,
  type PluginResponseBody,
  type PluginStore,
  type PluginTakeResult,
  type PluginUpstream,
  type PluginUser,
} from './plugins/contract.js';
