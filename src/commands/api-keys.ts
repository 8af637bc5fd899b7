// `portcullis api-keys create NAME | list | revoke ID`: API keys for service-to-service calls, against the store.
import type { Config } from '../config/schema.js';
import { apiKeyJson, MAX_PAGE_SIZE, pageLimit } from '../identity/admin-service.js';
import { InvalidCursorError } from '../store/identity-types.js';
import { shownOnTerminal } from '../terminal-text.js';
import { apiKeyBodySchema } from '../identity/admin-routes.js';
import { parseWith } from '../auth/body.js';
import { GatewayError } from '../errors.js';
import { apiKeyId } from '../identity/api-key-format.js';
import { openCommandContext } from './context.js';
import { reportPropagation } from './pending.js';
import { cellDate, namingNotFound, printJson, printTable } from './output.js';
import { CommandUsageError } from './usage.js';

export interface ApiKeysOptions {
  readonly json: boolean;
  readonly expiresIn?: string;
  /** `list` only: a cursor a previous `list` printed, and the page size (the admin API's `cursor` and `limit`). */
  readonly cursor?: string;
  readonly limit?: string;
}

/** Arguments the admin API's body schema refuses are bad usage (exit 2), as `--limit abc` is; named as typed. */
function parseCreate(name: string, expiresIn: string | undefined): { name: string; expires_in?: number | undefined } {
  try {
    return parseWith(apiKeyBodySchema, { name, ...(expiresIn === undefined ? {} : { expires_in: expiresIn }) });
  } catch (err) {
    if (!(err instanceof GatewayError) || !Array.isArray(err.details)) throw err;
    const OPTION: Record<string, string> = { name: 'NAME', expires_in: '--expires-in' };
    const problems = (err.details as { field: string; message: string }[]).map((d) => `${OPTION[d.field] ?? d.field}: ${d.message}`);
    throw new CommandUsageError(problems.join('; '));
  }
}

/** Runs one api-keys command; resolves to the exit code. Its arguments are judged before `config` is read (see runUsers). */
export async function runApiKeys(args: readonly string[], options: ApiKeysOptions, config: Config | (() => Config), dataDir: string): Promise<number> {
  const [verb, arg, ...extra] = args;
  if (extra.length > 0) throw new CommandUsageError('too many arguments');
  if (verb === 'list' ? arg !== undefined : verb !== 'create' && verb !== 'revoke') {
    throw new CommandUsageError(`unknown api-keys command "${[verb, arg].filter(Boolean).join(' ')}"`);
  }
  if (verb !== 'list' && arg === undefined) throw new CommandUsageError(`api-keys ${verb} takes one argument`);
  // Ignored before: `api-keys revoke ID --expires-in 1d` read as a shortened lifetime, and revoked the key.
  if (verb !== 'create' && options.expiresIn !== undefined) throw new CommandUsageError(`api-keys ${verb} takes no --expires-in option`);
  // The page options on another verb would be ignored, as --expires-in was.
  const listOption = (['cursor', 'limit'] as const).find((name) => options[name] !== undefined);
  if (verb !== 'list' && listOption !== undefined) throw new CommandUsageError(`api-keys ${verb} takes no --${listOption} option`);
  // The admin API's rule for ?limit=, so a value one refuses the other refuses too.
  const limit = options.limit === undefined ? undefined : pageLimit(options.limit);
  if (options.limit !== undefined && limit === undefined) throw new CommandUsageError(`--limit must be an integer from 1 to ${MAX_PAGE_SIZE}`);
  // Validated before anything is opened: the same rules as POST /admin/api-keys.
  const body = verb === 'create' ? parseCreate(arg!, options.expiresIn) : undefined;
  // Only a revocation writes to Redis: list and create never connect to it.
  const ctx = await openCommandContext(typeof config === 'function' ? config() : config, dataDir, { revokes: verb === 'revoke' });
  try {
    if (body !== undefined) {
      const created = await ctx.admin.createApiKey({ name: body.name, ...(body.expires_in === undefined ? {} : { expiresInMs: body.expires_in }) });
      if (options.json) printJson({ ...apiKeyJson(created), key: created.key });
      else process.stdout.write(`id:   ${created.id}\nname: ${created.name}\nkey:  ${created.key}\n(the key is shown only once)\n`);
      return 0;
    }
    if (verb === 'revoke') {
      // The key itself, pasted whole (a leaked key, the one at hand): the key to revoke is that one, named by its id.
      const id = apiKeyId(arg!) ?? arg!;
      // "Not Found" alone did not say what was missing: the key, named as typed (never its secret: shownArgument).
      const propagation = await ctx.admin.revokeApiKey(id).catch((err: unknown) => {
        throw namingNotFound(err, 'api key', id === arg ? arg : `${id} (the id of the key given)`);
      });
      // The id too, as the admin API's 202 body has it (`{id, revocation}`).
      if (options.json) printJson({ revoked: true, id: propagation.targetId, ...(propagation.state === 'pending' ? { revocation: 'pending' } : {}) });
      else process.stdout.write('api key revoked\n');
      return reportPropagation(propagation, `api key ${propagation.targetId} is revoked`, `api-keys revoke ${propagation.targetId}`);
    }
    const page = await ctx.admin
      .listApiKeys({ ...(options.cursor ? { cursor: options.cursor } : {}), ...(limit === undefined ? {} : { limit }) })
      .catch((err: unknown) => {
        // Bad usage, as the admin API's 400: only a cursor `api-keys list` printed can be given back.
        if (err instanceof InvalidCursorError) throw new CommandUsageError('--cursor is not one that "api-keys list" printed');
        throw err;
      });
    const keys = page.apiKeys.map(apiKeyJson);
    if (options.json) printJson({ api_keys: keys, next_cursor: page.nextCursor });
    else {
      printTable(
        ['ID', 'NAME', 'CREATED', 'LAST_USED', 'EXPIRES'],
        keys.map((k) => [String(k.id), String(k.name), cellDate(k.created_at), cellDate(k.last_used_at), cellDate(k.expires_at)]),
      );
      // As `users list` ends its table: the options that list the next page (the page size again: a cursor holds none).
      if (page.nextCursor) {
        const next = [...(limit === undefined ? [] : ['--limit', String(limit)]), '--cursor', page.nextCursor].join(' ');
        process.stdout.write(`more: ${shownOnTerminal(next)}\n`);
      }
    }
    return 0;
  } finally {
    await ctx.close();
  }
}
