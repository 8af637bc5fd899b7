// /admin/users and /admin/api-keys on the admin listener: JSON in, JSON out, over IdentityAdmin.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import * as z from 'zod';
import { describeCause, GatewayError, toGatewayError } from '../errors.js';
import { EVENTS } from '../observability/events.js';
import { KvUnavailableError } from '../kv/kv-store.js';
import { StoreUnavailableError } from '../store/user-store.js';
import { InvalidCursorError, type UserSummary } from '../store/identity-types.js';
import { parseDuration } from '../config/duration.js';
import { readJsonBody } from '../auth/body.js';
import { toFieldIssues } from '../auth/validation.js';
import { PARSE_OPTIONS } from '../zod-parse.js';
import { leaveBody } from '../pipeline/request-body.js';
import { json, sendAdminError } from '../admin/server.js';
import { concurrencyLimit, ReadAbandonedError, sharedRenderByKey } from '../admin/shared-render.js';
import { HASHER_BUSY_RETRY_AFTER_SECONDS, HasherBusyError } from '../auth/password.js';
import {
  API_KEY_LIFETIME_RULE,
  apiKeyJson,
  emailFilterProblem,
  isApiKeyLifetime,
  MAX_PAGE_SIZE,
  pageLimit,
  userJson,
  type Committed,
  type IdentityAdmin,
  type Propagation,
} from './admin-service.js';

/** Admin bodies are tiny: an email and a password, or a key name. */
const ADMIN_BODY_LIMIT = 16 * 1024;
const RETRY_AFTER = { 'retry-after': '5' };
/**
 * The most admin reads (listings, one user) on the user store at once: the pool (database.pool_size, 10 by default)
 * is what the proxy port's logins and API keys wait on, and an operator's script needs no more than this to list.
 */
const ADMIN_READS_AT_ONCE = 2;

/**
 * The `warning` of a 202: the action is committed and audited, but its revocation did not reach the revocation store
 * (Redis). Kong's admin API answers once its database has the change and nodes catch up on their own; so does this
 * one, saying so instead of a 5xx that would read as "nothing happened".
 */
export const REVOCATION_PENDING_WARNING =
  'done, but the revocation could not be written to Redis: running gateways refuse these credentials once Redis ' +
  'answers again (each applies the change log within a second); repeating this request retries it now';

/**
 * A field name a 400 may name back: a plain identifier. Anything else (spaces, markup, something pasted in the wrong
 * place) is not echoed: the detail then names the body. A value is never echoed, whatever its key.
 */
const PLAIN_FIELD_NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;

/**
 * An admin body's schema: strict, so a field it does not read is refused (by parseAdminBody), never dropped. Dropped,
 * a misspelt field did harm without a word: `expires_at` or Kong's `ttl` made an API key that never expires,
 * `{"email","password","disabled":true}` an enabled user. `takes` names the fields it reads, for the refusal.
 */
function strictBody<Shape extends z.ZodRawShape>(shape: Shape, takes: string) {
  return z.strictObject(shape, { error: (issue) => (issue.code === 'unrecognized_keys' ? `must hold only ${takes}` : 'must be a JSON object') });
}

/** The fields POST /admin/api-keys reads. */
export const API_KEY_BODY_FIELDS = 'name and expires_in';

/** An API key name: printable ASCII, since it is forwarded in the X-Consumer-Name header. */
export const apiKeyBodySchema = strictBody(
  {
    name: z
      .string({ error: 'must be a string' })
      .trim()
      .min(1, 'is required')
      .max(100, 'must be at most 100 characters')
      .regex(/^[\x20-\x7e]+$/, 'must be printable ASCII'),
    expires_in: z
      .union([z.number(), z.string()], { error: 'must be a duration like 90d or a number of seconds' })
      .optional()
      .transform((value, ctx) => {
        if (value === undefined) return undefined;
        const ms = parseDuration(value);
        if (ms === undefined) {
          ctx.addIssue({ code: 'custom', message: 'must be a positive duration like 90d or a number of seconds' });
          return z.NEVER;
        }
        // Checked here, before anything is stored (and the same rule again in IdentityAdmin.createApiKey). Under a
        // second too: `0.0006` (seconds) made a key of 1 ms, expired before it could be used.
        if (!isApiKeyLifetime(ms)) {
          ctx.addIssue({ code: 'custom', message: API_KEY_LIFETIME_RULE });
          return z.NEVER;
        }
        return ms;
      }),
  },
  API_KEY_BODY_FIELDS,
);

/**
 * POST /admin/users and POST /admin/users/{id}/password: only which fields there are is checked here; the values are
 * judged by the register rules in IdentityAdmin, as the CLI's are. The public /auth/register shares those rules but
 * not this strictness: its clients may send extra fields.
 */
