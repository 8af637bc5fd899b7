// The one configuration schema: every key, its type, default and range. The TypeScript type is inferred from it.
import { z } from 'zod';
import { parseDuration } from './duration.js';

/** A duration: a number of seconds, or a string such as "500ms", "10s", "15m", "7d". Parsed to milliseconds. */
const duration = z
  .union([z.number(), z.string()])
  .transform((value, ctx) => {
    const ms = parseDuration(value);
    if (ms === undefined) {
      ctx.addIssue({ code: 'custom', message: 'must be a duration like 500ms, 10s, 15m, 7d or a number of seconds' });
      return z.NEVER;
    }
    return ms;
  });

const port = z.number().int().min(1, 'must be between 1 and 65535').max(65535, 'must be between 1 and 65535');
/** A port to listen on; 0 picks a free one (tests). */
const listenPort = z.number().int().min(0, 'must be between 0 and 65535').max(65535, 'must be between 0 and 65535');
const positiveInt = z.number().int().positive();

const upstream = z
  .object({
    name: z.string().min(1),
    address: z.string().min(1),
    port,
    weight: z.number().int().min(1).max(1000).default(1),
  })
  .strict();

const healthCheck = z
  .object({
    enabled: z.boolean().default(true),
    /** Path of the active HTTP GET probe. Any status below 500 counts as healthy (the server answered). */
    path: z.string().startsWith('/').default('/'),
    interval: duration.default(5_000),
    timeout: duration.default(2_000),
    healthy_threshold: positiveInt.default(2),
    unhealthy_threshold: positiveInt.default(2),
    /** How long a connection failure or timeout keeps an upstream out of rotation (passive check). */
    passive_cooldown: duration.default(10_000),
  })
  .strict();

const timeouts = z
  .object({
    /** Time a client has to send the request headers (slowloris guard). */
    header: duration.default(10_000),
    /** Time a client has to send the whole request, body included; 0 disables. */
    request: duration.default(300_000),
    /** Keep-alive idle time of a client connection. */
    idle: duration.default(5_000),
    /** Time to open a TCP connection to an upstream. */
    upstream_connect: duration.default(5_000),
    /** Time an upstream has to send its response headers; exceeding it gives 504. */
    upstream_response: duration.default(30_000),
    /** Longest silence between two body chunks of an upstream response. */
    upstream_body: duration.default(60_000),
    /** How long a shutdown waits for in-flight requests before closing their connections. */
    shutdown_drain: duration.default(10_000),
  })
  .strict();

const rateLimitRule = z
  .object({
    requests_per_minute: positiveInt,
    burst_size: positiveInt,
  })
  .strict();

