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

  constructor(arms: readonly SplitArm[]) {
    this.#arms = arms.map((arm) => ({
      service: arm.service,
      weight: arm.weight,
      inflight: 0,
      get available() {
        return arm.service.available;
      },
    }));
    this.#picker = new RoundRobin(arms.length);
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
