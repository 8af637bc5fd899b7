// How a subject's revocation (every token of a user) judges one access token: by the user's token generation when
// the token carries one, by issue time for a token issued before generations existed. Pure; shared by every adapter.

/**
 * What the revocation store holds for a subject. `at`: the latest revocation time (epoch ms) written, by any version
 * of the gateway. `generation`: the highest token generation written, and `generationAt` the latest revocation time a
 * write with a generation carried (every write with a generation sets both; a later time written without one is
 * never counted in it). Undefined fields: nothing of that kind is stored (or it
 * expired).
 */
export interface SubjectRevocation {
  readonly at?: number | undefined;
  readonly generation?: number | undefined;
  readonly generationAt?: number | undefined;
}

/**
 * True when `stored` refuses a token of the subject issued at `issuedAtMs` under `generation`.
 *
 * - A token with a generation is refused when it is below the stored one: an order the user store keeps under the
 *   user's lock, so neither the clocks of the hosts involved nor two events in one millisecond can change it. A
 *   token issued after a revocation carries the raised generation and is accepted, one issued before it is refused.
 * - A revocation stored with no generation after it (`at` later than `generationAt`, or no generation at all) was
 *   written by a gateway or CLI of an earlier version (a rolling upgrade), or when the acting process could not read
 *   the generation back: the token is then also compared by time, as every token was before (refused when issued at
 *   or before `at`), so such a revocation still refuses what it used to.
 * - A token without a generation (issued before the upgrade) is compared by time only, as before. Those are gone one
 *   access-token lifetime after the upgrade.
 */
export function refusesToken(stored: SubjectRevocation, issuedAtMs: number, generation: number | undefined): boolean {
  const at = stored.at;
  if (generation === undefined) return at !== undefined && issuedAtMs <= at;
  if (stored.generation !== undefined && generation < stored.generation) return true;
  if (at === undefined || issuedAtMs > at) return false;
  return stored.generation === undefined || stored.generationAt === undefined || at > stored.generationAt;
}

/** The Redis value of a subject's generation key: "<generation>:<revocation time when written>". */
export function parseGenerationValue(value: unknown): Pick<SubjectRevocation, 'generation' | 'generationAt'> {
  if (typeof value !== 'string') return {};
  const match = /^(\d{1,15}):(-?\d{1,16})$/.exec(value);
  if (match === null) return {};
  return { generation: Number(match[1]), generationAt: Number(match[2]) };
}

/** The Redis value of a subject's time key (a decimal epoch-ms time), or undefined when absent or not a number. */
export function parseTimeValue(value: unknown): number | undefined {
  if (value === null || value === undefined) return undefined;
  const at = Number(String(value));
  return Number.isFinite(at) ? at : undefined;
}
