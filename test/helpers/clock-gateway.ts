// A spawned gateway (`portcullis start`) in front of a backend of its own, on a wall clock the test steps
// (clock-step.ts): the set-up the review9-clock tests of one such gateway share.
import { startBackend, type TestBackend } from './backends.js';
import { steppedClock, type SteppedClock } from './clock-step.js';
import { spawnGateway, upstreams, type ConfigInput, type GatewayProcess } from './gateway.js';

export interface ClockedGateway {
  readonly backend: TestBackend;
  /** At the real time until the test steps it. */
  readonly clock: SteppedClock;
  readonly gw: GatewayProcess;
  /** Stops the gateway, removes the clock's file, stops the backend, in that order. */
  stop(): Promise<void>;
}

/**
 * Starts the backend `backendName`, a stepped clock and a gateway of `config` whose load_balancing upstream is that
 * backend. Should the gateway not start, the clock and backend are removed before the error is thrown.
 */
export async function startClockedGateway(backendName: string, config: ConfigInput = {}): Promise<ClockedGateway> {
  const backend = await startBackend(backendName);
  const clock = steppedClock();
  let gw: GatewayProcess;
  try {
    gw = await spawnGateway({ load_balancing: { upstreams: upstreams([backend.port]) }, ...config }, { env: clock.env });
  } catch (err) {
    clock.remove();
    await backend.stop();
    throw err;
  }
  return {
    backend,
    clock,
    gw,
    async stop() {
      await gw.cleanup();
      clock.remove();
      await backend.stop();
    },
  };
}
