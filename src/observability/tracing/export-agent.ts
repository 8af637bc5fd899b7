// The HTTP agent of the OTLP exporter: each export request ends by a hard deadline. The exporter's own timeout is
// node's req.setTimeout, a socket idle timeout that every byte restarts: a collector that answered 200 and then
// trickled its body a byte every 2 s held its export open for as long as it went on, and once such exports filled the
// exporter's 30 concurrent slots, no span was sent again (measured: 30 held, none sent to a collector answering at once
// again, until those connections died) and their batches were never counted as dropped.
import { Agent as HttpAgent, type Agent, type AgentOptions, type ClientRequest } from 'node:http';
import { nodeHttps } from '../../node-builtins.js';

/** The export that ran past its deadline: a class and code of our own for the log line (never the collector's words). */
export class ExportDeadlineError extends Error {
  readonly code = 'EXPORT_DEADLINE';
  constructor(deadlineMs: number) {
    super(`export not finished within ${deadlineMs} ms`);
    this.name = 'ExportDeadlineError';
  }
}

type AgentClass = new (options?: AgentOptions) => Agent;

/**
 * An Agent class whose requests are destroyed `deadlineMs` after they are handed to it, whatever arrives meanwhile.
 * Agent#addRequest is where node's http.request hands every request to its agent (not in node's typings, but what
 * agent libraries have built on for a decade); the timer goes with the request's 'close'.
 */
function withDeadline(Base: AgentClass, deadlineMs: number): AgentClass {
  const addRequest = (Base.prototype as unknown as { addRequest: (req: ClientRequest, options: unknown) => void }).addRequest;
  return class DeadlineAgent extends Base {
    addRequest(req: ClientRequest, options: unknown): void {
      const timer = setTimeout(() => req.destroy(new ExportDeadlineError(deadlineMs)), deadlineMs);
      timer.unref();
      req.once('close', () => clearTimeout(timer));
      addRequest.call(this, req, options);
    }
  };
}

/** The exporter's `httpAgentOptions` factory: keep-alive agents for `http:` or `https:` collectors, with the deadline. */
export function deadlineAgentFactory(deadlineMs: number): (protocol: string) => Agent {
  return (protocol) => {
    const Base = protocol === 'https:' ? nodeHttps().Agent : HttpAgent;
    return new (withDeadline(Base, deadlineMs))({ keepAlive: true });
  };
}
