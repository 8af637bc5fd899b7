// The users and api-keys commands' usage lines, apart from their code: `portcullis --help` and `start` must not load
// what those commands need (the stores, jose, node-redis).

export const USERS_HELP = `  users list [--email PREFIX] [--limit N] [--cursor C]
  users show EMAIL|ID
  users create EMAIL                  password read from stdin
  users disable|enable EMAIL|ID
  users logout EMAIL|ID               revokes every session and access token
  users delete EMAIL|ID
  users set-password EMAIL|ID         password read from stdin (never from the command line)
`;

export const API_KEYS_HELP = `  api-keys create NAME [--expires-in 90d]   prints the key once
  api-keys list [--limit N] [--cursor C]    newest first, 100 a page unless --limit says
  api-keys revoke ID
`;
