// `portcullis users list|show|create|disable|enable|logout|delete|set-password`: the admin API's user verbs, run
// straight against the configured store by an operator with shell access.
import type { Config } from '../config/schema.js';
import { MAX_PAGE_SIZE, emailFilterProblem, emailPrefix, pageLimit, userJson, type Committed } from '../identity/admin-service.js';
import { shownOnTerminal } from '../terminal-text.js';
import { InvalidCursorError } from '../store/identity-types.js';
import type { UserSummary } from '../store/identity-types.js';
import { openCommandContext } from './context.js';
import { reportPropagation } from './pending.js';
import { cellDate, namingNotFound, printJson, printTable } from './output.js';
import { EXIT_INTERRUPTED, PromptInterruptedError, readSecret } from './stdin.js';
import { CommandUsageError } from './usage.js';

/** Options the users commands read (parsed by cli.ts). */
export interface UsersOptions {
  readonly json: boolean;
  readonly email?: string;
  readonly cursor?: string;
  readonly limit?: string;
}

const SINGLE = new Set(['show', 'disable', 'enable', 'logout', 'delete', 'set-password', 'create']);
/** The verbs that revoke credentials, so write to Redis; the others never connect to it. */
const REVOKING = new Set(['disable', 'logout', 'delete', 'set-password']);

/**
 * Runs one users command; resolves to the exit code. Throws CommandUsageError for bad arguments, which are judged
 * before the config is read (`config` is called once they pass): bad usage is exit 2 whatever the config says, as
 * for every other command, not the config error of a checkout without one.
 */
export async function runUsers(args: readonly string[], options: UsersOptions, config: Config | (() => Config), dataDir: string): Promise<number> {
  const [verb, target, ...extra] = args;
  if (verb === undefined || (verb !== 'list' && !SINGLE.has(verb))) throw new CommandUsageError(`unknown users command "${verb ?? ''}"`);
  if (verb !== 'list' && (target === undefined || extra.length > 0)) throw new CommandUsageError(`users ${verb} takes one EMAIL or ID`);
  // `users list alice@` must not print every user as if it were a filter: the prefix is --email's.
  if (verb === 'list' && target !== undefined) throw new CommandUsageError('users list takes no argument (filter with --email PREFIX)');
  // The list options on another verb were ignored: `users delete x --email y` acted on x, and said nothing.
  const listOption = (['email', 'cursor', 'limit'] as const).find((name) => options[name] !== undefined);
  if (verb !== 'list' && listOption !== undefined) throw new CommandUsageError(`users ${verb} takes no --${listOption} option`);
  // The admin API's rule for ?limit=, so a value one refuses the other refuses too.
  const limit = options.limit === undefined ? undefined : pageLimit(options.limit);
  if (options.limit !== undefined && limit === undefined) throw new CommandUsageError(`--limit must be an integer from 1 to ${MAX_PAGE_SIZE}`);
  // The admin API's rule for ?email= (its 400), so a filter one refuses the other refuses too.
  const emailProblem = options.email === undefined ? undefined : emailFilterProblem(options.email);
  if (emailProblem !== undefined) throw new CommandUsageError(`--email ${emailProblem}`);
  const loaded = typeof config === 'function' ? config() : config;
  // Read the secret before opening anything, so a closed stdin fails fast and nothing is half done.
  let password: string | undefined;
  try {
    password = verb === 'set-password' || verb === 'create' ? await readSecret('New password: ') : undefined;
  } catch (err) {
    // Ctrl-C at the prompt: stopped, nothing done, nothing to report (the prompt's line is ended already).
    if (err instanceof PromptInterruptedError) return EXIT_INTERRUPTED;
    throw err;
  }
  const ctx = await openCommandContext(loaded, dataDir, { revokes: REVOKING.has(verb) });
  try {
    const admin = ctx.admin;
    switch (verb) {
      case 'list': {
        const page = await admin
          .listUsers({
            ...(options.email ? { email: options.email } : {}),
            ...(options.cursor ? { cursor: options.cursor } : {}),
            ...(limit === undefined ? {} : { limit }),
          })
          .catch((err: unknown) => {
            // Bad usage, as the admin API's 400: only a cursor `users list` printed can be given back.
            if (err instanceof InvalidCursorError) throw new CommandUsageError('--cursor is not one that "users list" printed');
            throw err;
          });
        if (options.json) printJson({ users: page.users.map(userJson), next_cursor: page.nextCursor });
        else {
          printUsers(page.users);
          // The prefix filtered on, not the filter as typed: its whitespace controls (trimmed, so they still matched)
          // were printed raw, a carriage return overwriting the line. Escaped as well, should anything else remain.
          const filter = options.email === undefined ? undefined : emailPrefix(options.email);
          if (page.nextCursor) process.stdout.write(`more: ${shownOnTerminal(nextPageOptions(page.nextCursor, filter, limit))}\n`);
        }
        return 0;
      }
      case 'delete': {
        const propagation = await admin.deleteUser(target!);
        const pending = propagation.state === 'pending';
        // The id too, as the admin API's 202 body has it (`{user_id, revocation}`): the target of a retry.
        if (options.json) printJson({ deleted: true, user_id: propagation.targetId, ...(pending ? { revocation: 'pending' } : {}) });
        else process.stdout.write(pending ? 'user deleted; its sessions are revoked\n' : 'user deleted; its sessions and access tokens are revoked\n');
        return reportPropagation(propagation, `user ${propagation.targetId} is deleted`, `users delete ${propagation.targetId}`);
      }
      case 'create':
        return show(await admin.createUser({ email: target, password }), options);
      case 'set-password':
        // A retry sets the same password again, from stdin again: nothing is asked that was not asked the first time.
        return showCommitted(await admin.setPassword(target!, { password }), options, 'set-password');
      case 'show':
        return show(await admin.getUser(target!), options);
      case 'disable':
        return showCommitted(await admin.disable(target!), options, 'disable');
      case 'enable':
        return show(await admin.enable(target!), options);
      default:
        return showCommitted(await admin.logout(target!), options, 'logout');
    }
  } catch (err) {
    // "Not Found" alone did not say what was missing: the user, named as typed (an id or an email).
    throw verb === 'list' ? err : namingNotFound(err, 'user', target!);
  } finally {
    await ctx.close();
  }
}

