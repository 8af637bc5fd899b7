// A Redis Cluster through node-redis's own createCluster: seed nodes, slot routing, MOVED/ASK, failover discovery,
// plus a short retry of TRYAGAIN, which node-redis passes through, and a start that does not wait for every master.
import { createCluster } from '@redis/client';
import { isErrorReply } from './describe.js';
import { hashSlot } from './redis-keys.js';
import { connectInBackground, nodeClientOptions, NO_CLIENT_TIMEOUT, silenceBound, SilentConnectionError, type NodeSettings, type RedisConnection } from './redis-connection.js';
import { NodeHealth, type NodeAddress } from './redis-node-health.js';

/** TRYAGAIN retries: a multi-key command on a slot being migrated; the migration moves on within milliseconds. */
const TRYAGAIN_ATTEMPTS = 5;
const TRYAGAIN_DELAY_MS = 20;

/**
 * How long a node may be reconnecting before the client asks the other nodes for the slot map again. Short, so a
 * promoted replica is found soon after the cluster elects it (node-redis's default waits 5 s).
 */
const TOPOLOGY_REFRESH_AFTER_MS = 300;

/**
 * How often the slot map is asked for again while commands meet a master whose connection never worked, or time out
 * on one. node-redis refreshes on its own only when a connection it once had breaks, so without this a master that
 * was down when the gateway started, or froze while it ran, kept its slots failing after the cluster had promoted
 * its replica.
 */
const DOWN_MASTER_REFRESH_EVERY_MS = 1_000;

/** How often a silence probe refused by a full command queue asks again (probeSilence). */
const FULL_QUEUE_RETRY_MS = 100;

/** A command for a slot whose master cannot be reached now; fails at once instead of waiting for the connection. */
export class ClusterNodeUnavailableError extends Error {
  constructor() {
    super('redis cluster node not connected');
    this.name = 'ClusterNodeUnavailableError';
  }
}

/**
 * Credentials and TLS from the first seed URL: node-redis uses the seeds only to discover the cluster, so what every
 * node connection needs must go into `defaults`. All nodes of one cluster share one password in practice.
 */
function credentialsOf(seed: string): { username?: string; password?: string; tls: boolean } {
  const url = new URL(seed);
  return {
    ...(url.username !== '' ? { username: decodeURIComponent(url.username) } : {}),
    ...(url.password !== '' ? { password: decodeURIComponent(url.password) } : {}),
    tls: url.protocol === 'rediss:',
  };
}

/** node-redis's refusal of a command while `commandsQueueMaxLength` commands wait on the connection. */
function isQueueFull(err: unknown): boolean {
  return err instanceof Error && err.message === 'The queue is full';
}

function isTryAgain(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('TRYAGAIN');
}

