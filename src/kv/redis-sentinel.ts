// A Sentinel-managed Redis master through node-redis's own createSentinel: the client asks the sentinels where the
// master is and follows a promotion (switch-master) without a restart.
//
// node-redis's Sentinel client makes every command wait while it asks the sentinels again. That wait is what keeps
// commands off an old master during a failover, so commands go through it, with two exceptions made here:
// - no periodic rescan (node-redis's scanInterval): a slow sentinel made every command wait at each one, a burst of
//   503s (on_store_error: deny) every 5 s; promotions are announced on the sentinels' channel, and a silent or
//   refusing master makes the client ask again anyway;
// - while no sentinel accepts a connection at all, commands go to the last master the client named on a connection
//   of the store's own (the master link): with every sentinel down, each command waited out the client's retries and
//   the gateway answered 503 for as long as they were down, the master up and answering. No failover can happen
//   without sentinels, so that master is still the master, unless the gateway alone is cut off from every sentinel
//   while they promote a replica (README: min-replicas-to-write bounds what the old master then takes).
import { connect as tcpConnect } from 'node:net';
import { createClient, createSentinel } from '@redis/client';
import {
  connectInBackground,
  destroyClient,
  isReplicaReply,
  nodeClientOptions,
  NO_CLIENT_TIMEOUT,
  silenceBound,
  SilentConnectionError,
  type NodeSettings,
  type RedisConnection,
} from './redis-connection.js';

/** A command given up on while the master link (every sentinel down) reconnected past the command timeout. */
export class MasterLinkNotReadyError extends Error {
  constructor(timeoutMs: number) {
    super(`the master link was not ready within the command timeout (${timeoutMs} ms)`);
    this.name = 'MasterLinkNotReadyError';
  }
}

/** Config `redis.sentinel`: the monitored master's name and some sentinels' redis:// URLs. */
export interface SentinelTarget {
  readonly name: string;
  readonly nodes: readonly string[];
}

/**
 * Credentials from the first sentinel URL are used for the sentinels and for the data nodes alike (the common
 * setup: one `requirepass`, and `sentinel auth-pass` set to it).
 */
function credentialsOf(url: URL): { username?: string; password?: string } {
  return {
    ...(url.username !== '' ? { username: decodeURIComponent(url.username) } : {}),
    ...(url.password !== '' ? { password: decodeURIComponent(url.password) } : {}),
  };
}

/**
 * The database of the data nodes: the first URL's `/N`, as `redis.url` names one (a sentinel itself has none).
 * Without it a Sentinel store used database 0 whatever the URLs said, so two deployments kept apart by their
 * database shared their rate-limit buckets.
 */
function databaseOf(url: URL): { database?: number } {
  const match = /^\/(\d+)$/.exec(url.pathname);
  return match === null || Number(match[1]) === 0 ? {} : { database: Number(match[1]) };
}