const USER_BODY_FIELDS = 'email and password';
const userBodySchema = strictBody({ email: z.unknown().optional(), password: z.unknown().optional() }, USER_BODY_FIELDS);
const PASSWORD_BODY_FIELDS = 'password';
const passwordBodySchema = strictBody({ password: z.unknown().optional() }, PASSWORD_BODY_FIELDS);

/**
 * Validates an admin body with its strict schema; throws INVALID_BODY with details. A field the body does not read
 * comes first, named when its name is a plain one (`{field: "ttl", message: "is not a field of this body (…)"}`),
 * else as `{field: "body", message: "must hold only …"}`; the other problems follow as parseWith words them.
 */
export function parseAdminBody<T>(schema: z.ZodType<T>, takes: string, value: unknown): T {
  const result = schema.safeParse(value, PARSE_OPTIONS);
  if (result.success) return result.data;
  const unknownKeys = result.error.issues.find((issue) => issue.code === 'unrecognized_keys');
  const rest = toFieldIssues(new z.ZodError(result.error.issues.filter((issue) => issue !== unknownKeys)));
  if (unknownKeys === undefined) throw new GatewayError('INVALID_BODY', { details: rest });
  const named = unknownKeys.keys.find((key) => PLAIN_FIELD_NAME.test(key));
  const first =
    named === undefined ? { field: 'body', message: `must hold only ${takes}` } : { field: named, message: `is not a field of this body (it takes only ${takes})` };
  throw new GatewayError('INVALID_BODY', { details: [first, ...rest] });
}

type Handler = (req: IncomingMessage, res: ServerResponse, id: string | undefined) => Promise<void>;
/**
 * Handlers by method or action name. A Map, not an object: a name from the request looked up in an object finds
 * Object.prototype's members too (`/toString` called toString with the request, which answered nothing; `/__proto__`
 * was no function at all: a 500).
 */
type Table = ReadonlyMap<string, Handler>;

/**
 * The handler the admin server calls for /admin/*; resolves false for an unknown path (the server answers 404).
 * Every failure is a catalogue error: unknown id 404, bad body or query 400 with details, wrong method 405 with
 * Allow, store outage 503 with Retry-After. A 5xx is logged too (Admin Request Error, with the failure's class and
 * code, never its message): the operator who got it has no other trace of why.
 */