/** A Redis Cluster found from `seeds` (config `redis.cluster`); commands go to the master of their key's slot. */
export function redisCluster(seeds: readonly string[], settings: NodeSettings): RedisConnection {
  const { tls, ...credentials } = credentialsOf(seeds[0] as string);
  const node = nodeClientOptions(settings);
  const cluster = createCluster({
    // The seeds are asked for the slot map only, each over a connection of its own. A seed that accepts the
    // connection and never answers (a frozen process) must not hold the discovery forever: the socket timeout ends
    // it and the next seed is asked. Node connections have no such timeout (an idle one is healthy).
    rootNodes: seeds.map((url) => ({ url, socket: { connectTimeout: settings.connectTimeoutMs, socketTimeout: settings.connectTimeoutMs } })),
    defaults: { ...node, ...credentials, socket: { ...node.socket, ...(tls ? { tls: true as const } : {}) } },
    commandOptions: NO_CLIENT_TIMEOUT,
    topologyRefreshOnReconnectionAttemptStrategy: TOPOLOGY_REFRESH_AFTER_MS,
    // Without this, node-redis's discovery waits until it is connected to every master: one master down or frozen
    // at start-up left the whole store unready (every slot) until that node answered. The masters are connected
    // right after the discovery instead (warmUp below), and each slot's readiness is its own master's.
    minimizeConnections: true,
  });
  const health = new NodeHealth(settings.connectTimeoutMs);
  const { socketTimeout: silentMs } = silenceBound(settings);
  let closed = false;
  let onError: (err: unknown) => void = () => undefined;
  let warm = false;
  let lastRefreshAt = -Infinity; // performance.now() time: the first refresh is never held back

  type ShardNode = (typeof cluster.masters)[number];
  type NodeClient = NonNullable<ShardNode['client']>;
  /** The node clients a close() in progress is waiting for (see close()). */
  let closing: NodeClient[] = [];
  const nodeClients = (): NodeClient[] => [...cluster.masters, ...cluster.replicas].flatMap((n) => (n.client === undefined ? [] : [n.client]));
  /**
   * Opens `master`'s connection unless the store is closing: a discovery still in flight when close() ran fills the
   * slot map again, and a connection opened from it would retry forever and hold the process open.
   */
  const connectTo = (master: ShardNode): void => {
    if (closed || !cluster.isOpen) return;
    cluster.nodeClient(master).catch(() => undefined);
  };

  /** Opens the connection to every master of the slot map, without waiting for any. */
  const warmUp = (): void => {
    for (const master of cluster.masters) connectTo(master);
  };

  /**
   * Asks a live node for the slot map again, at most once a second (see DOWN_MASTER_REFRESH_EVERY_MS), never one
   * that is failing or `suspect` (a master that let a command time out): node-redis asks a connected node first, and
   * a frozen one accepts the discovery's connection and never answers, which would hold every later discovery.
   */
  const refreshSlotMap = (suspect?: string): void => {
    // Monotonic: on the wall clock a step back (NTP, a restored snapshot) put every later refresh "before" the last
    // one, and none was made until the clock had caught up: a frozen master's slots failed long after the promotion.
    const now = performance.now();
    if (closed || now - lastRefreshAt < DOWN_MASTER_REFRESH_EVERY_MS) return;
    lastRefreshAt = now;
    const excluded = new Set(cluster.masters.map((m) => m.address).filter((address) => health.failing(address)));
    if (suspect !== undefined) excluded.add(suspect);
    // `_slots` is node-redis's slot map; its rediscover() is what node-redis itself calls on MOVED.
    cluster._slots.rediscover(undefined, excluded).then(warmUp, () => undefined);
  };

  /**
   * The node connections a silence probe is waiting on (probeSilence), each with whether anything came back on it
   * since the probe began: a reply or an error reply to a command of its slots (heardFrom), or the PING's own.
   */
  const probes = new Map<object, { answered: boolean }>();
  /** A reply came for `key`: its master's connection is not silent (read only while a probe waits). */
  const heardFrom = (key: string): void => {
    const client = cluster.slots[hashSlot(key)]?.master.client;
    const probe = client === undefined ? undefined : probes.get(client);
    if (probe !== undefined) probe.answered = true;
  };
  /**
   * Whether `master`'s connection has gone silent. A link a NAT or firewall dropped without FIN or RST never fails by
   * itself (node connections have no socket timeout: an idle one is healthy, and under load every command written
   * counts as activity), so a master that was still up, and reachable on a new connection, kept its slots failing
   * at the command timeout until the kernel gave the socket up (about 15 minutes), and the slot map never moved (the
   * cluster bus saw nothing wrong). After a command timeout a PING is sent on that connection; its reply comes after
   * those of every command before it, so if none comes within silenceBound, nothing is coming back: the connection
   * is ended and the next command of those slots opens a new one. Costs nothing while commands are answered. The
   * verdict waits for the next check phase (setImmediate), after the poll phase has read the sockets: in a gateway
   * whose own loop stalled past the bound, the overdue timer runs before the PING's waiting reply is read.
   */
  const probeSilence = (master: ShardNode): void => {
    const client = master.client;
    if (closed || client === undefined || !client.isReady || probes.has(client)) return;
    const probe = { answered: false };
    probes.set(client, probe);
    const sentAt = performance.now();
    const ping = (): void => {
      client.sendCommand(['PING']).then(
        () => void (probe.answered = true),
        (err: unknown) => {
          // Any failure but a full queue (closed, reset) is not silence: node-redis reconnects by itself.
          if (!isQueueFull(err)) probe.answered = true;
          // Refused because maxPendingCommands wait on the connection: under a heavy load that is how a silent link
          // looks by the time a command times out, but so does a busy master's, whose every reply frees a place the
          // next command takes at once. Asked again until there is room or a command of its slots is answered
          // (heardFrom: that busy master was taken for silent and its connection ended, the commands in flight on it
          // failed, after each timeout); still full and nothing heard at the bound, nothing came back.
          else if (!closed && !probe.answered && performance.now() - sentAt < silentMs - FULL_QUEUE_RETRY_MS) setTimeout(ping, FULL_QUEUE_RETRY_MS).unref();
        },
      );
    };
    ping();
    setTimeout(() => setImmediate(() => {
      probes.delete(client);
      if (probe.answered || closed || master.client !== client) return;
      // As node-redis's own discovery drops a node's client: the next nodeClient() makes a new one.
      master.client = undefined;
      client.destroy();
      health.failed({ host: master.host, port: master.port });
      onError(new SilentConnectionError(silentMs));
    }), silentMs).unref();
  };

  /** When each node connection was first found not ready by a command (stalledHandshake). */
  const unreadySince = new WeakMap<object, number>();
  /**
   * Whether `client` has been not ready for longer than the silence bound. A connection opened while the link was
   * silent (a middlebox or a frozen process accepts it and never answers its handshake) waits for that reply
   * without a bound, node connections having no socket timeout: the link's return changed nothing and the master's
   * slots failed until the kernel gave the socket up. Such a connection is given up for a new one, once per bound.
   */
  const stalledHandshake = (client: { once(event: 'ready', listener: () => void): unknown }): boolean => {
    const now = performance.now();
    const since = unreadySince.get(client);
    if (since === undefined) {
      unreadySince.set(client, now);
      // Forgotten once it is ready: a later, ordinary reconnect of the same client starts its own count, and is left
      // to node-redis's reconnect for the bound rather than destroyed by the first command that finds it not ready.
      client.once('ready', () => unreadySince.delete(client));
    }
    return since !== undefined && now - since > silentMs;
  };

  /** Fails at once when `master` cannot take commands now (connection refused, timed out or never answered). */
  const assertReachable = (master: ShardNode | undefined): void => {
    if (master === undefined) throw new ClusterNodeUnavailableError();
    if (master.client?.isReady === true || !health.failing(master.address)) return;
    // Its connection retries by itself; a lost client (destroyed by a rediscovery) is opened again, and so is one
    // whose handshake was never answered (stalledHandshake).
    if (master.client === undefined || stalledHandshake(master.client)) {
      master.client?.destroy();
      master.client = undefined;
      connectTo(master);
    }
    refreshSlotMap();
    throw new ClusterNodeUnavailableError();
  };

  /**
   * A keyless command (PING) goes to every master that is connected, and the first reply is its answer, so readiness
   * means "some slots answer". A frozen master's connection stays open and ready, and the command sent to the first
   * connected master alone timed out while the others answered: /ready said 503 for as long as that master was
   * frozen, after its replica's promotion too. Before any master is connected it goes to the first one that
   * connects: a master that is down but not known to be yet would hold it until the command timeout.
   */
  const sendKeyless = async (args: readonly string[]): Promise<unknown> => {
    const ready = cluster.masters.filter((m) => m.client?.isReady === true);
    if (ready.length > 0) {
      return Promise.any(ready.map(async (m) => (await cluster.nodeClient(m)).sendCommand([...args]))).catch((err: unknown) => {
        throw err instanceof AggregateError ? err.errors[0] : err;
      });
    }
    const candidates = cluster.masters.filter((m) => !health.failing(m.address));
    if (candidates.length === 0) throw new ClusterNodeUnavailableError();
    const client = await Promise.any(candidates.map((m) => cluster.nodeClient(m))).catch(() => {
      throw new ClusterNodeUnavailableError();
    });
    return client.sendCommand([...args]);
  };

  /**
   * Sends one command; while a silence probe waits (rarely: after a command timeout), a reply to a keyed command tells
   * it that the key's master answers. Nothing is added to a command's path otherwise.
   */
  const send = (key: string | undefined, args: readonly string[]): Promise<unknown> => {
    const reply = route(key, args);
    if (probes.size === 0 || key === undefined) return reply;
    return reply.then(
      (value) => {
        heardFrom(key);
        return value;
      },
      (err: unknown) => {
        if (err instanceof Error && isErrorReply(err)) heardFrom(key);
        throw err;
      },
    );
  };

  const route = async (key: string | undefined, args: readonly string[]): Promise<unknown> => {
    if (!cluster.isReady) throw new ClusterNodeUnavailableError();
    if (key === undefined) return sendKeyless(args);
    // The slot's master is looked up (a CRC16 of the key, which node-redis computes again) only while some node is
    // failing: with every node healthy no command can fail fast.
    if (!health.quiet) assertReachable(cluster.slots[hashSlot(key)]?.master);
    // node-redis routes by the server's command tips, not by the key it is given: a command that names no key
    // (ROLE, WAIT) goes to an arbitrary node, or to every master. Ours must reach the master of `key`, the one that
    // took the write just before (WAIT counts the writes of its own connection), so it is sent to that node's client,
    // the same connection the keyed commands of that slot use.
    if (!args.includes(key)) return (await cluster.getNodeClientForKey(key)).sendCommand([...args]);
    for (let attempt = 1; ; attempt++) {
      try {
        return await cluster.sendCommand(key, false, [...args]);
      } catch (err) {
        if (!isTryAgain(err) || attempt >= TRYAGAIN_ATTEMPTS || closed) throw err;
        await new Promise((resolve) => setTimeout(resolve, TRYAGAIN_DELAY_MS * attempt));
      }
    }
  };

  return {
    send,
    commandTimedOut(key) {
      if (key === undefined || !cluster.isReady) return;
      // The master may be frozen (its connection stays open and never fails, so node-redis refreshes nothing) and
      // the cluster may have promoted its replica meanwhile: only another node can say so.
      const master = cluster.slots[hashSlot(key)]?.master;
      refreshSlotMap(master?.address);
      if (master !== undefined) probeSilence(master);
    },
    /**
     * Ready once the slot map is known and every master has either answered or failed its first connection: a
     * missing master costs its own slots, not the start of the whole store.
     */
    get isReady() {
      if (!cluster.isReady) return false;
      warm ||= cluster.masters.every((m) => m.client?.isReady === true || health.failing(m.address));
      return warm;
    },
    start(errors) {
      onError = errors;
      cluster.on('error', onError);
      // A node's own connection errors (a dead master: ECONNREFUSED; a bad password: WRONGPASS) arrive as
      // 'node-error', not 'error': without this the store never learnt why a slot's commands failed.
      cluster.on('node-error', (err: unknown, node: NodeAddress) => {
        health.failed(node);
        onError(err);
      });
      cluster.on('node-reconnecting', (node: NodeAddress) => health.failed(node));
      cluster.on('node-connect', (node: NodeAddress) => health.connecting(node));
      cluster.on('node-ready', (node: NodeAddress) => health.ready(node));
      connectInBackground(() => cluster.connect().then(warmUp), onError, () => closed, settings.maxReconnectDelayMs);
    },
    async close() {
      closed = true;
      if (!cluster.isOpen) return;
      // node-redis's close() empties the slot map at once, so a destroy() after it (the store's escalation when
      // close takes too long) would find no client to end: remember them.
      closing = nodeClients();
      // A node connection that never became ready has no command of ours on the wire (its slots fail fast), only its
      // handshake: on a frozen node (accepted, never answering) a graceful close waits for that reply forever and
      // its socket keeps the process alive.
      for (const client of closing) if (!client.isReady) client.destroy();
      await cluster.close();
    },
    destroy() {
      closed = true;
      if (cluster.isOpen) cluster.destroy();
      for (const client of closing) client.destroy();
      closing = [];
    },
  };
}
