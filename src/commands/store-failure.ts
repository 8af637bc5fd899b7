// How the command line words a store failure: the driver's error code and what it usually means, never the driver's
// message (SQL, a connection string with its password), a URL or a class name. The admin API's log line carries the
// same code (describeCause); an operator at a shell gets it on stderr instead of "user store unavailable" alone.
import { KvUnavailableError } from '../kv/kv-store.js';
import { StoreNotReadyError, StoreUnavailableError } from '../store/user-store.js';

/** What a driver code usually means, for the codes an operator meets; any other code is printed alone. */
const MEANINGS: Readonly<Record<string, string>> = {
  SQLITE_BUSY: 'the database file is locked by another process',
  SQLITE_LOCKED: 'the database file is locked',
  SQLITE_READONLY: 'the database file or its directory is read-only',
  SQLITE_CANTOPEN: 'the database file cannot be opened',
  SQLITE_NOTADB: 'the file is not a SQLite database',
  SQLITE_CORRUPT: 'the database file is corrupt',
  SQLITE_FULL: 'the disk is full',
  SQLITE_IOERR: 'an I/O error',
  EACCES: 'permission denied',
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
  ETIMEDOUT: 'connection timed out',
  EHOSTUNREACH: 'host unreachable',
  '28P01': 'password authentication failed',
  '28000': 'authentication refused',
  '3D000': 'the database does not exist',
  '57P03': 'the server is starting up or shutting down',
  '53300': 'too many connections',
  TIMEOUT: 'no answer in time',
  SERVER_NO_TLS: 'the server does not take TLS connections, which sslmode in database.url asks for',
};

/**
 * Driver errors that carry no code, by their fixed message (never printed: the line gives the code named here). The
 * driver's refusal of a server without TLS was "no error code from the driver", which told the operator nothing.
 */
const CODELESS: ReadonlyMap<string, string> = new Map([['The server does not support SSL connections', 'SERVER_NO_TLS']]);

/**
 * The one line for a store failure (without the "portcullis: " prefix), or undefined when `err` is not one.
 * StoreNotReadyError's own message says where and what to run; the others get their driver code.
 */
export function storeFailureLine(err: unknown): string | undefined {
  if (err instanceof StoreNotReadyError) return err.message;
  const what = err instanceof StoreUnavailableError ? 'user store unavailable' : err instanceof KvUnavailableError ? 'Redis unavailable' : undefined;
  if (what === undefined) return undefined;
  const code = driverCode((err as Error).cause);
  if (code === undefined) return `${what} (no error code from the driver)`;
  const meaning = MEANINGS[code] ?? MEANINGS[code.replace(/_[A-Z]+$/, '')];
  return `${what}: ${code}${meaning ? ` (${meaning})` : ''}`;
}

/**
 * The first error code along the cause chain (a SQLite SQLITE_*, a PostgreSQL SQLSTATE, a Node errno name); an
 * AggregateError (a host with several addresses) gives its first error's. Only a code's characters are kept.
 */
export function driverCode(err: unknown, depth = 0): string | undefined {
  if (depth > 5 || err === null || typeof err !== 'object') return undefined;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && /^[A-Za-z0-9_]{1,40}$/.test(code)) return code;
  const named = CODELESS.get(String((err as { message?: unknown }).message));
  if (named !== undefined) return named;
  const errors = (err as { errors?: unknown }).errors;
  if (Array.isArray(errors) && errors.length > 0) return driverCode(errors[0], depth + 1);
  return driverCode((err as { cause?: unknown }).cause, depth + 1);
}
