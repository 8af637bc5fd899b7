// Loaded into a spawned `portcullis` with `node --import <this file>`: holds one listen, the one on the port named by
// PORTCULLIS_TEST_HOLD_LISTEN_PORT, while the rest of the process runs on. A test uses it to act while start-up waits
// there: held at the admin port, the proxy port is already open and serving (review13-lifecycle-stop-during-start).
//
// The hold wraps net.Server's listen on this thread (every node:http and node:net server's): when a server is asked to
// listen on that port, it creates `held` in PORTCULLIS_TEST_HOLD_DIR and listens only once the test has created `go`
// there. Polled on a timer, so the event loop goes on serving meanwhile. Plain JavaScript so that it loads before tsx
// does.
import { existsSync, writeFileSync } from 'node:fs';
import { Server } from 'node:net';
import { join } from 'node:path';

const dir = process.env.PORTCULLIS_TEST_HOLD_DIR;
const port = Number(process.env.PORTCULLIS_TEST_HOLD_LISTEN_PORT);
if (dir === undefined || !Number.isInteger(port) || port <= 0) {
  throw new Error('hold-listen-import.mjs needs PORTCULLIS_TEST_HOLD_DIR and PORTCULLIS_TEST_HOLD_LISTEN_PORT');
}

const listen = Server.prototype.listen;
Server.prototype.listen = function heldListen(...args) {
  const asked = typeof args[0] === 'object' && args[0] !== null ? args[0].port : args[0];
  if (Number(asked) !== port) return listen.apply(this, args);
  writeFileSync(join(dir, 'held'), '');
  const waitForGo = () => {
    if (existsSync(join(dir, 'go'))) listen.apply(this, args);
    else setTimeout(waitForGo, 10);
  };
  waitForGo();
  return this;
};