export const configSchema = z
  .object({
    server: z
      .object({
        listen_host: z.string().default('0.0.0.0'),
        listen_port: listenPort.default(8080),
        max_connections: positiveInt.default(1000),
        /** Worker processes sharing the port: a number, or "auto" for one per core. */
        workers: z.union([positiveInt, z.literal('auto')]).default(1),
        /** Value of the X-Proxy-By response header. */
        proxy_by: z.string().min(1).default('Portcullis'),
        /** Peers (IPs or CIDRs) whose X-Forwarded-* headers are believed. Empty: trust no one. */
        trusted_proxies: z.array(z.string()).default([]),
        timeouts: timeouts.prefault({}),
      })
      .strict()
      .prefault({}),
    database: z
      .object({
        /** Empty: embedded SQLite in the data dir. Otherwise a postgres:// URL. */
        url: z.string().default(''),
        pool_size: positiveInt.default(10),
      })
      .strict()
      .prefault({}),
    redis: z
      .object({
        /** Empty: in-process memory store. Otherwise a redis:// URL. */
        url: z.string().default(''),
        /** Longest wait for one Redis command before the store-error policy applies. */
        command_timeout: duration.default(500),
        /** Prepended to every Redis key, so several deployments (or test runs) can share one Redis. */
        key_prefix: z.string().min(1).max(128).default('portcullis:'),
      })
      .strict()
      .prefault({}),
    jwt: z
      .object({
        /** HS256 secret, at least 32 bytes. Empty with HS256: one is generated once and kept in the data dir. */
        secret: z.string().default(''),
        algorithm: z.enum(['HS256', 'EdDSA', 'RS256']).default('HS256'),
        /** PEM files for EdDSA or RS256; the public key is published at /.well-known/jwks.json. */
        private_key_file: z.string().default(''),
        public_key_file: z.string().default(''),
        issuer: z.string().min(1).default('portcullis'),
        audience: z.string().min(1).default('portcullis'),
        access_token_expiration: duration.default(900_000),
        refresh_token_expiration: duration.default(604_800_000),
        /** How long a just-rotated refresh token may be presented again (lost response) without revoking its family. */
        refresh_reuse_grace: duration.default(10_000),
      })
      .strict()
      .prefault({}),
    load_balancing: z
      .object({
        strategy: z.enum(['round_robin', 'random', 'least_conn']).default('round_robin'),
        upstreams: z.array(upstream).min(1, 'at least one upstream is required'),
        /** Extra attempts on another upstream when a connection fails before any response byte. */
        retries: z.number().int().min(0).max(5).default(1),
        /** Keep-alive connections per upstream. */
        connections_per_upstream: positiveInt.default(128),
        health_check: healthCheck.prefault({}),
      })
      .strict(),
    middleware: z
      .object({
        auth: z
          .object({
            enabled: z.boolean().default(false),
            auth_type: z.literal('jwt').default('jwt'),
            /** Paths reachable without a token (exact, or a prefix when ending in "*"). /health is always public. */
            public_paths: z.array(z.string().startsWith('/')).default([]),
            user_id_header: z.string().min(1).default('X-User-Id'),
            user_email_header: z.string().min(1).default('X-User-Email'),
            password_min_length: z.number().int().min(8).max(128).default(8),
            /** Optional composition rule, off by default (NIST SP 800-63B). */
            password_require_mixed: z.boolean().default(false),
            /** argon2id cost; OWASP's recommended minimum by default. */
            argon2: z
              .object({
                memory_kib: z.number().int().min(1024).default(19_456),
                iterations: z.number().int().min(1).default(2),
                parallelism: z.number().int().min(1).default(1),
              })
              .strict()
              .default({ memory_kib: 19_456, iterations: 2, parallelism: 1 }),
            /** When the revocation list cannot be read: deny (refuse the token) or allow. */
            on_store_error: z.enum(['allow', 'deny']).default('deny'),
            /** How often expired sessions are deleted. */
            session_cleanup_interval: duration.default(3_600_000),
          })
          .strict()
          .prefault({}),
        rate_limit: z
          .object({
            enabled: z.boolean().default(false),
            requests_per_minute: positiveInt.default(100),
            burst_size: positiveInt.default(10),
            /** When the bucket store (Redis) cannot be reached: allow the request, or deny it with 503. */
            on_store_error: z.enum(['allow', 'deny']).default('allow'),
            /** The stricter bucket for /auth/* (keyed by client address, and by email on login). */
            auth: rateLimitRule.default({ requests_per_minute: 20, burst_size: 5 }),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    logging: z
      .object({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
        /** auto: readable on a terminal, JSON otherwise. */
        format: z.enum(['auto', 'json', 'pretty']).default('auto'),
        /** The per-request events (Request Start, Select Upstream, Request Completed), like nginx's access_log. */
        access_log: z.boolean().default(true),
      })
      .strict()
      .prefault({}),
    admin: z
      .object({
        enabled: z.boolean().default(true),
        listen_host: z.string().default('127.0.0.1'),
        listen_port: listenPort.default(9090),
      })
      .strict()
      .prefault({}),
  })
  .strict();

/** The validated configuration, durations in milliseconds. */
export type Config = z.infer<typeof configSchema>;
export type UpstreamConfig = Config['load_balancing']['upstreams'][number];
export type StrategyName = Config['load_balancing']['strategy'];
