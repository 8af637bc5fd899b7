// What a store failure may say in a log line: the error's class and its code, never its message (node-redis and
// node:net put the host, the port and the server's own words there; a URL can carry the password).

/** A Redis error reply's code: the leading upper-case word (WRONGPASS, NOAUTH, CLUSTERDOWN, LOADING, READONLY...). */
const REPLY_CODE = /^[A-Z][A-Z_]{1,31}(?= |$)/;

/** True when `err` is (a subclass of) node-redis's ErrorReply, found by name so this module imports no client. */
export function isErrorReply(err: Error): boolean {
  for (let proto: unknown = Object.getPrototypeOf(err); proto !== null && proto !== Error.prototype; proto = Object.getPrototypeOf(proto)) {
    if ((proto as { constructor?: { name?: unknown } }).constructor?.name === 'ErrorReply') return true;
  }
  return false;
}

/** The error's own code: node's `code` (ECONNREFUSED, ETIMEDOUT...), or a Redis reply's leading word. */
function codeOf(err: Error): string | undefined {
  const code = (err as Error & { code?: unknown }).code;
  if (typeof code === 'string') return code;
  if (isErrorReply(err)) return REPLY_CODE.exec(err.message)?.[0];
  // A connect to a name with several addresses fails with one error per address; they share the reason.
  if (err instanceof AggregateError && err.errors[0] instanceof Error) return codeOf(err.errors[0]);
  return undefined;
}

/**
 * The server's refusal of the SELECT node-redis sends at each connect for `redis.url`'s `/N`: a database at or past
 * its `databases` setting (16 by default), or a server that has only database 0 (a cluster node, some proxies). Its
 * code is the bare ERR of any error, so the line said `SimpleError(ERR)` on every connect and every refused request;
 * it is told apart by Redis's (and Valkey's) fixed text, and logged in our own words, never the server's.
 */
const SELECT_REFUSED = /^ERR (?:DB index is out of range|invalid DB index|SELECT is not allowed)/;

/** A sentinel's answer for a master name it does not monitor (`redis.sentinel.name` wrong, or another setup's). */
const UNKNOWN_MASTER = /^ERR No such master with that name/;

/**
 * "Class(CODE)" or "Class": the class by constructor (node-redis's errors keep `name` "Error", so ClientOfflineError
 * and a refused connection both said "Error"). An error without a code of its own that wraps one (node-redis's
 * Sentinel client wraps node errors in a plain Error whose message names the node) is described by its cause.
 */
export function describeKvError(err: unknown, depth = 0): string | undefined {
  if (err === undefined || err === null) return undefined;
  if (!(err instanceof Error)) return typeof err;
  if (isErrorReply(err) && SELECT_REFUSED.test(err.message)) return 'SelectRefused';
  if (isErrorReply(err) && UNKNOWN_MASTER.test(err.message)) return 'SentinelUnknownMaster';
  const code = codeOf(err);
  if (code === undefined && err.cause instanceof Error && depth < 3) return describeKvError(err.cause, depth + 1);
  const constructorName = (err.constructor as { name?: unknown } | undefined)?.name;
  const name = typeof constructorName === 'string' && constructorName !== '' && constructorName !== 'Error' ? constructorName : err.name;
  return code === undefined ? name : `${name}(${code})`;
}