/**
 * The options that list the next page: the filter and page size again, since a cursor holds neither. `more: --cursor C`
 * alone, run as printed after `--email ops@`, listed every user older than the page, matching or not.
 */
function nextPageOptions(cursor: string, email: string | undefined, limit: number | undefined): string {
  return [...(email ? ['--email', shellWord(email)] : []), ...(limit === undefined ? [] : ['--limit', String(limit)]), '--cursor', cursor].join(' ');
}

/** `text` as one shell word: as it is when it holds nothing a shell reads specially, else single-quoted. */
function shellWord(text: string): string {
  return /^[A-Za-z0-9@._+%=:,/-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}

function show(user: UserSummary, options: UsersOptions): number {
  if (options.json) printJson(userJson(user));
  else printUsers([user]);
  return 0;
}

/** A revoking action's user, then its exit code: 0, or EXIT_REVOCATION_PENDING with the notice on stderr. */
function showCommitted(result: Committed<UserSummary>, options: UsersOptions, verb: 'disable' | 'logout' | 'set-password'): number {
  const pending = result.propagation.state === 'pending';
  if (options.json) printJson({ ...userJson(result.value), ...(pending ? { revocation: 'pending' } : {}) });
  else printUsers([result.value]);
  const done = verb === 'set-password' ? 'the password is set' : verb === 'disable' ? 'the user is disabled' : 'the user is logged out';
  return reportPropagation(result.propagation, done, `users ${verb} ${result.value.id}`);
}

function printUsers(users: readonly UserSummary[]): void {
  printTable(
    ['USER_ID', 'EMAIL', 'CREATED', 'LAST_LOGIN', 'DISABLED', 'SESSIONS'],
    users.map((u) => {
      const j = userJson(u);
      return [u.id, u.email, cellDate(j.created_at), cellDate(j.last_login_at), u.disabled ? 'yes' : 'no', String(u.activeSessions)];
    }),
  );
}
