// How the gateway runs its zod schemas. A module of its own so the config loader and the auth API share it.
import type * as z from 'zod';

/**
 * Parse options for every schema of ours. jitless: zod otherwise compiles a parser per object schema with
 * `new Function` on its first parse, which pays off for a schema parsed many times. Ours parse a config once per
 * start or reload and request bodies at the rate argon2 allows, so compiling would be all cost: start-up time, and
 * generated code an idle gateway keeps. Passed per parse, not set with zod's config(): that setting is global to
 * every copy of zod in the process, an embedding application's included.
 */
export const PARSE_OPTIONS: z.core.ParseContext<z.core.$ZodIssue> = { jitless: true };
