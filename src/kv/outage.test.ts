// The shared KV outage log on a fake clock: hysteresis, one line per source and policy, bounded reminders with counts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KvUnavailableError } from './kv-store.js';
import { KvOutageLog, sharedOutageLog } from './outage.js';
import { describeKvError } from './describe.js';

function setup() {
  const lines: Array<{ level: 'warn' | 'info'; fields: Record<string, unknown> }> = [];
  const clock = { now: 1_000_000 };
  const logger = {
    warn: (fields: Record<string, unknown>) => void lines.push({ level: 'warn', fields }),
    info: (fields: Record<string, unknown>) => void lines.push({ level: 'info', fields }),
  };
  const log = new KvOutageLog(logger as never, { quietMs: 5_000, reminderMs: 60_000, causeChangeMs: 10_000, now: () => clock.now });
  return { lines, clock, log };
}

const refused = (): KvUnavailableError => {
  const cause = Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:6379'), { code: 'ECONNREFUSED' });
  return new KvUnavailableError({ cause, connection: 'Error(ECONNREFUSED)' });
};

test('a failure every 10 ms for 20 minutes between answers: bounded lines, counts exact, recovered after the quiet period', () => {
  const { lines, clock, log } = setup();
  let failures = 0;
  for (let t = 0; t < 20 * 60_000; t += 10) {
    clock.now += 10;
    log.failure(refused(), 'rate_limit', 'allow');
    failures++;
    if (log.active) log.answered(); // a healthy slot answers in between: not a recovery
  }
  const warns = lines.filter((l) => l.level === 'warn');
  assert.equal(warns.length, 20, 'the first line, then one reminder a minute');
  assert.equal(lines.filter((l) => l.level === 'info').length, 0);
  assert.deepEqual(warns[1]!.fields.ongoing, true);
  assert.equal(warns[1]!.fields.failed_since_last_line, 6_000);
  const counted = warns.slice(1).reduce((sum, w) => sum + Number(w.fields.failed_since_last_line), 1);
  assert.equal(warns.at(-1)!.fields.failed_decisions, counted, 'each reminder counts the failures since the line before');
  clock.now += 4_999;
  log.answered();
  assert.equal(log.active, true, 'not yet: 5 s without a failure');
  clock.now += 1;
  log.answered();
  assert.equal(log.active, false);
  const recovered = lines.at(-1)!;
  assert.equal(recovered.level, 'info');
  assert.equal(recovered.fields.failed_decisions, failures);
  assert.equal(recovered.fields.outage_ms, 20 * 60_000 - 10);
});

test('each source and policy is named once per outage; a changed cause is logged, at most every causeChangeMs', () => {
  const { lines, clock, log } = setup();
  log.failure(refused(), 'rate_limit', 'allow');
  log.failure(refused(), 'rate_limit', 'deny');
  log.failure(refused(), 'revocation', 'deny');
  log.failure(refused(), 'revocation', 'deny');
  assert.deepEqual(lines.map((l) => [l.fields.source, l.fields.policy]), [['rate_limit', 'allow'], ['rate_limit', 'deny'], ['revocation', 'deny']]);
  const wrongPass = (): KvUnavailableError =>
    new KvUnavailableError({ cause: new Error('The client is offline'), connection: 'SimpleError(WRONGPASS)' });
  clock.now += 5_000;
  log.failure(wrongPass(), 'rate_limit', 'allow');
  assert.equal(lines.length, 3, 'a change within causeChangeMs waits');
  clock.now += 5_000;
  log.failure(wrongPass(), 'rate_limit', 'allow');
  assert.equal(lines.length, 4);
  assert.equal(lines[3]!.fields.connection_error, 'SimpleError(WRONGPASS)');
  assert.equal(lines[3]!.fields.cause, 'Error');
  clock.now += 20_000;
  log.failure(wrongPass(), 'rate_limit', 'allow');
  assert.equal(lines.length, 4, 'the same cause again is no news');
  for (const line of lines) assert.doesNotMatch(JSON.stringify(line.fields), /10\.0\.0\.1|offline|connect /);
});

test('describeKvError: class and code, never the message', () => {
  class ErrorReply extends Error {}
  class SimpleError extends ErrorReply {}
  class ClientOfflineError extends Error {}
  assert.equal(describeKvError(new SimpleError('WRONGPASS invalid username-password pair')), 'SimpleError(WRONGPASS)');
  assert.equal(describeKvError(new SimpleError('CLUSTERDOWN Hash slot not served')), 'SimpleError(CLUSTERDOWN)');
  assert.equal(describeKvError(new ClientOfflineError('The client is offline')), 'ClientOfflineError');
  assert.equal(describeKvError(Object.assign(new Error('connect ETIMEDOUT 10.0.0.1:6379'), { code: 'ETIMEDOUT' })), 'Error(ETIMEDOUT)');
  // A plain error is not a reply: an upper-case first word of its message is not taken for a code.
  assert.equal(describeKvError(new Error('SECRET s3cr3t')), 'Error');
  // node-redis's Sentinel wraps a node error in a plain Error whose message names the node.
  const wrapped = new Error('Master Client (10.0.0.1:6379): connect ECONNREFUSED', { cause: Object.assign(new Error('x'), { code: 'ECONNREFUSED' }) });
  assert.equal(describeKvError(wrapped), 'Error(ECONNREFUSED)');
  assert.equal(describeKvError(new AggregateError([Object.assign(new Error('x'), { code: 'ECONNREFUSED' })])), 'AggregateError(ECONNREFUSED)');
});

test('sharedOutageLog: one log per store object', () => {
  const logger = { warn: () => undefined, info: () => undefined };
  const store = {};
  assert.equal(sharedOutageLog(store, logger as never), sharedOutageLog(store, logger as never));
  assert.notEqual(sharedOutageLog(store, logger as never), sharedOutageLog({}, logger as never));
});
