// `portcullis routes`: the compiled route table in match order, and `--match` to see which route a request takes,
// why, and what the upstream would receive. Reads the config only; starts nothing.
import { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Config, RouteConfig } from '../config/schema.js';
import { DEFAULT_SERVICE, resolveServices } from '../config/services.js';
import { explainMatch, staticOrder } from '../routing/explain.js';
import { conditionsOf } from '../routing/from-config.js';
import { hostOf, normalisePrefix, type MatchInput, type RouteConditions } from '../routing/conditions.js';
import { rewritePath } from '../routing/rewrite.js';
import { isAuthPath, JWKS_PATH } from '../auth/paths.js';
import { isPreflight } from '../cors/policy.js';
import { checkRequestTarget } from '../pipeline/path-check.js';
import { checkRequestHost } from '../pipeline/host-check.js';
import { methodRefusal } from '../pipeline/protocol-check.js';
import { connectionTokens, hopByHopForUpstream } from '../proxy/headers.js';
import { CommandUsageError } from './usage.js';

/** One row of the table, as printed (and as `--json` emits it). */
export interface RouteRow {
  readonly route: string;
  readonly conditions: string;
  readonly services: readonly string[];
  readonly auth: string;
  readonly rate_limit: string;
}

/** What `--match` found. */
export interface MatchReport {
  readonly request: { readonly method: string; readonly host: string; readonly path: string };
  /** The winning route, or a gateway route ("health", "auth"), or null. */
  readonly route: string | null;
  /** Why the gateway answers 400 before routing (the request target or Host it refuses); absent otherwise. */
  readonly refused?: string;
  /** The gateway's answer to a refused request: "400 bad_request", "405 method_not_allowed", "501 not_implemented". */
  readonly refused_with?: string;
  readonly matched_because: readonly string[];
  readonly tried: readonly { readonly route: string; readonly failed: string }[];
  readonly upstream: { readonly service: readonly string[]; readonly method: string; readonly path: string; readonly host: string } | null;
}

function describeConditions(c: RouteConditions): string {
  const parts: string[] = [];
  if (c.hosts) parts.push(`host ${c.hosts.join('|')}`);
  parts.push(c.path !== undefined ? `path ${c.path}` : `path_prefix ${c.pathPrefix ?? '/'}`);
  if (c.methods) parts.push(`methods ${c.methods.join(',')}`);
  if (c.headers) for (const [k, v] of Object.entries(c.headers)) parts.push(`header ${k}=${v}`);
  return parts.join(' ');
}

function authOf(config: Config, r: RouteConfig | undefined): string {
  return r?.auth ?? (config.middleware.auth.enabled ? 'required' : 'off');
}

function servicesOf(r: RouteConfig): string[] {
  return r.split ? r.split.map((a) => `${a.service}*${a.weight}`) : [r.service!];
}

/** The table in match order; the implicit catch-all route when the config has none. */
export function routeRows(config: Config): RouteRow[] {
  if (config.routes.length === 0) {
    return [
      {
        route: 'proxy',
        conditions: 'path_prefix / (implicit catch-all)',
        services: [DEFAULT_SERVICE],
        auth: authOf(config, undefined),
        rate_limit: config.middleware.rate_limit.enabled ? 'default' : 'off',
      },
    ];
  }
  const conditions = config.routes.map((r) => conditionsOf(r, config.middleware.auth.enabled));
  return staticOrder(conditions).map((i) => {
    const r = config.routes[i]!;
    return {
      route: r.name,
      conditions: describeConditions(conditions[i]!),
      services: servicesOf(r),
      auth: authOf(config, r),
      rate_limit: r.rate_limit === 'default' && !config.middleware.rate_limit.enabled ? 'off' : r.rate_limit,
    };
  });
}

/**
 * Parses `--match "GET https://api.example.com/users/1?x=1"` (the scheme is optional; a bare path means no host).
 * Read as written, not through `new URL()`: a URL parser would resolve `..`, decode, or read `x@host` as `host`,
 * and report a route for a request the gateway refuses.
 */
