// Signing keys for access tokens: the HS256 secret (given, or generated once into the data dir) or PEM key pairs + JWKS.
import { createHash, createPrivateKey, createPublicKey, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import { chmodSync, linkSync, lstatSync, mkdirSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { calculateJwkThumbprint, exportJWK, type JWK } from 'jose';
import type { Logger } from 'pino';
import { ConfigError } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { readRegularFile, UnreadableFile } from '../config/regular-file.js';

/** The name of the generated secret's file inside the data dir. */
export const SECRET_FILE_NAME = 'jwt-secret';
/** RFC 7518 §3.2: an HS256 key must be at least as long as the hash output. */
const MIN_SECRET_BYTES = 32;
/** The most a key or secret file may hold (a PEM key is a few KB): a path naming a device is refused, not read on. */
const MAX_KEY_FILE_BYTES = 1024 * 1024;

export type JwtAlgorithm = Config['jwt']['algorithm'];

/** A published public key: RFC 7517 JWK with the fields verifiers need. */
export type PublicJwk = JWK & { kid: string; alg: JwtAlgorithm; use: 'sig' };

/** The keys in use, loaded once at start-up. */
export interface SigningKeys {
  readonly algorithm: JwtAlgorithm;
  /** Key id put in every token header; the JWK thumbprint for key pairs, undefined for HS256. */
  readonly kid: string | undefined;
  readonly signKey: KeyObject;
  readonly verifyKey: KeyObject;
  /** The JWKS document for /.well-known/jwks.json; undefined with HS256 (a shared secret is never published). */
  readonly jwks: { readonly keys: readonly PublicJwk[] } | undefined;
}

/** What loadSigningKeys needs: the `jwt` config slice, the data dir, and a logger for the generated-secret warning. */
export interface LoadKeysOptions {
  readonly jwt: Pick<Config['jwt'], 'secret' | 'algorithm' | 'private_key_file' | 'public_key_file'>;
  readonly dataDir: string;
  readonly logger: Pick<Logger, 'warn'>;
  /** Where JWT_SECRET is looked for, to warn when it is set but not read (default process.env). */
  readonly env?: NodeJS.ProcessEnv;
}

/**
 * What tells two key sets apart without showing either: the public key's JWK thumbprint (its kid), or for HS256 a
 * SHA-256 of the secret (cut to 128 bits; never the secret). Equal fingerprints sign and verify the same tokens.
 */
export function keysFingerprint(keys: SigningKeys): string {
  if (keys.kid !== undefined) return keys.kid;
  return createHash('sha256').update(keys.signKey.export()).digest('base64url').slice(0, 22);
}

/** The ConfigError of keys that are not the ones the gateway started with (key files changed on disk since). */
export function keysChangedError(): ConfigError {
  return new ConfigError(
    'jwt: the key files (or the generated secret) changed on disk since the gateway started: keys are loaded at start, so a rotation needs a restart of the whole gateway (or put the old files back)',
  );
}

/**
 * Loads the signing keys at start-up. Throws ConfigError naming the key at fault (`jwt.secret`,
 * `jwt.private_key_file`, `jwt.public_key_file`). With HS256 and an empty secret, the secret is read from
 * `<dataDir>/jwt-secret`, or generated there once (mode 0600) with a warning.
 */
export async function loadSigningKeys(options: LoadKeysOptions): Promise<SigningKeys> {
  const { jwt } = options;
  if (jwt.algorithm === 'HS256') {
    const secret = jwt.secret !== '' ? jwt.secret : loadOrCreateSecret(options.dataDir, options.logger);
    // The config reads only the variables it names: a config without `jwt.secret: "${JWT_SECRET}"` (the seed's shape
    // has no jwt section) ignored a JWT_SECRET an operator set, rotated after a leak, or shared between hosts, and
    // said nothing. (Set and empty is as config/proxy.yaml's ${JWT_SECRET:-} reads it: unset.)
    if (jwt.secret === '' && (options.env ?? process.env).JWT_SECRET) {
      options.logger.warn(
        {},
        'JWT_SECRET is set but the config does not read it: tokens are signed with the secret in the data dir (write jwt.secret: "${JWT_SECRET}" to use it)',
      );
    }
    if (Buffer.byteLength(secret, 'utf8') < MIN_SECRET_BYTES) {
      throw new ConfigError(`jwt.secret: must be at least ${MIN_SECRET_BYTES} bytes`);
    }
    const key = createSecretKey(Buffer.from(secret, 'utf8'));
    return { algorithm: 'HS256', kid: undefined, signKey: key, verifyKey: key, jwks: undefined };
  }
  return loadKeyPair(jwt.algorithm, jwt.private_key_file, jwt.public_key_file);
}

/**
 * Reads the generated secret, or creates it. Creation writes a temporary file and hard-links it into place, so of
 * several workers starting at once exactly one secret wins and nobody reads a half-written file.
 */
function loadOrCreateSecret(dataDir: string, logger: Pick<Logger, 'warn'>): string {
  const file = join(dataDir, SECRET_FILE_NAME);
  const existing = readSecretFile(file, logger);
  if (existing !== undefined) return existing;
  try {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    // The write inside the try: on a full disk the file is created and its write fails (ENOSPC), and the empty file
    // was left behind, one more at every start a supervisor retried.
    try {
      writeFileSync(tmp, randomBytes(48).toString('base64url'), { mode: 0o600, flag: 'wx' });
      linkSync(tmp, file);
      logger.warn(
        { file },
        'jwt.secret is empty: generated a random secret and stored it in the data dir; set jwt.secret (config/proxy.yaml reads JWT_SECRET into it) to share one between hosts',
      );
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      // another worker created it first: use theirs
    } finally {
      removeTemporary(tmp);
    }
  } catch (err) {
    throw new ConfigError(`jwt.secret: empty, and the generated secret cannot be written in ${dataDir} (${errCode(err)})`);
  }
  const created = readSecretFile(file, logger);
  if (created === undefined) throw new ConfigError(`jwt.secret: empty, and ${file} cannot be read`);
  return created;
}

/** Removes `tmp` if it exists: a failure here must not hide the cause of the failed write (its code is reported). */
function removeTemporary(tmp: string): void {
  try {
    unlinkSync(tmp);
  } catch {
    // never created (the create itself failed), or not ours to remove: nothing to do
  }
}

function readSecretFile(file: string, logger: Pick<Logger, 'warn'>): string | undefined {
  const text = readGeneratedSecret(file);
  if (text === undefined) return undefined;
  // Someone loosened the file's permissions: put them back rather than keep a world-readable signing secret.
  if ((statSync(file).mode & 0o077) !== 0) {
    try {
      chmodSync(file, 0o600);
      logger.warn({ file }, 'the generated JWT secret file was readable by others; its mode was reset to 0600');
    } catch (err) {
      // Not the gateway's file to change: a mounted secret (a Kubernetes Secret volume, root's and read-only, 0644 by
      // default, or 0640 for an fsGroup). chmod's EPERM or EROFS stopped start-up with a bare error while
      // check-config said ok; its mode is the mounter's choice, so it is said, not refused.
      logger.warn({ file, code: errCode(err) }, 'the JWT secret file is readable by others and its mode cannot be reset here; make it 0400 or 0600 where it is mounted');
    }
  }
  return text;
}

/**
 * The secret held by the generated-secret file `file` (without surrounding blanks), or undefined when there is no
 * such file; ConfigError when it cannot be read or is too short to sign with. Reads only: start-up (above) and
 * check-config (commands/check-writable.ts) judge the file alike. A regular file only, opened without waiting:
 * readFileSync of a FIFO there held start-up for ever while check-config, which only asked access(2), said ok; and a
 * short secret stopped start-up while check-config passed it.
 */
export function readGeneratedSecret(file: string): string | undefined {
  let bytes: Buffer;
  try {
    bytes = readRegularFile(file, MAX_KEY_FILE_BYTES, 'larger than 1 MiB');
  } catch (err) {
    const why = err instanceof UnreadableFile ? err.why : errCode(err);
    // A symlink whose target is missing (a mounted secret's ..data link not there yet, or left dangling) is not "no
    // file": check-config said ok, and start-up wrote a secret beside it that it could not link into its place.
    if (why === 'ENOENT' && !isSymlink(file)) return undefined;
    throw new ConfigError(`jwt.secret: empty, and ${file} cannot be read (${why === 'ENOENT' ? 'ENOENT: a symlink to nothing' : why})`);
  }
  const text = bytes.toString('utf8').trim();
  if (Buffer.byteLength(text, 'utf8') < MIN_SECRET_BYTES) {
    throw new ConfigError(`jwt.secret: empty, and ${file} holds fewer than ${MIN_SECRET_BYTES} bytes`);
  }
  return text;
}

function isSymlink(file: string): boolean {
  try {
    return lstatSync(file).isSymbolicLink();
  } catch {
    return false;
  }
}

/** Node's key type for each asymmetric algorithm, so a key of the wrong kind is refused at start-up. */
const KEY_TYPE: Record<Exclude<JwtAlgorithm, 'HS256'>, string> = { EdDSA: 'ed25519', RS256: 'rsa' };

async function loadKeyPair(
  algorithm: Exclude<JwtAlgorithm, 'HS256'>,
  privateFile: string,
  publicFile: string,
): Promise<SigningKeys> {
  if (privateFile === '') throw new ConfigError(`jwt.private_key_file: is required with algorithm ${algorithm}`);
  const signKey = readKey(privateFile, 'jwt.private_key_file', (pem) => createPrivateKey(pem));
  // Without a public key file, the public half is derived from the private key.
  const verifyKey =
    publicFile === '' ? createPublicKey(signKey) : readKey(publicFile, 'jwt.public_key_file', (pem) => createPublicKey(pem));
  for (const [key, name] of [
    [signKey, 'jwt.private_key_file'],
    [verifyKey, 'jwt.public_key_file'],
  ] as const) {
    if (key.asymmetricKeyType !== KEY_TYPE[algorithm]) {
      throw new ConfigError(`${name}: not a ${KEY_TYPE[algorithm]} key, as algorithm ${algorithm} requires`);
    }
  }
  if (algorithm === 'RS256' && (verifyKey.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) {
    throw new ConfigError('jwt.private_key_file: RSA keys must be at least 2048 bits');
  }
  const derived = createPublicKey(signKey).export({ format: 'der', type: 'spki' });
  if (!derived.equals(verifyKey.export({ format: 'der', type: 'spki' }))) {
    throw new ConfigError('jwt.public_key_file: does not match jwt.private_key_file');
  }
  const jwk = await exportJWK(verifyKey);
  const kid = await calculateJwkThumbprint(jwk, 'sha256');
  const published: PublicJwk = { ...jwk, kid, alg: algorithm, use: 'sig' };
  return { algorithm, kid, signKey, verifyKey, jwks: { keys: [published] } };
}

function readKey(file: string, name: string, parse: (pem: string) => KeyObject): KeyObject {
  let pem: string;
  try {
    // A regular file only, opened without waiting: a FIFO held check-config and start-up for ever.
    pem = readRegularFile(file, MAX_KEY_FILE_BYTES, 'larger than 1 MiB').toString('utf8');
  } catch (err) {
    throw new ConfigError(`${name}: cannot read ${file} (${err instanceof UnreadableFile ? err.why : errCode(err)})`);
  }
  try {
    return parse(pem);
  } catch {
    throw new ConfigError(`${name}: ${file} is not a PEM key of the expected kind`);
  }
}

function errCode(err: unknown): string {
  return (err as NodeJS.ErrnoException | undefined)?.code ?? 'error';
}
