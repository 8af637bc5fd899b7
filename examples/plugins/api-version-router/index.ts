// Example plugin: the API version from a path segment (/v2/users → X-Api-Version: v2 upstream), 400 when unknown.
//
//   plugins:                  # in config/proxy.yaml: module paths start at the config file's directory
//     - name: versions
//       module: ../examples/plugins/api-version-router/index.ts
//       config: { versions: [v1, v2], header: x-api-version, default: v1 }
//   middleware:
//     plugins: [versions]
//
// The segment that names the version is `segment` (0 = the first). A path whose segment looks like a version
// (v + digits) but is not in `versions` is refused with 400; a path with no version segment gets `default`, or
// 400 when there is none.
import type { Plugin } from 'portcullis';

export interface VersionRouterConfig {
  readonly versions: readonly string[];
  /** Header sent upstream. Default x-api-version. */
  readonly header?: string;
  /** Which path segment holds the version. Default 0. */
  readonly segment?: number;
  /** Version for paths without one. Default: none (400). */
  readonly default?: string;
}

const VERSION_LIKE = /^v\d+$/;
/**
 * Header names the gateway sets or removes on every upstream request (framing, forwarding, its own and identity
 * headers at their defaults): onUpstreamRequest may not set them, so naming one is a config error here rather than a
 * 500 on every request. Identity headers renamed in the gateway's config cannot be seen from a plugin.
 */
const OWNED = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'keep-alive', 'te', 'trailer', 'upgrade',
  'proxy-connection', 'http2-settings', 'expect', 'proxy-authorization', 'forwarded', 'x-real-ip', 'x-request-id', 'x-proxy-by', 'x-user-id', 'x-user-email',
  'x-consumer-id', 'x-consumer-name', 'traceparent', 'tracestate', 'x-original-url', 'x-rewrite-url']);
const STATE = 'version';

const plugin: Plugin<VersionRouterConfig> = {
  name: 'api-version-router',

  validate(config) {
    const c = config as Partial<VersionRouterConfig> | undefined;
    if (!Array.isArray(c?.versions) || c!.versions.length === 0 || !c!.versions.every((v) => typeof v === 'string' && VERSION_LIKE.test(v))) {
      throw new Error('versions must be a non-empty list like [v1, v2]');
    }
    if (c!.header !== undefined && (typeof c!.header !== 'string' || !/^[a-z0-9-]+$/i.test(c!.header))) throw new Error('header must be a header name');
    const name = c!.header?.toLowerCase();
    if (name !== undefined && (OWNED.has(name) || name.startsWith('x-forwarded-'))) throw new Error(`header ${c!.header} is set by the gateway`);
    if (c!.segment !== undefined && (!Number.isInteger(c!.segment) || c!.segment < 0)) throw new Error('segment must be an integer from 0');
    if (c!.default !== undefined && !c!.versions.includes(c!.default)) throw new Error('default must be one of versions');
  },

  create(config) {
    const known = new Set(config.versions);
    const header = config.header ?? 'x-api-version';
    const position = config.segment ?? 0;
    const refuse = { error: 'Unknown API version', supported: [...config.versions] };
    return {
      onRequest(ctx) {
        const segment = ctx.request.path.split('/').filter((s) => s !== '')[position];
        let version: string | undefined;
        if (segment !== undefined && VERSION_LIKE.test(segment)) version = known.has(segment) ? segment : undefined;
        else version = config.default;
        if (version === undefined) return ctx.respond(400, refuse);
        ctx.state.set(STATE, version);
      },
      onUpstreamRequest(ctx) {
        ctx.upstreamHeaders.set(header, ctx.state.get(STATE) as string);
      },
    };
  },
};

export default plugin;
