// zod, set up once for the whole gateway: modules import it from here (`import * as z from '../zod.js'`), so the
// setting below is in place before any of their schemas is built (zod reads it when a schema is made).
//
// jitless: on an object schema's first parse, zod compiles a parser for it with `new Function`. That pays off for
// a schema parsed many times; ours parse a config once per start or reload and a login body at the rate argon2
// allows, so the compiling is all cost: start-up time, and generated code an idle gateway keeps.
import { config } from 'zod';

config({ jitless: true });

export * from 'zod';
