// The typed extension point through which features keep per-request state on the context, so the engine declares
// no feature's fields: auth keeps the caller, the limiter its decision, each without the driver knowing either.

let slotCount = 0;

/**
 * A typed slot on every RequestContext. Create one per feature at module load
 * (`export const CALLER = new ContextSlot<User>('user')`), then `CALLER.get(ctx)` / `CALLER.set(ctx, user)`.
 * A slot is an index into a small array on the context: no Map, no string keys on the hot path.
 */
export class ContextSlot<T> {
  readonly index: number;
  readonly name: string;

  constructor(name: string) {
    this.name = name;
    this.index = slotCount++;
  }

  get(ctx: { readonly slots: unknown[] }): T | undefined {
    return ctx.slots[this.index] as T | undefined;
  }

  set(ctx: { readonly slots: unknown[] }, value: T | undefined): void {
    ctx.slots[this.index] = value;
  }
}