export function parseMatchArgument(spec: string): { method: string; authority: string; path: string; query: string } {
  refuseControls('--match', spec);
  const trimmed = spec.trim();
  const space = trimmed.indexOf(' ');
  // One word is the target, and must hold a "/" (a path, a URL, host/path): "GET" alone was read as a host named
  // "get", and "" as the root of no host, each reported as a routing answer instead of a mistake.
  if (trimmed === '' || (space === -1 && !trimmed.includes('/'))) {
    throw new CommandUsageError('--match needs a request target: "[METHOD] URL or /path", e.g. "GET https://api.example.com/users/1"');
  }
  // As written: methods are case-sensitive, and the gateway refuses `get` (501), as --match then reports.
  const method = space === -1 ? 'GET' : trimmed.slice(0, space);
  if (!TOKEN.test(method)) throw new CommandUsageError('--match: the method must be an HTTP method name such as GET');
  let rest = space === -1 ? trimmed : trimmed.slice(space + 1).trim();
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(rest);
  if (scheme !== null) rest = rest.slice(scheme[0].length);
  let authority = '';
  if (!rest.startsWith('/')) {
    const end = rest.search(/[/?]/);
    authority = end === -1 ? rest : rest.slice(0, end);
    rest = end === -1 ? '/' : rest.slice(end);
    if (rest.startsWith('?')) rest = `/${rest}`;
  }
  const q = rest.indexOf('?');
  return { method, authority, path: q === -1 ? rest : rest.slice(0, q), query: q === -1 ? '' : rest.slice(q) };
}

/** An HTTP token (RFC 9110 tchar): a method or a header name. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * C0 and C1 control characters and DEL: echoed into the report they would reach the terminal (ESC starts an escape
 * sequence), and no request the gateway accepts carries one raw. Refused as bad usage; the value is not repeated.
 */
function refuseControls(option: string, value: string): void {
  if (/[\u0000-\u001f\u007f-\u009f]/.test(value)) {
    throw new CommandUsageError(`${option} must not contain control characters (escape, tab, newline…); percent-encode them in a path`);
  }
}

/**
 * `-H "name: value"` lines as the header map the gateway's router reads (anything else is bad usage, not a silent
 * no-op). Built by node:http's own code for a request's header lines, so a repeated header reads as it does in the
 * gateway: joined with ", " (`x-ver: 2, 2`, which a condition `x-ver: 2` does not match), or the first kept for the
 * headers node allows once (content-type, authorization, ...). node's lists are the source, not a copy of them here.
 */
export function parseHeaderArguments(lines: readonly string[]): Record<string, string> {
  const raw: string[] = [];
  for (const line of lines) {
    refuseControls('-H', line);
    const colon = line.indexOf(':');
    const name = colon === -1 ? '' : line.slice(0, colon).trim();
    if (!TOKEN.test(name)) throw new CommandUsageError('-H takes "name: value" (a header name, a colon, the value)');
    raw.push(name, line.slice(colon + 1).trim());
  }
  const message = new IncomingMessage(undefined as unknown as Socket) as IncomingMessage & { _addHeaderLines(raw: string[], n: number): void };
  message._addHeaderLines(raw, raw.length);
  const headers: Record<string, string> = {};
  // As RequestMatchInput.header reads them: a header node keeps as a list (set-cookie) is joined with ", ".
  for (const [name, value] of Object.entries(message.headers)) if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
  return headers;
}

/** Whether a route has a CORS phase: its own policy, or the default one it does not turn off. */
function corsOn(config: Config, r: RouteConfig): boolean {
  return r.cors === undefined ? config.middleware.cors !== undefined : r.cors !== 'off';
}

/** The routes tried before the winner, with the condition each failed. */
function triedOf(config: Config, explanation: ReturnType<typeof explainMatch>): MatchReport['tried'] {
  return explanation.verdicts.filter((v) => !v.matched).map((v) => ({ route: config.routes[v.index]!.name, failed: v.failed ?? '' }));
}

