// `$${NAME}` is the literal text `${NAME}`, as in docker compose: the one way to write a `${` that is no placeholder
// (a plugin's template, a header value), which every value used to expand or refuse as an unset variable.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfigText } from './load.js';
import { expandVariables } from './env.js';

const MINIMAL = `load_balancing:\n  upstreams: [{name: a, address: 127.0.0.1, port: 3000}]\n`;

test('$${NAME} is the literal ${NAME}, in block and flow style, quoted or not, set or unset', () => {
  assert.equal(expandVariables('$${NAME}', { NAME: 'x' }), '${NAME}');
  assert.equal(expandVariables('$${NAME:-d} ${NAME}', { NAME: 'x' }), '${NAME:-d} x');
  assert.equal(expandVariables('pa$$word', {}), 'pa$$word');
  assert.equal(expandVariables('$$${NAME}', { NAME: 'x' }), '$${NAME}');
  const config = parseConfigText(
    `${MINIMAL}server:\n  proxy_by: gw-$\${UNSET_FOR_ESCAPE}\n` +
      `plugins:\n  - {name: p, module: ./p.js, config: {format: "$\${method} $\${path}", plain: $\${x:-y}}}\n`,
    {},
  );
  assert.equal(config.server.proxy_by, 'gw-${UNSET_FOR_ESCAPE}');
  assert.deepEqual(config.plugins[0]!.config, { format: '${method} ${path}', plain: '${x:-y}' });
});
