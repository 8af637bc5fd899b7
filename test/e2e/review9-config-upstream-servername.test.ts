// An upstream group's tls.servername took any string: `api.internal:443`, `https://api.internal`, `api internal`
// passed check-config, start and reload; the gateway then sent it as SNI and checked the upstream's certificate
// against it as written, and every request was a 502 upstream_tls ("name mismatch"). Now it is read as the upstream's
// address is (a host name or an IP address alone), and check-config and start refuse the rest alike.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfigText } from '../../src/config/load.js';
import { checkConfigVerdict, configErrorOf, startVerdict } from '../helpers/config-error.js';
import { createTestCa, pkiDir } from '../helpers/tls.js';

const pki = pkiDir();
after(() => pki.remove());
const ca = createTestCa('Review9 servername CA', pki.path);

const text = (servername: string, key = 'load_balancing') => {
  const group = `{health_check: {enabled: false}, upstreams: [{name: a, address: 127.0.0.1, port: 1}], tls: {enabled: true, ca_file: ${ca.caFile}, servername: '${servername}'}}`;
  return `server: {listen_host: 127.0.0.1, listen_port: 0}
admin: {enabled: false}
logging: {format: json}
${key === 'load_balancing' ? `load_balancing: ${group}` : `load_balancing: {health_check: {enabled: false}, upstreams: [{name: z, address: 127.0.0.1, port: 1}]}\nservices: {billing: ${group}}\nroutes: [{name: b, match: {path_prefix: /b}, service: billing}]`}
`;
};

test('a servername with a port, a scheme or a space: refused by check-config and start alike, naming the key', async () => {
  const path = join(pki.path, 'port.yaml');
  writeFileSync(path, text('api.internal:443'));
  const refused = "portcullis: config error: load_balancing.tls.servername: must be a host name or an IP address, without a port (the upstream's port is its own key)";
  assert.equal(await checkConfigVerdict(path, {}, pki.path), refused);
  assert.equal(await startVerdict(path, {}, pki.path), refused);
  const cases: Array<[string, string, string]> = [
    ['https://api.internal', 'services', 'services.billing.tls.servername: must be a host name or an IP address, without a scheme'],
    ['api internal', 'load_balancing', 'load_balancing.tls.servername: must be an IP address or a host name'],
    ['[::1]', 'load_balancing', 'load_balancing.tls.servername: an IPv6 address is written without brackets here (::1)'],
  ];
  for (const [servername, key, reason] of cases) assert.equal(configErrorOf(text(servername, key)), reason, servername);
  // A name, an IP address, or none: as before.
  for (const servername of ['api.internal', 'api.internal.', '10.0.0.1', '::1', '']) {
    assert.doesNotThrow(() => parseConfigText(text(servername), {}), servername);
  }
});
