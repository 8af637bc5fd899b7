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
const STATE = 'version';

const plugin: Plugin<VersionRouterConfig> = {
  name: 'api-version-router',

  validate(config) {
    const c = config as Partial<VersionRouterConfig> | undefined;
    if (!Array.isArray(c?.versions) || c!.versions.length === 0 || !c!.versions.every((v) => typeof v === 'string' && VERSION_LIKE.test(v))) {
      throw new Error('versions must be a non-empty list like [v1, v2]');
    }
    if (c!.header !== undefined && (typeof c!.header !== 'string' || !/^[a-z0-9-]+$/i.test(c!.header))) throw new Error('header must be a header name');
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
