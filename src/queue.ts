// What both sides of the queue agree on: connections, the Redis keys sandpool keeps beside
// BullMQ's, job ids, typed errors, and the Results a job gets without running. Used by the client
// (caller's process) and by the worker process (workers/processor.ts, workers/main.ts).
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { hostname } from 'node:os';
import type { RedisOptions as BullRedisOptions } from 'bullmq';
import { Redis, type RedisOptions, type StandaloneConnectionOptions } from 'ioredis';
import { compileLimits, type Limits } from './limits.ts';
import { TENANT_ID_PATTERN, validationReasons, type RequestIssue } from './request.ts';
import { queueTimeoutError, resultWithoutRun, type Metrics, type Result } from './result.ts';

/** A Redis URL (`redis://`, `rediss://` for TLS, user and password for AUTH/ACL) or ioredis options. */
export type Connection = string | RedisOptions;

export const DEFAULT_QUEUE = 'sandpool';
/** BullMQ's default, so a plain BullMQ producer reaches the same queue without configuration. */
export const DEFAULT_PREFIX = 'bull';
/** The BullMQ job name sandpool's client uses; workers accept any name. */
export const JOB_NAME = 'execute';

/**
 * The keys BullMQ keeps beside its job hashes under `<prefix>:<queue>:`, each with the one Redis
 * type it may have (undefined: a prefix of further keys, not a key). A job id never names one.
 */
export const BULLMQ_KEY_TYPES: Readonly<Record<string, string | undefined>> = Object.freeze({
  wait: 'list', paused: 'list', active: 'list', delayed: 'zset', prioritized: 'zset', completed: 'zset',
  failed: 'zset', 'waiting-children': 'zset', stalled: 'set', marker: 'zset', meta: 'hash', id: 'string',
  limiter: 'string', 'stalled-check': 'string', pc: 'string', events: 'stream', repeat: 'zset',
  de: undefined, metrics: undefined,
});

/** The longest job id the client reads or cancels; a worker drops longer ids heard on the cancel channel. */
export const MAX_CANCEL_ID_CHARS = 256;

/** Stable error codes of the queue side; never renamed or reused. */
export const QUEUE_ERROR_CODES = Object.freeze([
  'INVALID_REQUEST',
  'QUEUE_FULL',
  'TENANT_QUEUE_FULL',
  'REDIS_UNAVAILABLE',
  'WAIT_TIMEOUT',
  'CLIENT_CLOSED',
] as const);
export type QueueErrorCode = (typeof QUEUE_ERROR_CODES)[number];

/** A failed system on the queue side (a failed snippet is a Result, not this). */
export class QueueError extends Error {
  override name = 'QueueError';
  readonly code: QueueErrorCode;
  /** For INVALID_REQUEST: the bad fields. */
  readonly issues: readonly RequestIssue[];
  /** The job concerned, when there is one. */
  readonly jobId: string | undefined;

  constructor(
    code: QueueErrorCode,
    message: string,
    detail: { issues?: readonly RequestIssue[]; jobId?: string; cause?: unknown } = {},
  ) {
    super(message, detail.cause === undefined ? undefined : { cause: detail.cause });
    this.code = code;
    this.issues = detail.issues ?? [];
    this.jobId = detail.jobId;
  }
}

/**
 * `connection` as createClient/createWorker take it, or a TypeError naming `options.connection`: a
 * redis:// or rediss:// URL, or a plain object of ioredis options. Anything else used to fall
 * through to ioredis's default of localhost:6379, a Redis nobody configured. `keyPrefix` is
 * refused: BullMQ's lists would take it while sandpool's own keys and BullMQ's job hashes would
 * not (the queue's `prefix` is the one to set).
 */
export function checkConnection(connection: unknown): Connection {
  if (typeof connection === 'string') {
    let url: URL | undefined;
    try {
      url = new URL(connection);
    } catch {
      url = undefined;
    }
    if (url === undefined || (url.protocol !== 'redis:' && url.protocol !== 'rediss:') || url.hostname === '') {
      throw new TypeError('options.connection: expected a redis:// or rediss:// URL with a host, or ioredis options');
    }
    return connection;
  }
  if (typeof connection !== 'object' || connection === null || Array.isArray(connection) || !isPlainObject(connection)) {
    const got = connection === null ? 'null' : Array.isArray(connection) ? 'an array' : connection instanceof URL ? 'a URL object (pass its href)' : typeof connection;
    throw new TypeError(`options.connection: expected a redis:// or rediss:// URL, or a plain object of ioredis options; got ${got}`);
  }
  if ('keyPrefix' in connection) {
    throw new TypeError("options.connection.keyPrefix: not supported (BullMQ's keys would take it and others not); set the queue's prefix instead");
  }
  return connection as RedisOptions;
}

