// The environment variable by which a cluster's primary hands a worker it forks the fingerprint of the JWT keys the
// gateway's workers started with (keysFingerprint, learnt from a worker's READY). A replacement forked after the key
// files changed on disk would sign and verify with other keys than its siblings: half of all tokens refused, in turns
// (auth/setup.ts refuses to start it instead). A module of its own: the primary loads neither jose nor the keys.
export const WORKER_KEYS_ENV = 'PORTCULLIS_WORKER_JWT_KEYS';
