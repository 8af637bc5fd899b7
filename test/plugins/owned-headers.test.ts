// The headers a plugin may not set or delete are the ones the gateway itself treats as its own under the config:
// the identity and consumer headers by their configured names (in any "_"/"-" spelling, as backends fold them).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createClient } from '../helpers/http.js';
import { fixture, gatewayWithPlugins, type PluginGateway } from './helpers.js';

const client = createClient();
after(() => client.close());

interface Echoed {
  headers: Record<string, string | undefined>;
}

describe('owned headers under a config that renames the identity and consumer headers', () => {
  let p: PluginGateway;
  before(async () => {
    p = await gatewayWithPlugins([{ name: 'setter', module: fixture('header-setter.mjs') }], ['setter'], {
      middleware: { auth: { user_id_header: 'X-Auth-Subject', consumer_id_header: 'X-Api-Consumer', consumer_name_header: 'X-Api-Consumer-Name' } },
    });
  });
  after(() => p.close());

  for (const name of ['x-auth-subject', 'x-api-consumer', 'x_api_consumer', 'x-api-consumer-name']) {
    test(`upstreamHeaders.set('${name}') throws: only the gateway says who the caller is`, async () => {
      const res = await client.request(`${p.gw.url}/x`, { headers: { 'x-set-upstream': `${name}=forged` } });
      const echoed = res.json<Echoed>().headers;
      assert.equal(echoed['x-set-error'], `TypeError: header ${name} is owned by the gateway`);
      assert.equal(echoed[name.replace(/_/g, '-')], undefined);
    });
  }
});
