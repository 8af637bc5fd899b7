// api.logger's methods take (fields, message?) (README, "api.logger"): fields an object that is not an array, the
// message a string. Before, pino took anything: warn(42, 'text') wrote "msg": 42 and dropped the text, info(fields,
// { b: 2 }) wrote an object as msg (a line a log ingester expecting text may refuse), info([1, 2], 'text') wrote
// keys "0" and "1", all with no error for the plugin. Now each throws a TypeError at the call.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { assertPluginFailed, expressionGatewayHooks } from '../plugins/helpers.js';

const BAD = [
  `api.logger.warn(42, 'text')`,
  `api.logger.info(true, 'text')`,
  `api.logger.info({ a: 1 }, { b: 2 })`,
  `api.logger.error({ a: 1 }, 42)`,
  `api.logger.debug([1, 2], 'text')`,
  `api.logger.info('text', 42)`,
];

describe('api.logger: a call not of the shape (fields, message?)', () => {
  const gateway = expressionGatewayHooks('memory');

  for (const call of BAD) {
    test(`${call} throws a TypeError: 500 plugin_failed naming the plugin, and writes no line`, async () => {
      const before = gateway.g.gw.logs.length;
      assertPluginFailed(gateway.g.gw, await gateway.g.call({ 'x-call': call }));
      assert.deepEqual(gateway.g.gw.logs.slice(before).filter((l) => l.plugin === 'args' && l.msg !== 'Plugin Failed'), []);
    });
  }
});
