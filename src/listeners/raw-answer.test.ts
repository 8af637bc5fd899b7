import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { ANSWER_FLUSH_MS, answerAndClose } from './raw-answer.js';

/** A socket that records what is done to it; its 'finish' and 'close' are emitted by the test. */
class FakeSocket extends EventEmitter {
  destroyed = false;
  paused = false;
  written: string[] = [];
  destroys = 0;
  pause(): void {
    this.paused = true;
  }
  end(data: string): void {
    assert.ok(this.paused, 'reading stops before the answer goes out');
    this.written.push(data);
  }
  destroy(): void {
    this.destroys++;
    this.destroyed = true;
  }
}

test('the answer is written with reading stopped, and the socket destroyed once it is out', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const socket = new FakeSocket();
  answerAndClose(socket, 'HTTP/1.1 408 Request Timeout\r\n\r\n');
  assert.deepEqual(socket.written, ['HTTP/1.1 408 Request Timeout\r\n\r\n']);
  assert.equal(socket.destroys, 0);
  socket.emit('finish');
  assert.equal(socket.destroys, 1);
  socket.emit('close');
  t.mock.timers.tick(ANSWER_FLUSH_MS);
  assert.equal(socket.destroys, 1, 'the bound is cleared once the socket has closed');
});

test('an answer that never leaves (a peer that reads nothing) is cut after ANSWER_FLUSH_MS', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const socket = new FakeSocket();
  answerAndClose(socket, 'x');
  t.mock.timers.tick(ANSWER_FLUSH_MS - 1);
  assert.equal(socket.destroys, 0);
  t.mock.timers.tick(1);
  assert.equal(socket.destroys, 1);
});

test('an error while the answer goes out destroys the socket and is never thrown', () => {
  const socket = new FakeSocket();
  answerAndClose(socket, 'x');
  socket.emit('error', new Error('EPIPE'));
  assert.equal(socket.destroys, 1);
  socket.emit('close');
});

test('a socket already destroyed is left alone', () => {
  const socket = new FakeSocket();
  socket.destroyed = true;
  answerAndClose(socket, 'x');
  assert.deepEqual(socket.written, []);
});
