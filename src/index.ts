// The package's main entry point (`import ... from 'portcullis'`): embedding, the plugin helper and the public types.
export { startGateway, type EmbeddedGateway, type GatewayConfig, type StartOptions } from './embedding/start.js';
export { ConfigError } from './config/load.js';
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