/**
 * The Host lines the gateway would see, as node's rawHeaders list them: the URL's authority, or each -H Host line.
 * Two -H Host lines are a request the gateway refuses (400, more than one Host), not one routed by the first.
 */
function rawHostLines(urlAuthority: string, headerLines: readonly string[]): string[] {
  if (urlAuthority !== '') return ['Host', urlAuthority];
  const raw: string[] = [];
  for (const line of headerLines) {
    const colon = line.indexOf(':');
    if (line.slice(0, colon).trim().toLowerCase() === 'host') raw.push('Host', line.slice(colon + 1).trim());
  }
  return raw;
}

/** Which route `spec` takes, why, and what its upstream would receive. Throws CommandUsageError for a bad argument. */
export function matchReport(config: Config, spec: string, headerLines: readonly string[]): MatchReport {
  const headers = parseHeaderArguments(headerLines);
  const target = parseMatchArgument(spec);
  const { method, path, query } = target;
  // The host comes from the URL (`GET http://api.example.com/x`) or from -H Host with a bare path, as the gateway
  // routes by the Host line; two different ones would leave the report guessing which the operator meant.
  if (target.authority !== '' && headers.host !== undefined && headers.host !== target.authority) {
    throw new CommandUsageError('name the host once: in the URL (GET http://host/path) or with -H "Host: …" and a path, not two different ones');
  }
  const authority = target.authority || (headers.host ?? '');
  const host = hostOf(authority);
  const request = { method, host, path };
  // The gateway's own first step: a target or authority it would refuse reaches no route.
  const refused =
    methodRefusal(method) ??
    checkRequestTarget(path + query) ??
    (authority === '' ? undefined : checkRequestHost({ httpVersionMajor: 1, headers: { host: authority }, rawHeaders: rawHostLines(target.authority, headerLines) }));
  if (refused !== undefined) {
    const why = refused.details !== undefined ? String(refused.details) : refused.message;
    return { request, route: null, refused: why, refused_with: `${refused.status} ${refused.publicCode}`, matched_because: [], tried: [], upstream: null };
  }
  // Header conditions read the headers as the upstream would get them: a hop-by-hop one is absent (as in the gateway).
  const tokens = connectionTokens(headers.connection);
  // `host` is the host routed by, as the gateway compares a host condition (RequestMatchInput.header).
  const headerOf = (name: string): string | undefined => (name === 'host' ? (host === '' ? undefined : host) : headers[name]);
  const input: MatchInput = { method, host, path, header: (name) => (hopByHopForUpstream(name, tokens) ? undefined : headerOf(name)) };
  if (path === '/health') return { request, route: 'health', matched_because: ['the gateway answers /health itself'], tried: [], upstream: null };
  if (config.middleware.auth.enabled && isAuthPath(path)) {
    // HS256 publishes no key: the gateway's own JWKS path answers 404 (auth/routes.ts).
    const why = path === JWKS_PATH && config.jwt.algorithm === 'HS256' ? 'the gateway answers the JWKS path itself: 404, as HS256 publishes no key' : 'the gateway answers /auth/* and the JWKS itself (auth is on)';
    return { request, route: 'auth', matched_because: [why], tried: [], upstream: null };
  }
  const services = resolveServices(config);
  const upstreamHost = (r: RouteConfig | undefined, service: string): string => {
    const mode = r?.host ?? 'preserve';
    if (mode === 'preserve') return authority || '(the client\'s Host)';
    if (mode === 'upstream') {
      const u = services.get(service)?.upstreams[0];
      return u ? `${u.address}:${u.port} (the chosen upstream's address:port)` : '(the chosen upstream)';
    }
    return mode;
  };
  if (config.routes.length === 0) {
    if (config.middleware.cors !== undefined && isPreflight(method, headers.origin, headers['access-control-request-method'])) {
      const because = ['no routes are configured', 'a CORS preflight: middleware.cors answers it (204 when the origin is allowed), nothing is forwarded'];
      return { request, route: 'proxy', matched_because: because, tried: [], upstream: null };
    }
    return {
      request,
      route: 'proxy',
      matched_because: ['no routes are configured: the implicit catch-all sends everything to "default"'],
      tried: [],
      upstream: { service: [DEFAULT_SERVICE], method, path: path + query, host: upstreamHost(undefined, DEFAULT_SERVICE) },
    };
  }
  const conditions = config.routes.map((r) => conditionsOf(r, config.middleware.auth.enabled));
  // A CORS preflight is matched by the method it asks about, and kept only where that route's CORS policy answers
  // it; elsewhere it is matched, and forwarded, as the OPTIONS it is (compose/route-table.ts does the same).
  const asked = headers['access-control-request-method'];
  const explanation = explainMatch(conditions, input);
  if (isPreflight(method, headers.origin, asked)) {
    const askedMethod = String(asked).toUpperCase();
    const asPreflight = explainMatch(conditions, { ...input, method: askedMethod });
    const r = config.routes[asPreflight.winner];
    if (r !== undefined && corsOn(config, r)) {
      const held = asPreflight.verdicts.find((v) => v.index === asPreflight.winner)!.held;
      const because = [...held, `a CORS preflight for ${askedMethod}: the route's CORS policy answers it (204 when the origin is allowed), nothing is forwarded`];
      return { request, route: r.name, matched_because: because, tried: triedOf(config, asPreflight), upstream: null };
    }
  }
  const tried = triedOf(config, explanation);
  if (explanation.winner === -1) return { request, route: null, matched_because: [], tried, upstream: null };
  const r = config.routes[explanation.winner]!;
  const winner = explanation.verdicts.find((v) => v.index === explanation.winner)!;
  const strip = r.strip_prefix && r.match.path_prefix !== undefined ? normalisePrefix(r.match.path_prefix) : undefined;
  const upstreamPath = rewritePath(path, { stripPrefix: strip, addPrefix: r.add_prefix }) + query;
  const svc = servicesOf(r);
  return {
    request,
    route: r.name,
    matched_because: winner.held,
    tried,
    upstream: { service: svc, method, path: upstreamPath, host: upstreamHost(r, r.service ?? r.split![0]!.service) },
  };
}