/** The master that the sentinels `target.nodes` monitor under `target.name`. */
export function redisSentinel(target: SentinelTarget, settings: NodeSettings): RedisConnection {
  const urls = target.nodes.map((node) => new URL(node));
  const credentials = credentialsOf(urls[0] as URL);
  const database = databaseOf(urls[0] as URL);
  const node = nodeClientOptions(settings);
  // TLS for the sentinels and the data nodes they name when any sentinel URL is rediss://: node-redis takes the
  // sentinels as host and port only, so the scheme must become a socket option here. Any, not the first: a list
  // that mixes the two schemes gets TLS (a failed handshake, never a password sent in clear text).
  const tls = urls.some((url) => url.protocol === 'rediss:') ? { tls: true as const } : {};
  // node-redis waits for a node's handshake reply without a bound, and its Sentinel client waits for each step of a
  // rediscovery in turn: a frozen sentinel asked first (at start, or at a rescan) or a frozen master it had been
  // told of held the client forever, and the store never followed the promotion the other sentinels made (a paused
  // machine running a master and a sentinel). A silent socket is closed (silenceBound), so the step fails and the
  // next node is tried.
  const { socketTimeout, pingInterval } = silenceBound(settings);
  const socket = { ...node.socket, ...tls, socketTimeout };
  const roots = urls.map((url) => ({ host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port || 26379) }));
  const masterOptions = { ...node, ...credentials, ...database, socket, pingInterval };
  /**
   * A client asks the sentinels in list order and trusts the first that answers. One that names a master it cannot
   * reach, a replica, or no master at all (it monitors another setup under the same name, or is cut off from the
   * master) was asked first again at each retry: the store never became ready though the other sentinels agreed on
   * a live master. After this long without a master it can reach and write to, a new client asks them starting
   * from the next one (rotation), and takes over once ready.
   */
  const rotateAfterMs = Math.max(2 * socketTimeout, 5_000);
  const open = (first: number) =>
    createSentinel({
      name: target.name,
      sentinelRootNodes: [...roots.slice(first), ...roots.slice(0, first)],
      nodeClientOptions: masterOptions,
      sentinelClientOptions: { ...node, ...credentials, socket, pingInterval },
      commandOptions: NO_CLIENT_TIMEOUT,
    });
  type Sentinel = ReturnType<typeof open>;
  let onError: (err: unknown) => void = () => undefined;
  let closed = false;
  /**
   * The socket timeout alone does not end a master link gone silent under load: every command written counts as
   * activity on the socket, so while requests keep coming it never fires, every command met the store's command
   * timeout (on_store_error: deny answered 503) and the sentinels, which reach the master on their own connections,
   * never announce a change. So the store watches for silence itself, as the single server does: when a command
   * times out and nothing it sent has settled for the socket timeout, a new client is opened (a rediscovery through
   * the sentinels and a new master connection), and takes the silent one's place once ready.
   */
  let unsettledSince: number | undefined;
  let silenceCheckQueued = false;
  /**
   * A command sent on the current client got a reply from its master. A client that never got one and then looks silent
   * may be one whose sentinel names a replica: node-redis answers each READONLY with another rediscovery through the
   * same sentinel (up to 16), so no command settles, the store takes the link for silent, and a replacement asking the
   * same sentinel first reset the watch's clock before it could rotate (under load, for good). Such a replacement asks
   * from the next sentinel on.
   */
  let decidedOnCurrent = false;
  let replacement: Sentinel | undefined;
  /** When the pending replacement was opened. */
  let replacementSince = 0;
  const begin = (s: Sentinel): void => {
    s.on('error', (err: unknown) => {
      if (s !== current) return;
      onError(err);
      probeSentinels(); // a sentinel failing may be all of them failing
    });
    connectInBackground(() => s.connect(), (err) => {
      if (s === current) onError(err);
    }, () => closed || (s !== current && s !== replacement), settings.maxReconnectDelayMs);
  };
  const end = (s: Sentinel): void => void s.destroy().catch(() => undefined);
  /** Replaced clients still closing: ended at once if the store closes first. */
  const retiring = new Set<Sentinel>();
  /**
   * The replaced client is closed, not destroyed: a master that was paused past the bound (not a silent link) answers
   * again on it, and destroying it failed the commands in flight there, already decided by Redis (their tokens taken,
   * the requests answered on_store_error). A link still silent never drains: it is ended after the bound.
   */
  const retire = (s: Sentinel): void => {
    retiring.add(s);
    const bound = setTimeout(() => end(s), socketTimeout);
    bound.unref();
    s.close().then(
      () => undefined,
      () => end(s),
    ).finally(() => {
      clearTimeout(bound);
      retiring.delete(s);
    });
  };
  let rotation = 0;
  let current: Sentinel = open(rotation);

  const openLink = (host: string, port: number) => {
    const client = createClient({ ...masterOptions, socket: { ...masterOptions.socket, host, port }, commandOptions: NO_CLIENT_TIMEOUT });
    // Its failures are the master's, which the Sentinel client reports too: passed on once, from there.
    client.on('error', () => undefined);
    client.connect().catch(() => undefined); // reconnects by itself (nodeClientOptions' strategy) until dropped
    return client;
  };
  type Link = ReturnType<typeof openLink>;
  /** The master link (see the file's comment): a client to the address `key` ("host:port"). */
  let link: { readonly key: string; readonly client: Link } | undefined;
  const dropLink = (): void => {
    const old = link;
    link = undefined;
    if (old !== undefined) destroyClient(old.client);
  };
  /**
   * The link to the master `s` names, ready or not (see whenReady), or undefined when `s` has named none and no link
   * is held: the command then goes through `s`. A new address (a promotion) gets a new link; the old one is ended.
   * `s` names none also while its own master connection reconnects (getMasterNode reports a ready one only): with
   * every sentinel down the master cannot have moved, so the link held is still the way to it. Sending through `s`
   * then waited for a rediscovery that cannot succeed, and met the command timeout: after a stall of the gateway's
   * event loop (both connections' socket timeouts fire before their PONGs are read) requests were refused 503 for
   * the 50-300 ms the reconnects took, the master up (found by a flaky test under a loaded CI).
   */
  const linkFor = (s: Sentinel): Link | undefined => {
    const master = s.getMasterNode();
    if (master === undefined) return link?.client;
    const key = `${master.host}:${master.port}`;
    let held = link;
    if (held?.key !== key) {
      dropLink();
      held = { key, client: openLink(master.host, master.port) };
      link = held;
    }
    return held.client;
  };
  /** The commands waiting for each link's next 'ready': one listener a link, each waiter let go at its deadline. */
  const linkWaiters = new WeakMap<Link, Set<() => void>>();
  /**
   * `client` once ready, if that comes within the command timeout from `sentAt`: a link still connecting, or
   * reconnecting after a socket timeout, is a moment away, and takes no command meanwhile (disableOfflineQueue).
   * Never sent later: the store has answered that command's request as a store error already (on_store_error), and
   * its tokens must not be taken after that answer. A waiter is dropped soon after its deadline: with the master
   * down too, the link is never ready, and waiters kept until it was held every refused command (327 MB after
   * 100,000, and a 1.7 s stall of the event loop when the master came back).
   */
  const whenReady = (client: Link, sentAt: number): Promise<Link> => {
    if (client.isReady) return Promise.resolve(client);
    return new Promise<Link>((resolve, reject) => {
      let waiters = linkWaiters.get(client);
      if (waiters === undefined) {
        const all = new Set<() => void>();
        waiters = all;
        linkWaiters.set(client, all);
        client.once('ready', () => {
          linkWaiters.delete(client);
          for (const wake of all) wake();
        });
      }
      const own = waiters;
      // 10 ms early: the store's timer, set a moment before this sentAt, may fire up to a millisecond early.
      const late = (): boolean => performance.now() - sentAt >= settings.commandTimeoutMs - 10;
      const wake = (): void => {
        clearTimeout(giveUp);
        if (late()) reject(new MasterLinkNotReadyError(settings.commandTimeoutMs));
        else resolve(client);
      };
      // 100 ms past the deadline: the store's own command timeout answers first (and judges the link's silence).
      const giveUp = setTimeout(() => {
        own.delete(wake);
        reject(new MasterLinkNotReadyError(settings.commandTimeoutMs));
      }, Math.max(0, settings.commandTimeoutMs - (performance.now() - sentAt)) + 100);
      giveUp.unref();
      own.add(wake);
    });
  };

  /** No sentinel accepted a connection at the last look: commands go on the master link (see the file's comment). */
  let sentinelsDown = false;
  let probing = false;
  let probedAt = -Infinity;
  const probeSentinels = (): void => {
    if (closed || probing || performance.now() - probedAt < SENTINEL_PROBE_MS) return;
    probing = true;
    probedAt = performance.now();
    void anyAnswers(roots, settings.connectTimeoutMs, tls.tls === true).then((up) => {
      probing = false;
      if (closed) return;
      const wasDown = sentinelsDown;
      sentinelsDown = !up;
      if (up) {
        dropLink();
        // What the client knew of the topology is from before the outage, and it may have missed a promotion made as
        // they came back (a frozen master that then resumes would take writes): a new client asks them afresh, and
        // commands wait for its answer, as for any rediscovery.
        if (wasDown) takeFresh();
        return;
      }
      linkFor(current); // opened now, ready for the next command
      // Looked at again while they stay down, so that commands go back through the Sentinel client once one answers.
      setTimeout(() => {
        probedAt = -Infinity;
        probeSentinels();
      }, SENTINEL_PROBE_MS).unref();
    });
  };

  /** A pending replacement given up (nothing was ever sent on it). */
  const dropReplacement = (): void => {
    const pending = replacement;
    replacement = undefined;
    if (pending !== undefined) end(pending);
  };
  /** `next` takes the current client's place: the old one retired, the link dropped, what was judged of it forgotten. */
  const swapIn = (next: Sentinel): void => {
    const old = current;
    current = next;
    unsettledSince = undefined;
    decidedOnCurrent = false;
    withoutMasterSince = undefined;
    refusedAsReplicaAt = -Infinity;
    dropLink();
    retire(old);
  };
  /** A new client in the current one's place at once; see probeSentinels. */
  const takeFresh = (): void => {
    dropReplacement();
    const next = open(rotation);
    swapIn(next);
    begin(next);
  };

  /** A write refused as a replica's by the master the Sentinel client named, after its own rediscoveries: its sentinel is wrong. */
  let refusedAsReplicaAt = -Infinity;
  /** Since when the current client has had no master it can reach and write to (undefined: it has one). */
  let withoutMasterSince: number | undefined;
  /** Opens a client asking the sentinels from the next one on, in place of a pending one that did no better. */
  const rotate = (): void => {
    if (closed) return;
    dropReplacement();
    rotation = (rotation + 1) % roots.length;
    replaceWith(open(rotation));
  };
  const watch = setInterval(() => {
    if (closed) return;
    const now = performance.now();
    const healthy = current.isReady && current.getMasterNode() !== undefined && now - refusedAsReplicaAt > rotateAfterMs / 2;
    if (healthy) {
      withoutMasterSince = undefined;
      return;
    }
    withoutMasterSince ??= now;
    if (now - withoutMasterSince < rotateAfterMs || roots.length < 2) return;
    withoutMasterSince = now;
    onError(new SentinelMasterUnusable(roots[rotation]!, rotateAfterMs));
    rotate();
  }, Math.max(250, Math.floor(rotateAfterMs / 4)));
  watch.unref();

  /** `next` takes the current client's place once ready (the current one is retired then, its link dropped). */
  const replaceWith = (next: Sentinel): void => {
    replacement = next;
    replacementSince = performance.now();
    next.once('ready', () => {
      if (closed || replacement !== next) return;
      replacement = undefined;
      swapIn(next);
    });
    begin(next);
  };
  /**
   * A replacement still pending after rotateAfterMs will not become ready: the sentinel it asks first cannot help
   * (it names an address that refuses or never answers), and node-redis keeps asking it. It is dropped, and the next
   * sentinel asked first: the watch judges only the current client, which may look healthy meanwhile, so a pending
   * replacement that never became ready kept every later silent link from being replaced (a fix review: no take
   * decided for good after a second silence).
   */
  const replaceSilent = (): void => {
    if (closed) return;
    const stuck = replacement !== undefined && performance.now() - replacementSince >= rotateAfterMs;
    if (replacement !== undefined && !stuck) return;
    if ((stuck || !decidedOnCurrent) && roots.length > 1) rotation = (rotation + 1) % roots.length;
    dropReplacement();
    replaceWith(open(rotation));
    onError(new SilentConnectionError(socketTimeout));
  };
  return {
    send: (_key, args) => {
      const sentOn = current;
      unsettledSince ??= performance.now();
      const settled = (): void => {
        if (sentOn === current) unsettledSince = undefined;
      };
      const decided = (): void => {
        if (sentOn === current) decidedOnCurrent = true;
      };
      const viaSentinel = (): Promise<unknown> =>
        sentOn.sendCommand(false, [...args]).catch((err: unknown) => {
          if (sentOn === current && isReplicaReply(err)) refusedAsReplicaAt = performance.now();
          throw err;
        });
      const direct = sentinelsDown ? linkFor(sentOn) : undefined;
      const sentAt = performance.now();
      const sent =
        direct === undefined
          ? viaSentinel()
          : whenReady(direct, sentAt).then((ready) => ready.sendCommand([...args])).catch((err: unknown) => {
              // A master demoted before the Sentinel client heard of it: the client rediscovers on the refusal
              // and sends the command again (a refused command did nothing). The link follows once it names another.
              if (!isReplicaReply(err)) throw err;
              return viaSentinel();
            });
      return sent.then(
        (reply) => {
          settled();
          decided();
          return reply;
        },
        (err: unknown) => {
          // A full queue's refusal says nothing came back: it is how a silent link looks under a heavy load.
          if (!(err instanceof Error && err.message === 'The queue is full')) settled();
          throw err;
        },
      );
    },
    commandTimedOut() {
      // Decided after this turn of the event loop has read what the sockets hold (see singleServer): a gateway whose
      // own loop stalled must not take a healthy link for a silent one.
      if (closed || silenceCheckQueued) return;
      probeSentinels(); // a command waiting on the Sentinel client's retries: are the sentinels there at all?
      silenceCheckQueued = true;
      setImmediate(() => {
        silenceCheckQueued = false;
        if (closed || !current.isReady || unsettledSince === undefined || performance.now() - unsettledSince < socketTimeout) return;
        replaceSilent();
      });
    },
    get isReady() {
      return current.isReady || link?.client.isReady === true;
    },
    start(errors) {
      onError = errors;
      begin(current);
    },
    async close() {
      closed = true;
      clearInterval(watch);
      if (link !== undefined && link.client.isOpen) await link.client.close().catch(() => dropLink());
      dropLink();
      dropReplacement();
      for (const s of retiring) end(s);
      if (current.isOpen) await current.close();
    },
    destroy() {
      closed = true;
      clearInterval(watch);
      dropLink();
      dropReplacement();
      for (const s of retiring) end(s);
      end(current);
    },
  };
}

