// `database.url` as the PostgreSQL driver reads it (pg 8 through pg-connection-string 2): its query parameters and
// percent-escapes. The schema took any URL the WHATWG parser takes, and the driver then read some values otherwise
// than they say, or threw at start-up: check-config said ok, and start stopped (or connected otherwise than written).
// Members: `sslmode=bogus` (any value the driver does not know means a verified TLS connection: against a server
// without TLS, start failed with "user store unavailable"), `ssl=false` (any value but 0 turns TLS on),
// `sslnegotiation=x` (a TypeError at start), `port=abc` in the query (the query's port wins: NaN), a database name
// ending in a lone `%` (URIError at start), `uselibpqcompat=true&sslmode=verify-ca` without `sslrootcert` (a
// multi-line "SECURITY WARNING" error at start). Pure: the files the URL names are read by postgres-files.ts.
// No message repeats the URL or a value of it (it may hold a password): the parameter is named.

/** The values of the parameters the driver reads, the last of each name (as pg-connection-string keeps it). */
export interface PostgresUrlParameters {
  readonly url: URL;
  readonly params: ReadonlyMap<string, string>;
}

/**
 * The URL as pg-connection-string parses it: a string with a space or a malformed percent-escape is first passed
 * through encodeURI (so `%zz` is a literal), and a URL with no host (`user@/db`) gets a placeholder host. Undefined
 * when it does not parse at all.
 */
export function parsePostgresUrl(value: string): PostgresUrlParameters | undefined {
  let text = value;
  if (/ |%[^a-f0-9]|%[a-f0-9][^a-f0-9]/i.test(text)) text = encodeURI(text).replace(/%25(\d\d)/g, '%$1');
  let url: URL;
  try {
    url = new URL(text, 'postgres://base');
  } catch {
    try {
      url = new URL(text.replace('@/', '@___DUMMY___/'), 'postgres://base');
    } catch {
      return undefined;
    }
  }
  return { url, params: new Map(url.searchParams.entries()) };
}

/**
 * Without uselibpqcompat the driver reads prefer, require and verify-ca as verify-full (with a deprecation warning),
 * and allow, which it does not name, the same way: a verified TLS connection, never libpq's cleartext first. allow
 * is taken as prefer is (it served before this check, against a server whose certificate the machine trusts).
 */
const SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full', 'no-verify'];
/** With uselibpqcompat=true the driver knows libpq's modes; no-verify is not one (it would mean verify-full). */
const LIBPQ_SSL_MODES = ['disable', 'prefer', 'require', 'verify-ca', 'verify-full'];

/** Why the driver would read `value` otherwise than it says, or fail on it at start-up; undefined when it is fine. */
export function postgresUrlProblem(value: string): string | undefined {
  const parsed = parsePostgresUrl(value);
  if (parsed === undefined) return 'is not a URL the PostgreSQL driver can parse';
  const { url, params } = parsed;
  // A `#` cuts the URL there: an unescaped one in a password (`p#ss@host`) made the driver read the part before it
  // as the host and send the rest of the password to that host, and check-config said ok.
  if (url.hash !== '' || value.includes('#')) return 'has a "#", which ends a URL: a # (or @, /, ?) in the user or password must be percent-escaped (# as %23, @ as %40)';
  // The driver decodes these at start-up (decodeURIComponent, decodeURI): a malformed escape threw a bare URIError.
  try {
    // A user or password given as a parameter takes the URL's place, which is then never decoded.
    if (!params.get('user')) decodeURIComponent(url.username);
    if (!params.get('password')) decodeURIComponent(url.password);
    decodeURI(url.pathname.slice(1));
    if (!params.get('host')) decodeURIComponent(url.hostname);
  } catch {
    return 'has a malformed percent-escape in its user, password, host or database name (write a literal % as %25)';
  }
  const get = (name: string): string => params.get(name) ?? '';
  const compat = get('uselibpqcompat') === 'true';
  const sslmode = get('sslmode');
  if (sslmode !== '') {
    const known = compat ? LIBPQ_SSL_MODES : SSL_MODES;
    if (!known.includes(sslmode)) {
      const extra = compat && SSL_MODES.includes(sslmode) ? ' with uselibpqcompat=true' : '';
      const advised = known.filter((mode) => mode !== 'allow');
      return `sslmode is not one the PostgreSQL driver knows${extra}: it would require a verified TLS connection (write ${advised.join(', ')})`;
    }
    if (compat && sslmode === 'verify-ca' && get('sslrootcert') === '') {
      return 'sslmode "verify-ca" with uselibpqcompat=true needs sslrootcert (the CA the server\'s certificate is checked against)';
    }
  }
  // ssl= counts only when no sslmode and no certificate file is named (they set TLS options of their own).
  const sslFromFiles = sslmode !== '' || get('sslcert') !== '' || get('sslkey') !== '' || get('sslrootcert') !== '';
  const ssl = get('ssl');
  if (!sslFromFiles && ssl !== '' && !['true', '1', '0', 'no-verify'].includes(ssl)) {
    return 'ssl other than true, 1, 0 or no-verify turns TLS on in the PostgreSQL driver (ssl=false too: write ssl=0 or sslmode=disable for none)';
  }
  if ((get('sslcert') === '') !== (get('sslkey') === '')) {
    return 'sslcert and sslkey must be set together (the client certificate and its key)';
  }
  const negotiation = get('sslnegotiation');
  if (negotiation !== '') {
    if (negotiation !== 'postgres' && negotiation !== 'direct') return 'sslnegotiation must be postgres or direct';
    const tlsOff = sslmode === 'disable' || (!sslFromFiles && ssl === '0');
    if (negotiation === 'direct' && tlsOff) return 'sslnegotiation "direct" needs TLS, which sslmode=disable (or ssl=0) turns off';
  }
  // The query's port takes the place of the URL's; the driver reads it with parseInt.
  const port = get('port') || url.port;
  if (port !== '') {
    const n = Number.parseInt(port, 10);
    if (!(n >= 1 && n <= 65535)) return 'port is not a port number (1-65535)';
  }
  return undefined;
}
