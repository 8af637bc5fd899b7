// Every log event name the gateway writes, in one place (the seed's three request events first).

export const EVENTS = {
  requestStart: 'Request Start',
  selectUpstream: 'Select Upstream',
  requestCompleted: 'Request Completed',
  /** A WebSocket tunnel closed (its request was logged at the 101): its duration, bytes and who ended it. */
  tunnelClosed: 'Tunnel Closed',
  upstreamRetry: 'Upstream Retry',
  upstreamDown: 'Upstream Down',
  upstreamUp: 'Upstream Up',
  upstreamUnhealthy: 'Upstream Unhealthy',
  /** A failure of this host's own limits (EMFILE, ENFILE, ENOBUFS, ENOMEM) began: once per episode (resource-episodes.ts). */
  localResourcesExhausted: 'Local Resources Exhausted',
  /** No such failure for 5 s: the episode is over, with how many failures it had. */
  localResourcesRecovered: 'Local Resources Recovered',
  /** server.max_connections needs more descriptors than RLIMIT_NOFILE allows (descriptor-limit.ts): at start and reload. */
  descriptorLimitLow: 'Descriptor Limit Low',
  gatewayStarted: 'Gateway Started',
  gatewayStopping: 'Gateway Stopping',
  gatewayStopped: 'Gateway Stopped',
  configReloaded: 'Config Reloaded',
  configRejected: 'Config Rejected',
  /** A multi-worker gateway's worker prepared a reload and holds it until its primary has every worker commit it (debug). */
  configPrepared: 'Config Prepared',
  /** A reload asked for while another ran: it runs after that one (or joins the one already waiting). */
  reloadQueued: 'Reload Queued',
  /** A reload still preparing when a shutdown started: given up, nothing of it applied. */
  reloadAbandoned: 'Reload Abandoned',
  requestError: 'Request Error',
  /** A refresh token rotated past its grace presented again: its session revoked (warn; auth/service.ts). */
  refreshTokenReused: 'Refresh Token Reused',
  /** A user's logout of every session (info). */
  allSessionsRevoked: 'All Sessions Revoked',
  kvStoreUnavailable: 'KV Store Unavailable',
  /** The SQLite user store's file (or its -wal, -shm) deleted or replaced under the gateway: the store refuses until a restart. */
  userStoreFileLost: 'User Store File Lost',
  kvStoreRecovered: 'KV Store Recovered',
  adminError: 'Admin Request Error',
  /** A metric left out of an admin /metrics scrape: its collection threw, rejected or took over 2 s. */
  metricCollectFailed: 'Metric Collect Failed',
  traceExportFailed: 'Trace Export Failed',
  traceExportRecovered: 'Trace Export Recovered',
  traceQueueFull: 'Trace Queue Full',
  /** Audit: an operator acted on a user or API key (admin API or CLI). */
  adminAction: 'admin_action',
  /** A committed admin action whose revocation the revocation store (Redis) refused: to be written later. */
  revocationPending: 'Revocation Pending',
  /** The change poller wrote the revocations that had been pending. */
  revocationsApplied: 'Revocations Applied',
  /** The revocation store (Redis) lost its data under a running gateway: the change log's revocations are written again. */
  revocationsLost: 'Revocations Lost',
  /** The revocation store (Redis) may evict keys under memory pressure (maxmemory with a policy but noeviction). */
  redisMayEvictRevocations: 'Redis May Evict Revocations',
  /**
   * A connection the proxy port answered, or closed, with no request of the driver's behind it (the HTTP/1 parser's
   * 400, 408, 431; the per-client cap; too many pipelined requests waiting): the access log has no line for it.
   */
  connectionRefused: 'Connection Refused',
  // TLS and HTTP/2
  http2Abuse: 'HTTP2 Connection Refused',
  upstreamTlsFailed: 'Upstream TLS Failed',
  /**
   * A WebSocket to an HTTP/2 service's upstream, sent over HTTP/1.1 as always, was refused in ALPN: the upstream speaks
   * h2 alone. At most once per upstream per minute (pipeline/upstream-tls-log.ts), with the refusals since the last.
   */
  upstreamNoHttp1ForWebSocket: 'Upstream Has No HTTP/1.1 For WebSocket',
  upstreamTlsUnverified: 'Upstream TLS Verification Off',
  certificatesReloaded: 'Certificates Reloaded',
  /** A cert_file holds the server's certificate without the intermediate that issued it (tls/chain-check.ts): warn. */
  certificateChainIncomplete: 'Certificate Chain Incomplete',
  pluginFailed: 'Plugin Failed',
  pluginTimedOut: 'Plugin Timed Out',
  pluginClosed: 'Plugin Closed',
  /** Requests still ran on a reload's retired plugin instances after server.timeouts.shutdown_drain: closed anyway. */
  pluginDrainTimedOut: 'Plugin Drain Timed Out',
  accessLogReopenFailed: 'Access Log Reopen Failed',
  /** Writes to the access-log file began to fail (ENOSPC, EIO): once per episode, on the process log (access-log-episodes.ts). */
  accessLogWriteFailed: 'Access Log Write Failed',
  /** Writes to it succeed again and none failed for 5 s: the episode is over, with its failures and the lines dropped. */
  accessLogWriteRecovered: 'Access Log Write Recovered',
} as const;

export type EventName = (typeof EVENTS)[keyof typeof EVENTS];