/**
 * For `ms` the store had no master it could reach and write to, the sentinels asked from `sentinel` first: they are
 * asked again from the next one on. During a failover this is expected (no master until the promotion); for good, it
 * names the sentinel whose answer kept the store down. Logged as the store's error.
 */
export class SentinelMasterUnusable extends Error {
  constructor(sentinel: { readonly host: string; readonly port: number }, ms: number) {
    super(`no reachable, writable master for ${ms} ms, the sentinels asked from ${sentinel.host}:${sentinel.port} first: asking them again from the next one`);
    this.name = 'SentinelMasterUnusable';
  }
}

/** How often the sentinels are looked at while commands wait on the Sentinel client, or while none answers. */
const SENTINEL_PROBE_MS = 1_000;

/**
 * Whether any of `nodes` answers within `timeoutMs`: a `PING` that gets any reply (`-NOAUTH` too). A sentinel whose
 * machine is paused still accepts connections (the kernel's backlog), and is no more there than one that refuses
 * them. Over TLS (`rediss://`) an accepted connection counts: nothing is spoken before the handshake.
 */
function anyAnswers(nodes: ReadonlyArray<{ readonly host: string; readonly port: number }>, timeoutMs: number, tls: boolean): Promise<boolean> {
  return new Promise((resolve) => {
    let left = nodes.length;
    let settled = false;
    if (left === 0) resolve(false);
    for (const node of nodes) {
      const socket = tcpConnect({ host: node.host, port: node.port });
      let counted = false;
      const done = (answered: boolean): void => {
        socket.destroy();
        if (counted || settled) return;
        counted = true;
        if (answered) {
          settled = true;
          resolve(true);
        } else if (--left === 0) {
          settled = true;
          resolve(false);
        }
      };
      socket.setTimeout(timeoutMs, () => done(false));
      socket.once('connect', () => {
        if (tls) done(true);
        else socket.write('PING\r\n');
      });
      socket.once('data', () => done(true));
      socket.once('error', () => done(false));
      socket.once('close', () => done(false));
    }
  });
}