/** The table as aligned text columns. */
export function formatRows(rows: readonly RouteRow[]): string {
  const table = [['ROUTE', 'CONDITIONS', 'SERVICES', 'AUTH', 'RATE LIMIT'], ...rows.map((r) => [r.route, r.conditions, r.services.join(', '), r.auth, r.rate_limit])];
  const widths = table[0]!.map((_, col) => Math.max(...table.map((row) => row[col]!.length)));
  return table.map((row) => row.map((cell, col) => (col === row.length - 1 ? cell : cell.padEnd(widths[col]!))).join('  ')).join('\n') + '\n';
}

/** The `--match` report as text. */
export function formatMatch(report: MatchReport): string {
  const { request } = report;
  const lines = [`request: ${request.method} ${request.host || '(no host)'} ${request.path}`];
  for (const t of report.tried) lines.push(`  tried ${t.route}: ${t.failed}`);
  if (report.refused !== undefined) {
    lines.push(`refused before routing: the gateway answers ${report.refused_with ?? '400 bad_request'} (${report.refused})`);
    return lines.join('\n') + '\n';
  }
  if (report.route === null) {
    lines.push('no route matches: the gateway answers 404 route_not_found');
    return lines.join('\n') + '\n';
  }
  lines.push(`route: ${report.route} (${report.matched_because.join(', ')})`);
  if (report.upstream) {
    lines.push(`upstream: ${report.upstream.method} ${report.upstream.path}  Host: ${report.upstream.host}  service: ${report.upstream.service.join(', ')}`);
  }
  return lines.join('\n') + '\n';
}
