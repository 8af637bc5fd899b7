// The `portcullis` command: argv → action → exit code. No business logic lives here.
import { parseArgs } from 'node:util';
import cluster from 'node:cluster';
import { packageVersion } from './package-version.js';
import { resolve } from 'node:path';
import { loadDotEnv } from './config/env.js';
import { loadConfigFile, resolveConfigPath, resolveDataDir } from './config/load.js';
import { API_KEYS_HELP, USERS_HELP } from './commands/help.js';
import { CommandUsageError } from './commands/usage.js';
import { failureLine } from './commands/failure-line.js';
import { shownArgument } from './commands/output.js';
import { shownOnTerminal } from './terminal-text.js';
import { withoutKeySecrets } from './identity/api-key-format.js';
import { checkConfig, exitWithVerdict } from './commands/check-config.js';
import { endStartupMode } from './startup-mode.js';
import { takeEarlySignals } from './early-signals.js';

const DEMO_CONFIG_PATH = 'config/demo.yaml';

const HELP = `Usage: portcullis <command> [--config FILE]

Commands:
  start          run the gateway (default)
  check-config   validate the configuration (each plugin instance created, then closed) and exit
  migrate        apply database migrations and exit
  schema         print the config file's JSON Schema (draft 2020-12; config/portcullis.schema.json)
  demo           start three demo backends (ports 3000-3002) and the gateway (config/demo.yaml: auth off)
  demo-backends  start only the three demo backends (host from DEMO_HOST, default 127.0.0.1)
  routes         print the route table in match order (--json for JSON)
                 --match "GET https://api.example.com/users/1" [-H "name: value"]: which route wins, why, and
                 what the upstream receives
${USERS_HELP}${API_KEYS_HELP}
Options:
  -c, --config FILE   configuration file (default: $PORTCULLIS_CONFIG or config/proxy.yaml)
      --json          routes, users, api-keys: print JSON
  -h, --help          show this help
  -v, --version       print the version
`;

/** Runs the command line; resolves to the process exit code (start resolves only when the gateway stops). */
export async function main(argv: readonly string[]): Promise<number> {
  // A command's reader may leave before it is done (`portcullis routes --json | head -1`, a pager quit): what is left
  // of the output has nowhere to go, and the command ends with its own exit code (an action done is still done).
  // Unhandled, the EPIPE threw a stack trace at the operator and exit 1. From here: --help and usage write too.
  if (!process.stdout.listeners('error').includes(ignoreEpipe)) process.stdout.on('error', ignoreEpipe);
  // .env first: it may name the config file and the data dir. Not in a multi-worker gateway's worker: it starts from
  // the environment its primary accepted, .env included (cluster-config.ts), where the primary migrated the store
  // (primary-migration.ts); reading the file now set what that lacks, so a PORTCULLIS_DATA_DIR line added since made a
  // restarted worker create and serve another, empty store beside its siblings.
  if (!cluster.isWorker) loadDotEnv(resolve('.env'));
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      tokens: true,
      options: {
        config: { type: 'string', short: 'c' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
        json: { type: 'boolean' },
        match: { type: 'string' },
        header: { type: 'string', short: 'H', multiple: true },
        email: { type: 'string' },
        cursor: { type: 'string' },
        limit: { type: 'string' },
        'expires-in': { type: 'string' },
      },
    });
  } catch (err) {
    return usage((err as Error).message);
  }
  const { values, positionals, tokens } = parsed;
  // parseArgs keeps the last of a repeated single-valued option: `--config a.yaml --config b.yaml` started on b.yaml,
  // `users list --email a --email b` listed b's, without a word. Which one the operator meant is theirs to say.
  const repeated = repeatedSingleOption(tokens);
  if (repeated !== undefined) return usage(`--${repeated} is given more than once`);
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (values.version) {
    process.stdout.write(`${packageVersion()}\n`);
    return 0;
  }
  const command = positionals[0] ?? 'start';
  // Not for a gateway: its log is its own.
  if (command === 'start' || command === 'demo') process.stdout.off('error', ignoreEpipe);
  // What each command other than users/api-keys (they check their own, below) reads. Anything else was ignored:
  // `migrate --match x` applied migrations, `check-config extra.yaml` checked config/proxy.yaml and said ok, exit 0.
  const ownOptions = PLAIN_COMMAND_OPTIONS[command];
  if (ownOptions !== undefined) {
    const foreign = Object.keys(values).find((name) => values[name as keyof typeof values] !== undefined && !ownOptions.includes(name));
    if (foreign !== undefined) return usage(`${command} takes no --${foreign} option`);
    if (positionals.length > 1) return usage(`${command} takes no argument (${JSON.stringify(shownArgument(positionals[1]!))})`);
    if (command === 'routes' && values.header !== undefined && values.match === undefined) return usage('routes takes -H only with --match');
  }
  // bin/portcullis.js started the process in start-up mode, listening for SIGHUP and SIGUSR1; only a gateway keeps
  // them, until it listens (the mode) or listens itself (the signals: early-signals.ts).
  if (command !== 'start' && command !== 'demo') {
    endStartupMode({ compact: false });
    takeEarlySignals();
  }
  // The demo has its own config (auth off) unless one is named.
  const configPath = resolveConfigPath(values.config ?? (command === 'demo' ? process.env.PORTCULLIS_CONFIG || DEMO_CONFIG_PATH : undefined));
  /** check-config passed (every error main() prints for it means exit 1). */
  let configOk = false;
  try {
    switch (command) {
      case 'check-config': {
        // Everything start-up refuses for a reason in the files (not for a server it cannot reach), with its message.
        await checkConfig(configPath, resolveDataDir());
        process.stdout.write(`config ok: ${shownOnTerminal(configPath)}\n`);
        configOk = true;
        return 0;
      }
      case 'schema': {
        const { configJsonSchemaText } = await import('./config/json-schema.js');
        process.stdout.write(configJsonSchemaText());
        return 0;
      }
      case 'start': {
        const { runGateway } = await import('./run-gateway.js');
        return await runGateway(configPath, resolveDataDir());
      }
      case 'routes': {
        const config = loadConfigFile(configPath);
        const routes = await import('./commands/routes.js');
        if (values.match !== undefined) {
          const report = routes.matchReport(config, values.match, values.header ?? []);
          process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : routes.formatMatch(report));
          return report.route === null ? 3 : 0;
        }
        const rows = routes.routeRows(config);
        process.stdout.write(values.json ? `${JSON.stringify(rows, null, 2)}\n` : routes.formatRows(rows));
        return 0;
      }
      case 'migrate': {
        const { runMigrations } = await import('./run-gateway.js');
        return await runMigrations(loadConfigFile(configPath), resolveDataDir());
      }
      case 'demo': {
        const { runDemo } = await import('./demo.js');
        return await runDemo(configPath, resolveDataDir());
      }
      case 'demo-backends': {
        const { runDemoBackends } = await import('./demo.js');
        return await runDemoBackends(process.env.DEMO_HOST ?? '127.0.0.1');
      }
      case 'users': {
        refuseForeignOptions(values, command, ['email', 'cursor', 'limit']);
        const { runUsers } = await import('./commands/users.js');
        const { json = false, email, cursor, limit } = values;
        return await runUsers(positionals.slice(1), { json, email, cursor, limit }, () => loadConfigFile(configPath), resolveDataDir());
      }
      case 'api-keys': {
        refuseForeignOptions(values, command, ['expires-in', 'cursor', 'limit']);
        const { runApiKeys } = await import('./commands/api-keys.js');
        const options = { json: values.json ?? false, expiresIn: values['expires-in'], cursor: values.cursor, limit: values.limit };
        return await runApiKeys(positionals.slice(1), options, () => loadConfigFile(configPath), resolveDataDir());
      }
      default:
        return usage(`unknown command "${command}"`);
    }
  } catch (err) {
    if (err instanceof CommandUsageError) return usage(err.message);
    process.stderr.write(failureLine(err));
    return 1;
  } finally {
    // Its verdict is printed by now (above, or by the catch): check-config ends the process with it, whatever the
    // plugins it ran left open (a create() past its bound still waiting on a timer; commands/check-config.ts).
    if (command === 'check-config') exitWithVerdict(configOk ? 0 : 1);
  }
}