export function createIdentityRoutes(admin: IdentityAdmin, logger: Logger) {
  // The listings read the user store, whose pool the proxy port's logins, API keys and revocations wait on: each
  // request ran its own query, so a few dozen concurrent listings took every pool connection while the store was slow
  // (a lock, a long scan), and logins waited behind them. Identical listings that arrive together now share one
  // query, begun after each of them arrived, so a listing still shows every change committed before it was asked for.
  // Listings that differ (another page, another email) and reads of one user cannot share: they take turns, at most
  // ADMIN_READS_AT_ONCE of them on the pool at a time, whatever a token holder sends.
  // A read is run only if a client still waits for it (one of a shared listing's): see concurrencyLimit.
  const read = concurrencyLimit(ADMIN_READS_AT_ONCE);
  const listers = new Listers();
  const listUsersShared = sharedRenderByKey(
    (key) => read(() => admin.listUsers(JSON.parse(key) as ListQuery), () => listers.anyWaiting(`users ${key}`)),
    'after-arrival',
  );
  const listApiKeysShared = sharedRenderByKey(
    (key) => read(() => admin.listApiKeys(JSON.parse(key) as PageQuery), () => listers.anyWaiting(`api-keys ${key}`)),
    'after-arrival',
  );
  const listUsers = (req: IncomingMessage, key: string) => listers.during(req, `users ${key}`, () => listUsersShared(key));
  const listApiKeys = (req: IncomingMessage, key: string) => listers.during(req, `api-keys ${key}`, () => listApiKeysShared(key));
  // The three handlers that read a request body; every other one answers without reading any.
  const createUser: Handler = async (req, res) => {
    const body = parseAdminBody(userBodySchema, USER_BODY_FIELDS, await readJsonBody(req, ADMIN_BODY_LIMIT, res));
    json(res, 201, userJson(await admin.createUser(body)));
  };
  const setPassword: Handler = async (req, res, id) => {
    const body = parseAdminBody(passwordBodySchema, PASSWORD_BODY_FIELDS, await readJsonBody(req, ADMIN_BODY_LIMIT, res));
    committedUser(req, res, await admin.setPassword(id!, body));
  };
  const createApiKey: Handler = async (req, res) => {
    const body = parseAdminBody(apiKeyBodySchema, API_KEY_BODY_FIELDS, await readJsonBody(req, ADMIN_BODY_LIMIT, res));
    const created = await admin.createApiKey({ name: body.name, ...(body.expires_in === undefined ? {} : { expiresInMs: body.expires_in }) });
    json(res, 201, { ...apiKeyJson(created), key: created.key });
  };
  const readsBody: ReadonlySet<Handler> = new Set([createUser, setPassword, createApiKey]);
  const users: Table = new Map<string, Handler>([
    [
      'GET',
      async (req, res) => {
        const query = parseListQuery(new URL(req.url ?? '/', 'http://admin').searchParams);
        const page = await listUsers(req, JSON.stringify(query));
        json(res, 200, { users: page.users.map(userJson), next_cursor: page.nextCursor });
      },
    ],
    ['POST', createUser],
  ]);
  /**
   * A committed revoking action: its usual answer once the revocation is written; else 202 with the usual body plus
   * `revocation: "pending"` and a `warning` (a 204's body being `{user_id|id}`), and a `Revocation Pending` log line.
   */
  const committed = (req: IncomingMessage, res: ServerResponse, propagation: Propagation, body: Record<string, unknown> | undefined): void => {
    if (propagation.state === 'done') {
      if (body === undefined) noContent(res);
      else json(res, 200, body);
      return;
    }
    logger.warn(
      { method: req.method, path: pathTemplate(pathOf(req)), target_id: propagation.targetId, cause: describeCause(propagation.cause) },
      EVENTS.revocationPending,
    );
    json(res, 202, { ...body, revocation: 'pending', warning: REVOCATION_PENDING_WARNING });
  };
  const committedUser = (req: IncomingMessage, res: ServerResponse, result: Committed<UserSummary>): void =>
    committed(req, res, result.propagation, userJson(result.value));

  const user: Table = new Map<string, Handler>([
    ['GET', async (req, res, id) => json(res, 200, userJson(await read(() => admin.getUser(id!), () => clientWaits(req))))],
    [
      'DELETE',
      async (req, res, id) => {
        const propagation = await admin.deleteUser(id!);
        committed(req, res, propagation, propagation.state === 'done' ? undefined : { user_id: propagation.targetId });
      },
    ],
  ]);
  // Each action answers POST only: its table is built once here, not per request.
  const postOnly = (handler: Handler): Table => new Map([['POST', handler]]);
  const actions: ReadonlyMap<string, Table> = new Map([
    ['disable', postOnly(async (req, res, id) => committedUser(req, res, await admin.disable(id!)))],
    ['enable', postOnly(async (_req, res, id) => json(res, 200, userJson(await admin.enable(id!))))],
    ['logout', postOnly(async (req, res, id) => committedUser(req, res, await admin.logout(id!)))],
    ['password', postOnly(setPassword)],
  ]);
  const keys: Table = new Map<string, Handler>([
    [
      'GET',
      async (req, res) => {
        const query = parsePageQuery(new URL(req.url ?? '/', 'http://admin').searchParams, []);
        const page = await listApiKeys(req, JSON.stringify(query));
        json(res, 200, { api_keys: page.apiKeys.map(apiKeyJson), next_cursor: page.nextCursor });
      },
    ],
    ['POST', createApiKey],
  ]);
  const key: Table = new Map<string, Handler>([
    [
      'DELETE',
      async (req, res, id) => {
        const propagation = await admin.revokeApiKey(id!);
        committed(req, res, propagation, propagation.state === 'done' ? undefined : { id: propagation.targetId });
      },
    ],
  ]);

  return async (req: IncomingMessage, res: ServerResponse, path: string): Promise<boolean> => {
    const parts = path.split('/').slice(2); // "", "admin", ...
    let table: Table | undefined;
    let method = req.method ?? 'GET';
    let id: string | undefined;
    if (parts[0] === 'users') {
      if (parts.length === 1) table = users;
      else if (parts.length === 2 && parts[1]) [table, id] = [user, parts[1]];
      else if (parts.length === 3 && parts[1] && parts[2]) [table, id] = [actions.get(parts[2]), parts[1]];
    } else if (parts[0] === 'api-keys') {
      if (parts.length === 1) table = keys;
      else if (parts.length === 2 && parts[1]) [table, id] = [key, parts[1]];
    }
    if (table === undefined) return false;
    if (method === 'HEAD' && table.has('GET')) method = 'GET';
    const handler = table.get(method);
    try {
      if (!handler) {
        leaveBody(req, res);
        throw new GatewayError('METHOD_NOT_ALLOWED', { headers: { allow: [...table.keys()].join(', ') } });
      }
      // A handler that takes no body answers without reading one: an upload on it is not read on after the answer.
      if (!readsBody.has(handler)) leaveBody(req, res);
      await handler(req, res, id === undefined ? undefined : safeDecode(id));
    } catch (err) {
      // Its client left while it waited its turn: no one to answer, nothing went wrong.
      if (err instanceof ReadAbandonedError) {
        res.destroy();
        return true;
      }
      leaveBody(req, res);
      const error = toAdminError(err);
      // One id for the answer and its log line, so an operator can find the line a 5xx's request_id names.
      const requestId = randomUUID();
      if (error.status >= 500) {
        logger.error(
          { method, path: pathTemplate(path), status: error.status, code: error.publicCode, request_id: requestId, cause: describeCause(err) },
          EVENTS.adminError,
        );
      }
      sendAdminError(res, error, requestId);
    }
    return true;
  };
}

