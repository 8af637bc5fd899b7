// Builds the gateway's Tracing from config: the no-op when `tracing.otlp_endpoint` is empty, else the SDK, imported
// only then so a gateway without tracing never loads (or pays memory for) OpenTelemetry.
import { packageVersion } from '../../package-version.js';
import type { Logger } from 'pino';
import type { Config } from '../../config/schema.js';
import { NO_TRACING, type Tracing } from './types.js';

export { NO_TRACING, type Tracing, type RequestTrace, type SpanAttributes, type ChildKind } from './types.js';

/** Created once per gateway in server.ts. Resolves to NO_TRACING when tracing is off. */
export async function createTracing(config: Config['tracing'], logger: Logger): Promise<Tracing> {
  if (config.otlp_endpoint === '') return NO_TRACING;
  const [{ createSdk }, { OtelTracing }] = await Promise.all([import('./sdk.js'), import('./otel-tracing.js')]);
  return new OtelTracing(createSdk(config, packageVersion(), logger), config);
}