/** Drops writes to a stdout whose reader has gone (EPIPE); any other stdout error is thrown as before. */
function ignoreEpipe(err: NodeJS.ErrnoException): void {
  if (err.code !== 'EPIPE') throw err;
}

/** The options of the commands that take no arguments of their own (help and version are answered before). */
const PLAIN_COMMAND_OPTIONS: Readonly<Record<string, readonly string[]>> = {
  start: ['config'],
  'check-config': ['config'],
  migrate: ['config'],
  demo: ['config'],
  'demo-backends': [],
  schema: [],
  routes: ['config', 'json', 'match', 'header'],
};

/**
 * Bad usage (an unknown command or option, an option or argument a command does not read): the reason and the help on
 * stderr, exit 2. The reason quotes what was typed (node's parseArgs quotes an unknown option too): shown escaped.
 */
/** The first option taking a value (not -H, which may repeat) named twice, however spelled (`-c a --config b`). */
function repeatedSingleOption(tokens: readonly { kind: string; name?: string; value?: string }[]): string | undefined {
  const seen = new Set<string>();
  for (const token of tokens) {
    if (token.kind !== 'option' || token.name === undefined || token.value === undefined || token.name === 'header') continue;
    if (seen.has(token.name)) return token.name;
    seen.add(token.name);
  }
  return undefined;
}

function usage(message: string): number {
  process.stderr.write(`portcullis: ${shownOnTerminal(withoutKeySecrets(message))}\n${HELP}`);
  return 2;
}

/** The options every command takes (help and version have been answered before any command runs). */
const COMMON_OPTIONS: readonly string[] = ['config', 'json'];

/**
 * Refuses an option the command never reads: it was ignored, so `api-keys list --email ops@` printed every key and
 * `users list --expires-in 7d` looked like a filter that worked, both exit 0. `users list alice@` is refused alike.
 */
function refuseForeignOptions(values: Record<string, unknown>, command: string, own: readonly string[]): void {
  const foreign = Object.keys(values).find((name) => values[name] !== undefined && !COMMON_OPTIONS.includes(name) && !own.includes(name));
  if (foreign !== undefined) throw new CommandUsageError(`${command} takes no --${foreign} option`);
}