/**
 * Whether the client of `req` can still be answered: node ends the socket's writing side when the client closes its
 * own (the admin server does not allow half-open connections), and destroys it on a reset.
 */
function clientWaits(req: IncomingMessage): boolean {
  return req.socket.writable && !req.socket.destroyed;
}

/** The requests waiting on each shared listing (by its key), so a shared read runs only while one of them is there. */
class Listers {
  readonly #byKey = new Map<string, Set<IncomingMessage>>();

  async during<T>(req: IncomingMessage, key: string, work: () => Promise<T>): Promise<T> {
    let set = this.#byKey.get(key);
    if (set === undefined) this.#byKey.set(key, (set = new Set()));
    set.add(req);
    try {
      return await work();
    } finally {
      set.delete(req);
      if (set.size === 0 && this.#byKey.get(key) === set) this.#byKey.delete(key);
    }
  }

  anyWaiting(key: string): boolean {
    for (const req of this.#byKey.get(key) ?? []) if (clientWaits(req)) return true;
    return false;
  }
}

/** A page's place in a listing (GET /admin/users, GET /admin/api-keys): `cursor` and `limit`, as both take them. */
interface PageQuery {
  cursor?: string;
  limit?: number;
}

/** GET /admin/users's query, as IdentityAdmin.listUsers takes it. */
interface ListQuery extends PageQuery {
  email?: string;
}

/** `cursor` and `limit` by one rule for every listing; their problems are added to `issues`, and thrown when any. */
function parsePageQuery(params: URLSearchParams, issues: { field: string; message: string }[]): PageQuery {
  const limitText = params.get('limit');
  let limit: number | undefined;
  if (limitText !== null) {
    limit = pageLimit(limitText);
    if (limit === undefined) issues.push({ field: 'limit', message: `must be an integer from 1 to ${MAX_PAGE_SIZE}` });
  }
  const cursor = params.get('cursor') ?? undefined;
  if (cursor !== undefined && cursor.length > 512) issues.push({ field: 'cursor', message: 'is not a cursor from this API' });
  if (issues.length > 0) throw new GatewayError('BAD_REQUEST', { details: issues });
  return { ...(cursor ? { cursor } : {}), ...(limit === undefined ? {} : { limit }) };
}

function parseListQuery(params: URLSearchParams): ListQuery {
  const issues: { field: string; message: string }[] = [];
  const email = params.get('email') ?? undefined;
  const problem = email === undefined ? undefined : emailFilterProblem(email);
  if (problem !== undefined) issues.push({ field: 'email', message: problem });
  // The email's problems first, then the page's, in one 400, as before the page parameters were shared.
  const page = parsePageQuery(params, issues);
  return { ...(email ? { email } : {}), ...page };
}


/**
 * The path as logged: its id segment (an id, or the email the API accepts in its place) as `{id}`, so that no log
 * line carries an email (the audit lines' rule): `/admin/users/{id}/disable`.
 */
function pathTemplate(path: string): string {
  const parts = path.split('/');
  if (parts.length >= 4 && parts[3] !== '') parts[3] = '{id}';
  return parts.join('/');
}

function pathOf(req: IncomingMessage): string {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

function noContent(res: ServerResponse): void {
  res.writeHead(204, { 'cache-control': 'no-store' });
  res.end();
}

/** Anything an admin handler throws, as the error the operator sees; nothing from a driver leaks. */
export function toAdminError(err: unknown): GatewayError {
  if (err instanceof StoreUnavailableError) return new GatewayError('STORE_UNAVAILABLE', { cause: err, headers: RETRY_AFTER });
  if (err instanceof KvUnavailableError) return new GatewayError('KV_UNAVAILABLE', { cause: err, headers: RETRY_AFTER });
  if (err instanceof InvalidCursorError) {
    return new GatewayError('BAD_REQUEST', { details: [{ field: 'cursor', message: 'is not a cursor from this API' }] });
  }
  // Create and set-password hash: a full argon2 queue is the auth API's answer, not a 500.
  if (err instanceof HasherBusyError) {
    return new GatewayError('PASSWORD_HASHER_BUSY', { headers: { 'retry-after': String(HASHER_BUSY_RETRY_AFTER_SECONDS) } });
  }
  return toGatewayError(err);
}
