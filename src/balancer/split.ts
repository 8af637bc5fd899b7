// A weighted split of a route's traffic over several services (canary releases): smooth weighted round robin over
// the services, so the shares are exact over time rather than random. A service with no healthy upstream is
// skipped while another has one. A retry goes to another upstream in rotation of the same service, or, when it has
// none, to another service of the split with one; to an upstream cooling down only when no service has one.
import type { RequestContext } from '../pipeline/context.js';
import type { Peer, UpstreamSelector } from '../pipeline/upstream.js';
import { RoundRobin } from './round-robin.js';
import type { Service } from './service.js';

/** One arm of a split: a service and its weight (a reload builds a new split with the new service objects). */
export interface SplitArm {
  readonly service: Service;
  readonly weight: number;
}

export class SplitSelector implements UpstreamSelector {
  readonly #arms: readonly { readonly service: Service; readonly weight: number; readonly inflight: number; readonly available: boolean }[];
  readonly #picker: RoundRobin;

  /** `picker`: the rotation to continue (SplitRotations), else a new one. */
  constructor(arms: readonly SplitArm[], picker: RoundRobin = new RoundRobin(arms.length)) {
    this.#arms = arms.map((arm) => ({
      service: arm.service,
      weight: arm.weight,
      inflight: 0,
      get available() {
        return arm.service.available;
      },
    }));
    this.#picker = picker;
  }

  acquire(ctx: RequestContext, exclude: Peer | undefined): Peer | undefined {
    if (exclude !== undefined) {
      // A retry: another upstream in rotation of the same service, as a single-service route would do; when that
      // service has none, the first other service, in the split's order, with an upstream in rotation that this
      // request has not been sent to (one whose only upstream already failed it may be back in rotation:
      // passive_cooldown 0, or a failure that takes no upstream out). The weighted picker is left alone, so retries
      // do not skew the shares. A cooling upstream (a panic pick) only when no service has one in rotation: it
      // failed a moment ago, while another service may be serving.
      const same = this.#arms.find((a) => a.service === exclude.group);
      if (same === undefined) return undefined;
      const peer = same.service.acquireInRotation(ctx, exclude);
      if (peer !== undefined) return peer;
      for (const arm of this.#arms) {
        if (arm === same || !arm.available) continue;
        const other = arm.service.acquireInRotation(ctx);
        if (other !== undefined) return other;
      }
      return same.service.acquire(ctx, undefined) ?? this.#panic(ctx, same);
    }
    const index = this.#picker.pick(this.#arms, undefined);
    if (index === -1) return this.#panic(ctx, undefined);
    return this.#arms[index]!.service.acquire(ctx, undefined);
  }

  /**
   * A retry on the upstream that just failed it without blame (allowed again): its own service picks, never the
   * split's weighted picker, which counted the retry as a new request's share (the next request's arm moved) and could
   * hand it to a service with nothing left to offer it, ending the retries with the upstream it may go back to unused.
   */
  acquireAgain(ctx: RequestContext, peer: Peer): Peer | undefined {
    return this.#arms.find((a) => a.service === peer.group)?.service.acquire(ctx, undefined);
  }

  /**
   * No service has an upstream in rotation: each service's panic pick in turn (a cooling upstream its checks still
   * call healthy), in the split's order, skipping `skip`. Asking the first service alone answered 502 whenever it
   * was the one marked down by its checks, while another could still serve.
   */
  #panic(ctx: RequestContext, skip: SplitArm | undefined): Peer | undefined {
    for (const arm of this.#arms) {
      if (arm === skip) continue;
      const peer = arm.service.acquire(ctx, undefined);
      if (peer !== undefined) return peer;
    }
    return undefined;
  }
}

/**
 * The splits' rotations, kept across reloads by route name: a reload builds new SplitSelectors, and each used to start
 * its rotation over, so a route reloaded every few requests (a config sync, certificate tooling) sent the first arm
 * every request at 1:1, and at 90:10 every one of 50 requests with a reload each 5: the canary got nothing. A route
 * whose arms (services, weights, order) are unchanged continues its rotation; any change starts a new one.
 */
export class SplitRotations {
  readonly #byRoute = new Map<string, { readonly arms: string; readonly picker: RoundRobin }>();

  /** The rotation of route `name` over `arms` (service names and weights, in order). */
  picker(name: string, arms: readonly { readonly service: string; readonly weight: number }[]): RoundRobin {
    const key = arms.map((a) => `${a.service}\u0000${a.weight}`).join('\u0001');
    const kept = this.#byRoute.get(name);
    if (kept !== undefined && kept.arms === key) return kept.picker;
    const picker = new RoundRobin(arms.length);
    this.#byRoute.set(name, { arms: key, picker });
    return picker;
  }

  /** Forgets the routes a table no longer has (`names`: the split routes of the table just built). */
  retain(names: ReadonlySet<string>): void {
    for (const name of this.#byRoute.keys()) if (!names.has(name)) this.#byRoute.delete(name);
  }
}
