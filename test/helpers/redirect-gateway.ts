// The gateway the redirect listener's suites run against: TLS on the proxy port (a throwaway CA's certificate for
// a.test), the HTTP→HTTPS redirect listener on a free port, and one upstream on port 9 where nothing listens, so a
// request that gets past the listeners' checks to a route gets 502, never a redirect or a 400.
import { before } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { startInProcess, type InProcessGateway } from './gateway.js';
import { responseUntilClose, type RawResponse } from './raw.js';
import { aTestCertificateHooks, type TestCa } from './tls.js';

export interface RedirectGateway {
  readonly gw: InProcessGateway;
  readonly ca: TestCa;
  /** The redirect listener's port. */
  readonly redirectPort: number;
  /** What the https listener answers `request` (HTTP/1.1 by ALPN, SNI a.test), read until it closes the connection. */
  toProxy(request: string): Promise<RawResponse>;
}

/**
 * Registers before/after hooks in the calling describe() that start and stop such a gateway (and its certificate,
 * aTestCertificateHooks); the returned object's fields are set once the before hook has run.
 */
export function redirectGatewayHooks(caName: string): RedirectGateway {
  const certificate = aTestCertificateHooks(caName);
  const state = {
    get ca(): TestCa {
      return certificate.ca;
    },
    toProxy(request: string): Promise<RawResponse> {
      const socket = tlsConnect(
        { host: '127.0.0.1', port: state.gw.gateway.port, ca: certificate.ca.ca, servername: 'a.test', ALPNProtocols: ['http/1.1'] },
        () => socket.write(request),
      );
      return responseUntilClose(socket);
    },
  } as { gw: InProcessGateway; readonly ca: TestCa; redirectPort: number; toProxy(request: string): Promise<RawResponse> };
  before(async () => {
    state.gw = await startInProcess({
      server: { tls: { cert_file: certificate.certFile, key_file: certificate.keyFile }, http_redirect: { listen_port: 0 } },
      load_balancing: { upstreams: [{ name: 'nowhere', address: '127.0.0.1', port: 9 }] },
    });
    certificate.gateways.push(state.gw);
    state.redirectPort = state.gw.logs.find((l) => l.msg === 'Gateway Started')!.redirect_port as number;
  });
  return state;
}
