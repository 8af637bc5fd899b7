// Redis key names of the gateway and Redis Cluster slot arithmetic: every key carries a hash tag, so the keys one
// script touches share a slot while different clients' keys spread over all slots.

/** Slots of a Redis Cluster (fixed by the protocol). */
export const CLUSTER_SLOTS = 16_384;

/**
 * The key of rate-limit bucket `bucket`. The bucket name is the hash tag: the take script touches this key only,
 * and different clients' buckets hash to different slots. Bucket names come from the limiter (`p:<address>`,
 * `u:<user id>`, `e:<email hash>`), which never contain braces; a `}` inside one would only shorten the tag.
 */
export function bucketKey(prefix: string, bucket: string): string {
  return `${prefix}rl:{${bucket}}`;
}

/** The key marking access token `tokenId` revoked (the token id is the hash tag, spreading revocations too). */
export function revokedKey(prefix: string, tokenId: string): string {
  return `${prefix}revoked:{${tokenId}}`;
}

/**
 * The key holding the time before which every token of `subject` (a user, or an API key) is revoked: disable,
 * logout-everywhere, delete. The subject is the hash tag; its one script touches this key only.
 */
export function subjectRevokedKey(prefix: string, subject: string): string {
  return `${prefix}revoked-subject:{${subject}}`;
}

/**
 * The key holding the highest token generation revoked for `subject` (a user), with the revocation time it was written
 * with: "<generation>:<ms>" (see subject-revocation.ts). Same hash tag as subjectRevokedKey: one slot, one script,
 * one MGET.
 */
export function subjectGenerationKey(prefix: string, subject: string): string {
  return `${prefix}revoked-gen:{${subject}}`;
}

/** The key of plain value `key` (the plugins' store, already namespaced per plugin); the key is the hash tag. */
export function valueKey(prefix: string, key: string): string {
  return `${prefix}v:{${key}}`;
}

/**
 * The marker whose absence tells that Redis lost the gateway's keys (RedisKvStore.dataLost): written once, no expiry.
 * Its own hash tag: one slot, whatever the prefix.
 */
export function keptMarkerKey(prefix: string): string {
  return `${prefix}kept:{kept}`;
}

/**
 * The revocation key written before hash tags existed. Read (never written) on a single server or Sentinel, so a
 * logout made just before an upgrade stays honoured until that access token expires; a Redis Cluster never had it.
 * Drop once no access token older than the upgrade can be alive (`access_token_ttl` after the rollout).
 */
export function legacyRevokedKey(prefix: string, tokenId: string): string {
  return `${prefix}revoked:${tokenId}`;
}

/**
 * Every script the gateway runs, with the keys one call passes as KEYS[], given the names it is called with.
 * The slot test checks that each entry's keys share one slot for many inputs; a new script must be added here.
 */
export const SCRIPT_KEYS: Readonly<Record<string, (prefix: string, name: string) => readonly string[]>> = {
  take: (prefix, bucket) => [bucketKey(prefix, bucket)],
  refund: (prefix, bucket) => [bucketKey(prefix, bucket)],
  revokeSubject: (prefix, subject) => [subjectRevokedKey(prefix, subject), subjectGenerationKey(prefix, subject)],
  increment: (prefix, key) => [valueKey(prefix, key)],
  ready: (prefix, name) => [bucketKey(prefix, name)],
};

/**
 * The part of `key` Redis Cluster hashes: the text between the first `{` and the next `}` when that is non-empty,
 * else the whole key (the cluster specification's rule).
 */
export function hashTagOf(key: string): string {
  const open = key.indexOf('{');
  if (open === -1) return key;
  const close = key.indexOf('}', open + 1);
  if (close === -1 || close === open + 1) return key;
  return key.slice(open + 1, close);
}

/** CRC16 (XMODEM: polynomial 0x1021, initial 0) of the UTF-8 bytes, as Redis Cluster uses for key slots. */
function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const byte of bytes) {
    crc ^= byte << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

/** The cluster slot of `key` (0 … 16383); equals CLUSTER KEYSLOT on a server. */
export function hashSlot(key: string): number {
  return crc16(Buffer.from(hashTagOf(key), 'utf8')) % CLUSTER_SLOTS;
}