function isPlainObject(value: object): boolean {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * `error` with Redis's last error appended when it does not say it already: a failed connect's own
 * message ("Connection is closed", a timeout) does not say why; the client's 'error' event does
 * (WRONGPASS, ECONNREFUSED).
 */
export function withRedisCause(error: unknown, last: Error | undefined): unknown {
  const why = last?.message;
  if (!(error instanceof QueueError) || why === undefined || error.message.includes(why)) return error;
  return new QueueError(error.code, `${error.message} (${why.slice(0, 300)})`, { cause: error });
}

// ioredis's connector is a CommonJS default export, not re-exported by its index (its package has no
// exports map to forbid the path); require() reads it the same way under every loader.
type StandaloneConnectorClass = typeof import('ioredis/built/connectors/StandaloneConnector.js').default;
const { default: StandaloneConnector } = createRequire(import.meta.url)('ioredis/built/connectors/StandaloneConnector.js') as {
  default: StandaloneConnectorClass;
};

/**
 * ioredis's own connector for a host and port, whose socket never throws an error nobody listens
 * for. ioredis listens for a socket's first error only (once, twice over): a TLS handshake that
 * fails can emit a second (the server's alert after the client refused its certificate, 1 in 40
 * tries of a rediss:// URL to a self-signed server here), which then threw out of the event loop
 * and ended the process — a worker, or the embedded caller's own program — over a wrong URL. Any
 * later error is ignored here: ioredis has already heard the first and handles the close.
 */
class GuardedConnector extends StandaloneConnector {
  // ioredis constructs a connector from the whole of its options.
  constructor(options: unknown) {
    super(options as StandaloneConnectionOptions);
  }

  override connect(...args: Parameters<InstanceType<typeof StandaloneConnector>['connect']>) {
    return super.connect(...args).then((stream) => {
      stream.on('error', () => {});
      return stream;
    });
  }
}

/** `extra` with GuardedConnector, unless the options pick their own connector or Redis Sentinel. */
function guarded(connection: Connection, extra: RedisOptions): RedisOptions {
  if (typeof connection !== 'string' && (connection.Connector !== undefined || connection.sentinels !== undefined)) return extra;
  return { Connector: GuardedConnector, ...extra };
}

/** Options BullMQ takes for the same connection. */
export function bullConnection(connection: Connection, extra: RedisOptions = {}): BullRedisOptions {
  const options = guarded(connection, extra);
  return (typeof connection === 'string' ? { url: connection, ...options } : { ...connection, ...options }) as BullRedisOptions;
}

/** A plain ioredis client for sandpool's own keys and the cancel channel. */
export function createRedis(connection: Connection, extra: RedisOptions = {}): Redis {
  const guardedExtra = guarded(connection, extra);
  // ioredis's own option type trips exactOptionalPropertyTypes (its fields are optional, not undefined).
  const options = (typeof connection === 'string' ? guardedExtra : { ...connection, ...guardedExtra }) as {};
  return typeof connection === 'string' ? new Redis(connection, options) : new Redis(options);
}

/** Keys sandpool keeps next to BullMQ's. They share the prefix, so a hash-tag prefix keeps one slot. */
export function queueKeys(prefix: string, queue: string) {
  const base = `${prefix}:${queue}:sandpool`;
  return Object.freeze({
    /** Pub/sub channel: a job id published here is cancelled wherever it runs. */
    cancelChannel: `${base}:cancel`,
    /** String per cancelled job: JSON {tenantId, result}; a worker that picks it up ends it. */
    cancelled: (jobId: string) => `${base}:cancelled:${jobId}`,
    /** Sorted set per tenant of its jobs still waiting (score: submit time), for backpressure. */
    tenantQueued: (tenantId: string) => `${base}:queued:${tenantId}`,
  });
}
export type QueueKeys = ReturnType<typeof queueKeys>;

/** How long a cancel mark outlives the cancel: any worker picking the job up later still sees it. */
export const CANCEL_MARK_TTL_SECONDS = 24 * 3600;

/**
 * The job id for an idempotency key: the same tenant and key always give the same job. Hashed
 * because BullMQ ids cannot hold ':' and keys are caller-chosen text.
 */
export function idempotentJobId(tenantId: string, idempotencyKey: string): string {
  return `idem-${createHash('sha256').update(`${tenantId}\u0000${idempotencyKey}`).digest('hex').slice(0, 40)}`;
}

/** sha256 of the code, first 16 hex: enough to correlate log lines, never the code itself. */
export function codeHash(code: string | undefined): string | undefined {
  return code === undefined ? undefined : createHash('sha256').update(code).digest('hex').slice(0, 16);
}

export function thisWorker(): Metrics['worker'] {
  return { host: hostname(), pid: process.pid, thread: 0 };
}

/** Best-effort limits of a request that may be malformed: what it would have run under. */
export function limitsOf(data: unknown, ceilings?: Readonly<Limits>, defaults?: Readonly<Limits>): Readonly<Limits> {
  const asked = typeof data === 'object' && data !== null ? (data as { limits?: unknown }).limits : undefined;
  const numeric: Partial<Limits> = {};
  if (typeof asked === 'object' && asked !== null) {
    for (const [key, value] of Object.entries(asked)) {
      if (typeof value === 'number' && Number.isFinite(value) && value > 0) numeric[key as keyof Limits] = value;
    }
  }
  return compileLimits(numeric, ceilings, defaults).limits;
}

export function rejectedResult(issues: readonly RequestIssue[], limits: Readonly<Limits>, worker = thisWorker()): Result {
  return resultWithoutRun('rejected', limits, worker, {
    reasons: validationReasons(issues),
  });
}

export function cancelledResult(limits: Readonly<Limits>, worker = thisWorker()): Result {
  return resultWithoutRun('cancelled', limits, worker, {
    error: { name: 'CancelledError', message: 'the job was cancelled before it ran' },
  });
}

export function queueTimeoutResult(limits: Readonly<Limits>, waitedMs: number, queueTimeoutMs: number, worker = thisWorker()): Result {
  const result = resultWithoutRun('timeout', limits, worker, { error: queueTimeoutError(waitedMs, queueTimeoutMs) });
  result.metrics.queueWaitMs = waitedMs;
  return result;
}

/** The Result a caller gets for a job BullMQ marked failed: infrastructure, after its retries. */
export function internalErrorResult(reason: string, limits: Readonly<Limits>, attempt: number, worker = thisWorker()): Result {
  return resultWithoutRun('internal_error', limits, worker, {
    error: { name: 'InternalError', message: reason.slice(0, 1024), code: 'JOB_FAILED' },
    attempt,
  });
}

/**
 * Bounds a Redis operation: an unreachable or failing Redis becomes QueueError REDIS_UNAVAILABLE
 * within `ms`, never a hang.
 */
export function boundedBy<T>(operation: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new QueueError('REDIS_UNAVAILABLE', `Redis did not answer within ${ms} ms (${what})`)),
      ms,
    );
  });
  return Promise.race([operation, deadline]).then(
    (value) => {
      clearTimeout(timer);
      return value;
    },
    (error: unknown) => {
      clearTimeout(timer);
      if (error instanceof QueueError) throw error;
      throw new QueueError('REDIS_UNAVAILABLE', `Redis failed to ${what}: ${(error as Error)?.message ?? error}`, {
        cause: error,
      });
    },
  );
}

/**
 * Confirms the connection is on the database its options name. ioredis reports a refused SELECT
 * (a database past the server's `databases` count) as an event and goes on with database 0: jobs
 * would go to, and be taken from, another queue than the one configured.
 */
export async function checkDatabase(redis: Redis): Promise<void> {
  const db = Number(redis.options.db ?? 0);
  if (db === 0) return;
  try {
    await redis.select(db);
  } catch (error) {
    throw new QueueError(
      'REDIS_UNAVAILABLE',
      `Redis refused database ${db}, which the connection names (${(error as Error)?.message ?? error}): the server has fewer databases (its 'databases' setting)`,
      { cause: error },
    );
  }
}

/** The tenant a job's data names, `default` when it names none (or nothing valid). */
export function tenantOf(data: unknown): string {
  const tenantId = typeof data === 'object' && data !== null ? (data as { tenantId?: unknown }).tenantId : undefined;
  return typeof tenantId === 'string' && TENANT_ID_PATTERN.test(tenantId) ? tenantId : 'default';
}
