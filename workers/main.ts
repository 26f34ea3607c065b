// `sandpool worker`: runs as its own process (src/cli.ts calls main(argv)); createWorker() is also
// the library's way to serve a queue in-process. Config, logger, pool, BullMQ Worker, cancel
// channel, HTTP side port; signals are handled only in main(), never on import.
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { Queue, Worker, type Job, type JobJson, type KeepJobs, type WorkerOptions as BullWorkerOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import { pino, type Logger } from 'pino';
import { ConfigError, loadConfig, unknownVariables, type Config } from '../src/config.ts';
import { createPool, type Pool, type PoolOptions } from '../src/pool.ts';
import { DEFAULT_SIZE_LIMITS } from '../src/limits.ts';
import { compilePoolOptions, type CompiledPoolOptions } from '../src/pool-options.ts';
import { KEY_PREFIX, QUEUE_NAME, integerOption as integer, loggerOption, retentionOption, type NameRule } from '../src/options.ts';
import {
  DEFAULT_PREFIX,
  MAX_CANCEL_ID_CHARS,
  DEFAULT_QUEUE,
  QueueError,
  boundedBy,
  bullConnection,
  checkConnection,
  checkDatabase,
  createRedis,
  withRedisCause,
  queueKeys,
  type Connection,
} from '../src/queue.ts';
import { startSidePort, type SidePort } from './http.ts';
import { queueRepairs } from './queue-repair.ts';
import { createWorkerMetrics, type WorkerMetrics } from './metrics.ts';
import { DeferredData, UNREADABLE_DATA, UnreadData, createProcessor, logTerminalFailure, loggedJobId, loggedMessage, type Executor, type Processor } from './processor.ts';

/** Options of the engine the worker creates when none is given (createPool's, without the logger). */
export type WorkerPoolOptions = Omit<PoolOptions, 'logger'>;

const WORKER_DEFAULTS = Object.freeze({
  queue: DEFAULT_QUEUE,
  prefix: DEFAULT_PREFIX,
  lockDurationMs: 30_000,
  stalledIntervalMs: 30_000,
  maxStalledCount: 1,
  shutdownGraceMs: 30_000,
  /** After the grace, how long handed-back jobs get to reach the queue before a forced close. */
  handBackMs: 5_000,
  /** How long closing connections may take once no job is in flight. */
  teardownMs: 1_000,
  /** How long start-up waits for Redis before it gives up and closes what it made. */
  connectTimeoutMs: 10_000,
  keepCompleted: Object.freeze({ ageSeconds: 24 * 3600, count: 10_000 }),
  keepFailed: Object.freeze({ ageSeconds: 7 * 24 * 3600, count: 10_000 }),
  eventsMaxLen: 10_000,
});

export interface WorkerOptions {
  /** Redis URL (`redis://`, `rediss://`, user:password for AUTH/ACL) or ioredis options. */
  connection: Connection;
  /** @default 'sandpool' */
  queue?: string;
  /** @default 'bull'; a hash tag such as `{sandpool}` for Redis Cluster */
  prefix?: string;
  /** Jobs taken at once. @default the pool's capacity (executors × threadsPerExecutor), else 1 */
  concurrency?: number;
  /** How long a job's lock lasts without renewal: a dead worker's jobs return after about this. @default 30000 */
  lockDurationMs?: number;
  /** How often stalled jobs (lock lost) are looked for. @default 30000 */
  stalledIntervalMs?: number;
  /** A job stalled more often than this (it keeps killing workers) ends as internal_error. @default 1 */
  maxStalledCount?: number;
  /** close() lets in-flight jobs finish this long, then hands them back to the queue. @default 30000 */
  shutdownGraceMs?: number;
  /**
   * Start-up fails (QueueError REDIS_UNAVAILABLE) when Redis has not answered within this, having
   * closed everything it made: ioredis would otherwise retry for ever. @default 10000 — bounds 100..600000
   */
  connectTimeoutMs?: number;
  keepCompleted?: { ageSeconds: number; count: number };
  keepFailed?: { ageSeconds: number; count: number };
  eventsMaxLen?: number;
  /** An engine to run jobs on (left open by close()); otherwise one is created from `poolOptions`. */
  pool?: Executor;
  /** Options of the engine to create; not with `pool`. Checked before anything starts. */
  poolOptions?: WorkerPoolOptions;
  /** pino, or anything with its child, info, warn, error and debug methods. */
  logger?: Logger;
  /**
   * The longest JSON text of a job's data the worker parses; a longer one is answered `rejected`
   * unread (parsing hundreds of MB would stall every job of the worker, or exhaust its heap).
   * Text longer than the share of it a job may take with its escapes undone, (maxDataChars −
   * 131072) / 6 + 131072 (its code and input limits at a character a byte, plus 128 K), is parsed
   * on a thread first, and answered `rejected` unless its escapes are what made it that long.
   * @default 6 × (the engine's maxCodeBytes + maxInputBytes) + 131072 — JSON escapes take up to 6
   * characters a byte. Set it when a given `pool` has larger size limits. Bounds 1024..2^29
   */
  maxDataChars?: number;
  /** HTTP side port: 0 picks a free one; undefined or null runs none. Bound before any job is taken. */
  metricsPort?: number | null;
  /** Address the side port binds. @default '0.0.0.0' */
  metricsHost?: string;
}

export interface WorkerHandle {
  /** This worker's BullMQ name (host:pid:n), stored on the jobs it processes. */
  readonly name: string;
  readonly metrics: WorkerMetrics;
  /** The side port's port, when one runs. */
  readonly metricsPort: number | undefined;
  /** Why it does not take jobs now, undefined when it does. */
  notReadyReason(): string | undefined;
  /**
   * Stops fetching, lets in-flight jobs finish within the grace, hands the rest back to the queue,
   * closes everything it made. Idempotent.
   */
  close(options?: { graceMs?: number }): Promise<void>;
}

let workerCount = 0;

/** Fields never written to a log line, at the top level or one level down. */
const LOG_REDACT_PATHS = ['code', 'input', 'stdout', 'stderr', 'value', 'redisUrl', 'connection', 'password']
  .flatMap((field) => [field, `*.${field}`]);

/** Starts serving a queue. Resolves once connected to Redis and ready to take jobs. */
export async function createWorker(options: WorkerOptions): Promise<WorkerHandle> {
  // Checked before anything starts: a bad option costs no executor, connection or job.
  const settings = compileWorkerOptions(options);
  // Everything start-up makes is recorded here as it is made: a failure at any step (Redis away, the
  // engine failing to start, the side port taken) closes it all, or the pool's executors and the
  // connections' reconnect timers would keep the process alive with nothing serving.
  const made: Made = { closers: [] };
  try {
    return await serve(settings, made);
  } catch (error) {
    await Promise.allSettled(made.closers.map((close) => close()));
    await made.pool?.close({ deadlineMs: 0 }).catch(() => undefined);
    throw error;
  }
}

/** What a start-up in progress has made, for closing should it fail. */
interface Made {
  /** Each closes one resource, bounded: none waits for ever on a Redis that does not answer. */
  closers: (() => Promise<unknown>)[];
  /** The pool createWorker created (a given one is the caller's and left open). */
  pool?: Pool;
}

type WorkerSettings = ReturnType<typeof compileWorkerOptions>;

async function serve(settings: WorkerSettings, made: Made): Promise<WorkerHandle> {
  const { queueName, prefix, connection, engine } = settings;
  const logger = settings.logger ?? pino({ level: 'silent' });
  const keys = queueKeys(prefix, queueName);
  const name = `${hostname()}:${process.pid}:${++workerCount}`;
  const log = logger.child({ queue: queueName, worker: name });
  const capacity = settings.concurrency ?? (engine ? engine.executors * engine.threadsPerExecutor : 1);

  // A failed connect says why (ECONNREFUSED, WRONGPASS) where the bound alone says only how long.
  let lastRedisError: Error | undefined;
  // Logged once per message until the plain connection is ready again: every retry of every
  // connection repeated it (51 lines in a 30 s outage).
  const reported = new Set<string>();
  const onRedisError = (error: Error) => {
    lastRedisError = error;
    if (reported.has(error.message) || reported.size >= 20) return;
    reported.add(error.message);
    log.warn({ err: error.message }, 'redis error');
  };
  const bounded = <T>(operation: Promise<T>, what: string): Promise<T> =>
    boundedBy(operation, settings.connectTimeoutMs, what).catch((error: unknown) => {
      throw withRedisCause(error, lastRedisError);
    });

  const redis = createRedis(connection);
  made.closers.push(() => quit(redis));
  redis.on('error', onRedisError);
  redis.on('ready', () => {
    if (reported.size > 0) log.info('redis connection ready again');
    reported.clear();
  });
  const subscriber = createRedis(connection);
  made.closers.push(() => quit(subscriber));
  subscriber.on('error', onRedisError);
  const queue = new Queue(queueName, {
    connection: bullConnection(connection),
    prefix,
    streams: { events: { maxLen: settings.eventsMaxLen } },
  });
  made.closers.push(() => closeOrDrop(queue.close(), () => queue.disconnect()));
  queue.on('error', onRedisError);

  // All three connections answer before an executor starts: an unreachable Redis costs none.
  await bounded(Promise.all([queue.waitUntilReady(), subscriber.subscribe(keys.cancelChannel), redis.ping()]), 'connect');
  await bounded(checkDatabase(redis), 'select the database');
  // The queue's own connection: the one its reads for /metrics go through.
  const queueClient: { readonly status: string } = await queue.getBackend().client;

  let pool: Executor & Partial<Pick<Pool, 'close' | 'stats'>>;
  if (settings.pool) {
    pool = settings.pool;
  } else {
    // Room for every job the worker takes at once (see the processor for a pool that is full anyway).
    const maxQueued = Math.max(engine?.maxQueued ?? 0, capacity);
    made.pool = await createPool({ ...settings.poolOptions, maxQueued, logger: logger.child({ component: 'pool' }) });
    pool = made.pool;
  }
  const ownsPool = made.pool !== undefined;
  let worker: Worker | undefined;

  let metrics: WorkerMetrics | undefined;
  const processor = createProcessor({
    pool,
    redis,
    keys,
    jobKey: (id) => queue.toKey(id),
    logger: log,
    // The engine's own view of its limits, for Results of jobs that never reach it.
    ...(engine ? { ceilings: engine.ceilings, defaults: engine.defaults } : {}),
    observe: (result, job) => metrics?.observe(result, job),
  });
  metrics = createWorkerMetrics({
    utilisation: () => ({ active: processor.active.size, capacity }),
    redisReady: () => queueClient.status === 'ready',
    queueCounts: () => queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'completed', 'failed'),
    bullmqExport: () => queue.exportPrometheusMetrics({ worker: name }),
    ...(isPool(pool) ? { poolStats: () => pool.stats() } : {}),
  });

  // One subscription per worker: a cancelled job id reaches every worker, the one running it stops it.
  // Anyone who can publish can flood the channel, on the event loop that renews the job locks: a
  // message that cannot be an id the client cancels is dropped unread, and past
  // CANCEL_MESSAGES_PER_SECOND the rest of that second is dropped (a cancel still reaches its job
  // through the mark it reads once it has run 5 ms, see processor.ts).
  const floods = new RepeatFilter(ERROR_LOG_WINDOW_MS);
  let cancelSecond = 0;
  let cancelsThisSecond = 0;
  subscriber.on('message', (channel: string, jobId: string) => {
    if (channel !== keys.cancelChannel || jobId.length > MAX_CANCEL_ID_CHARS) return;
    const second = Math.floor(Date.now() / 1000);
    if (second !== cancelSecond) {
      if (cancelsThisSecond > CANCEL_MESSAGES_PER_SECOND && floods.pass('flood') !== undefined) {
        log.warn({ messages: cancelsThisSecond }, 'cancel channel flooded: messages past the rate were dropped');
      }
      cancelSecond = second;
      cancelsThisSecond = 0;
    }
    if (++cancelsThisSecond > CANCEL_MESSAGES_PER_SECOND) return;
    if (!processor.active.has(jobId)) {
      processor.noteCancel(jobId);
      return;
    }
    // Only a cancel whose mark is there (the client writes it before it publishes): anyone who can
    // publish could otherwise stop any running job. Redis unreachable: cancelled, as the message says.
    const stopIt = () => {
      if (worker?.cancelJob(jobId, 'cancelled')) log.info({ jobId: loggedJobId(jobId) }, 'job cancelled while running');
    };
    redis.get(keys.cancelled(jobId)).then((mark) => mark !== null && stopIt(), stopIt);
  });
  // Redis drops a subscriber that falls behind (a flood of huge messages overflows its output
  // buffer) and ioredis resubscribes without an error: cancels published meanwhile are missed, so
  // say so (a running job still reads its cancel mark, see processor.ts).
  // Once per outage, not once per retry.
  let subscriberAway = false;
  subscriber.on('reconnecting', () => {
    if (!subscriberAway) log.warn('cancel channel: subscriber reconnecting to Redis');
    subscriberAway = true;
  });
  subscriber.on('ready', () => {
    subscriberAway = false;
  });

  let draining = false;
  let sidePort: SidePort | undefined;
  // When the queue check last had its answer: a Redis that keeps the connection but does not answer
  // (stopped, swapping, a blocked script) takes no jobs either, and its status still reads 'ready'.
  let redisAnsweredAt = Date.now();
  const notReadyReason = (): string | undefined => {
    if (draining) return 'draining';
    if (redis.status !== 'ready') return `redis ${redis.status}`;
    const silentMs = Date.now() - redisAnsweredAt;
    if (silentMs > REDIS_SILENT_MS) return `redis has not answered for ${Math.round(silentMs / 1000)} s`;
    if (!worker?.isRunning()) return 'worker not running';
    return undefined;
  };

  // Bound before the worker fetches: a port that cannot be had ends start-up holding no job
  // (one taken first would wait for stalled-job detection and use up one of its stalls).
  if (settings.metricsPort !== undefined) {
    const onError = (error: Error) => log.warn({ err: error.message }, 'side port: accepting a connection failed; still listening');
    const port = await startSidePort(settings.metricsPort, { metrics: () => metrics.render(), notReadyReason, onError }, settings.metricsHost);
    made.closers.push(() => within(port.close(), WORKER_DEFAULTS.teardownMs));
    sidePort = port;
  }
  const retention = { completed: keep(settings.keepCompleted), failed: keep(settings.keepFailed) };
  const started = new SandpoolWorker({ maxDataChars: settings.maxDataChars, retention }, queueName, processor, {
    connection: bullConnection(connection),
    prefix,
    name,
    concurrency: capacity,
    lockDuration: settings.lockDurationMs,
    stalledInterval: settings.stalledIntervalMs,
    maxStalledCount: settings.maxStalledCount,
    // Retention for every job, a raw producer's too: results kept by age and count.
    removeOnComplete: retention.completed,
    removeOnFail: retention.failed,
    autorun: false,
  });
  made.closers.push(() => closeOrDrop(started.close(true), () => started.disconnect()));
  worker = started;
  // A JSON parse error quotes the text it failed on: a hand-written job's data or options.
  // BullMQ retries a failed fetch at once: an unreadable queue key repeated the same error thousands
  // of times a second, so each message is logged once per ERROR_LOG_WINDOW_MS, with a count.
  const workerErrors = new RepeatFilter(ERROR_LOG_WINDOW_MS);
  worker.on('error', (error) => {
    const err = error instanceof SyntaxError ? 'a job in Redis is not valid JSON (its data or options)' : loggedMessage(error.message);
    // While Redis is away the worker's connection errors repeat those already reported.
    if (redis.status !== 'ready') {
      if (reported.has(error.message) || reported.size >= 20) return;
      reported.add(error.message);
    }
    const repeats = workerErrors.pass(err);
    if (repeats !== undefined) log.warn({ err, ...(repeats > 0 ? { repeatsNotLogged: repeats } : {}) }, 'worker error');
  });
  // BullMQ says so when a job's lock turned out to be no longer this worker's (a Redis that did not
  // answer is an 'error', not this): the job is, or will be, another worker's after its stall. Its
  // run here stops (one waiting for a full pool never starts), so its code does not run twice.
  worker.on('lockRenewalFailed', (jobIds) => {
    for (const jobId of jobIds) {
      if (worker?.cancelJob(jobId, 'lock lost')) log.warn({ jobId: loggedJobId(jobId) }, 'job lock lost: its run here stopped');
    }
  });
  worker.on('completed', (job) => processor.recorded(job));
  worker.on('failed', (job, error) => {
    if (!job) return;
    processor.recorded(job);
    // A reason stored with the job (`defa`) that BullMQ did not write is the producer's text.
    const own = error.name !== 'UnrecoverableError' || BULLMQ_FAILURE_REASONS.has(error.message);
    const err = own ? loggedMessage(error.message) : '(a failure reason stored with the job: not logged)';
    log.warn({ jobId: loggedJobId(job.id), attemptsMade: job.attemptsMade, err }, 'job attempt failed');
    logTerminalFailure(log, job, error);
  });
  const repairs = queueRepairs(redis, (name) => queue.toKey(name));
  worker.on('stalled', (jobId) => {
    log.warn({ jobId: loggedJobId(jobId) }, 'job stalled: its worker stopped renewing the lock');
    void repairs.job(queue.toKey(jobId)).then(
      (fields) => fields.length > 0 && log.warn({ jobId: loggedJobId(jobId), fields }, 'job fields in Redis were unreadable: reset, so that the job can end'),
      () => undefined, // Redis away: the next stall tries again
    );
  });
  // The queue's own keys and settings, checked now and every QUEUE_CHECK_MS: a producer's job whose
  // id is one of the queue's key names, or a setting written by hand that BullMQ's scripts cannot
  // read, would otherwise stop the queue, or lose every job that finishes, until someone repairs it.
  const checkQueue = () =>
    repairs.queue(settings.eventsMaxLen).then(
      (repaired) => {
        redisAnsweredAt = Date.now();
        if (repaired.length > 0) log.warn({ repaired }, 'queue keys or settings in Redis were unreadable: repaired');
      },
      () => undefined, // Redis away: the next check tries again
    );
  await checkQueue();
  const queueChecker = setInterval(checkQueue, QUEUE_CHECK_MS);
  queueChecker.unref();
  made.closers.push(async () => clearInterval(queueChecker));
  worker.run().catch((error: unknown) => log.error({ err: (error as Error)?.message }, 'worker stopped'));
  await bounded(worker.waitUntilReady(), 'connect the worker');
  log.info({ concurrency: capacity, metricsPort: sidePort?.port }, 'worker ready');

  let closing: Promise<void> | undefined;
  const close = async (graceMs: number): Promise<void> => {
    draining = true;
    clearInterval(queueChecker);
    const running = worker as Worker;
    log.info({ inFlight: processor.active.size, graceMs }, 'worker draining');
    const closed = running.close();
    processor.drain();
    let settled = false;
    closed.then(
      () => (settled = true),
      () => (settled = true),
    );
    // In-flight jobs are what the grace is for; BullMQ's own teardown gets a short bound after.
    const idle = () => settled || processor.active.size === 0;
    if (!(await pollUntil(idle, graceMs))) {
      const ids = [...processor.active.keys()];
      log.warn({ jobs: ids.map(loggedJobId) }, 'grace over: handing in-flight jobs back to the queue');
      processor.handBack(ids, (id) => running.cancelJob(id, 'shutdown'));
      if (!(await pollUntil(idle, WORKER_DEFAULTS.handBackMs))) {
        // Redis is away or a job would not stop: what is still held comes back through
        // stalled-job detection once its lock expires.
        log.warn({ jobs: [...processor.active.keys()].map(loggedJobId) }, 'jobs not handed back in time: left to stalled-job detection');
      }
    }
    // Every step is bounded: a shutdown never hangs on a Redis that does not answer.
    await within(closed, WORKER_DEFAULTS.teardownMs);
    await within(Promise.allSettled([sidePort?.close(), queue.close(), quit(redis), quit(subscriber)]), WORKER_DEFAULTS.teardownMs);
    if (ownsPool) await pool.close?.({ deadlineMs: WORKER_DEFAULTS.handBackMs });
    log.info('worker closed');
  };

  return {
    name,
    metrics,
    metricsPort: sidePort?.port,
    notReadyReason,
    close(closeOptions = {}) {
      if (closing) return closing;
      let graceMs: number;
      try {
        // NaN would never end the grace: the drain would wait on its jobs for ever.
        graceMs = integer('graceMs', closeOptions.graceMs, settings.shutdownGraceMs, ...GRACE_RANGE);
      } catch (error) {
        return Promise.reject(error);
      }
      closing = close(graceMs);
      return closing;
    },
  };
}

/** Bounds of the numeric options, the same as loadConfig's for the variables that set them. */
const GRACE_RANGE = [0, 3_600_000] as const;

/** createWorker's options with defaults applied and bounds checked; throws a RangeError or TypeError naming the bad one. */
function compileWorkerOptions(options: WorkerOptions) {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new TypeError(`options: expected an object, got ${describe(options)}`);
  }
  // A misspelt option (`concurency`, BullMQ's `lockDuration`) is an error, not a silent default.
  const unknown = Object.keys(options).find((key) => !WORKER_OPTION_KEYS.has(key));
  if (unknown !== undefined) throw new RangeError(`options.${unknown.slice(0, 64)}: unknown option`);
  const connection = checkConnection(options.connection);
  const queueName = nameOption('queue', options.queue, WORKER_DEFAULTS.queue, QUEUE_NAME);
  const prefix = nameOption('prefix', options.prefix, WORKER_DEFAULTS.prefix, KEY_PREFIX);
  const numbers = {
    // Left undefined when not given: the engine's size decides.
    concurrency: options.concurrency === undefined ? undefined : integer('concurrency', options.concurrency, 1, 1, 10_000),
    lockDurationMs: integer('lockDurationMs', options.lockDurationMs, WORKER_DEFAULTS.lockDurationMs, 1_000, 3_600_000),
    stalledIntervalMs: integer('stalledIntervalMs', options.stalledIntervalMs, WORKER_DEFAULTS.stalledIntervalMs, 500, 3_600_000),
    maxStalledCount: integer('maxStalledCount', options.maxStalledCount, WORKER_DEFAULTS.maxStalledCount, 0, 100),
    shutdownGraceMs: integer('shutdownGraceMs', options.shutdownGraceMs, WORKER_DEFAULTS.shutdownGraceMs, ...GRACE_RANGE),
    connectTimeoutMs: integer('connectTimeoutMs', options.connectTimeoutMs, WORKER_DEFAULTS.connectTimeoutMs, 100, 600_000),
    keepCompleted: retentionOption('keepCompleted', options.keepCompleted, WORKER_DEFAULTS.keepCompleted),
    keepFailed: retentionOption('keepFailed', options.keepFailed, WORKER_DEFAULTS.keepFailed),
    eventsMaxLen: integer('eventsMaxLen', options.eventsMaxLen, WORKER_DEFAULTS.eventsMaxLen, 100, 10_000_000),
    metricsPort: sidePortNumber(options.metricsPort),
  };
  const { pool, poolOptions, engine } = engineOptions(options);
  const sizes = engine?.sizeLimits ?? DEFAULT_SIZE_LIMITS;
  const dataChars = JSON_CHARS_PER_BYTE * (sizes.maxCodeBytes + sizes.maxInputBytes) + DATA_CHARS_BESIDES;
  return {
    ...numbers,
    maxDataChars: integer('maxDataChars', options.maxDataChars, Math.min(dataChars, MAX_DATA_CHARS), 1024, MAX_DATA_CHARS),
    connection,
    queueName,
    prefix,
    pool,
    poolOptions,
    /** The engine's own view of its limits and size: compiled here, so createPool cannot fail on them later. */
    engine,
    // What the worker and the pool it creates call.
    logger: loggerOption<Logger>(options.logger, ['child', 'info', 'warn', 'error', 'debug']),
    metricsHost: options.metricsHost,
  };
}

/** The keys createWorker knows. */
const WORKER_OPTION_KEYS: ReadonlySet<string> = new Set([
  'connection', 'queue', 'prefix', 'concurrency', 'lockDurationMs', 'stalledIntervalMs', 'maxStalledCount',
  'shutdownGraceMs', 'connectTimeoutMs', 'keepCompleted', 'keepFailed', 'eventsMaxLen', 'pool', 'poolOptions',
  'logger', 'metricsPort', 'metricsHost', 'maxDataChars',
] satisfies (keyof WorkerOptions)[]);

/** Cancel messages a worker reads in one second; the rest wait for their jobs' marks. */
const CANCEL_MESSAGES_PER_SECOND = 2_000;
/** How often the queue's own keys and settings are checked (queueRepairs().queue). */
const QUEUE_CHECK_MS = 2_000;
/** /readyz says not ready once the queue check has had no answer for this long (2.5 checks). */
const REDIS_SILENT_MS = 5_000;
/** A repeated worker error is logged once in this long. */
const ERROR_LOG_WINDOW_MS = 10_000;

/** Passes a message the first time in each window; says how many repeats it held back meanwhile. */
class RepeatFilter {
  readonly #windowMs: number;
  readonly #seen = new Map<string, { until: number; held: number }>();
  constructor(windowMs: number) {
    this.#windowMs = windowMs;
  }

  /** undefined: hold it back; else the repeats held back since it last passed. */
  pass(message: string): number | undefined {
    const now = Date.now();
    const seen = this.#seen.get(message);
    if (seen !== undefined && now < seen.until) {
      seen.held++;
      return undefined;
    }
    // Bounded: distinct messages are few; past 1,000 the oldest go.
    if (this.#seen.size >= 1_000) this.#seen.delete(this.#seen.keys().next().value as string);
    this.#seen.delete(message);
    this.#seen.set(message, { until: now + this.#windowMs, held: 0 });
    return seen?.held ?? 0;
  }
}

/** The reasons BullMQ itself stores with a job it fails without running (its `defa` field). */
const BULLMQ_FAILURE_REASONS: ReadonlySet<string> = new Set(['job stalled more than allowable limit', 'job started more than allowable limit']);

/**
 * The most characters of a job's data, with its escapes undone, the worker takes: the share of
 * `maxDataChars` a character a byte gives (at the defaults, the code and input limits plus 128 K).
 */
function unescapedDataChars(maxDataChars: number): number {
  return maxDataChars <= DATA_CHARS_BESIDES ? maxDataChars : Math.floor((maxDataChars - DATA_CHARS_BESIDES) / JSON_CHARS_PER_BYTE) + DATA_CHARS_BESIDES;
}

/** A byte of code or input takes at most this many characters of JSON text (`\u0000`). */
const JSON_CHARS_PER_BYTE = 6;
/** Room in a job's data for what is not code or input: limits, labels, keys, the field names (~88 K escaped at most). */
const DATA_CHARS_BESIDES = 128 * 1024;
/** About V8's longest string: a longer one could not have been read from Redis anyway. */
const MAX_DATA_CHARS = 2 ** 29;


function nameOption(name: string, value: unknown, fallback: string, rule: NameRule): string {
  if (value === undefined) return fallback;
  if (typeof value !== 'string') throw new TypeError(`options.${name}: expected a string of ${rule.expected}, got ${describe(value)}`);
  if (!rule.pattern.test(value)) throw new RangeError(`options.${name}: expected ${rule.expected}, got ${JSON.stringify(value.slice(0, 140))}`);
  return value;
}

/**
 * The engine: the given `pool`, or the options of the one to create, compiled now (an error names
 * `options.poolOptions.<name>`) so that a bad one is refused before any connection or executor.
 */
function engineOptions(options: WorkerOptions): {
  pool: Executor | undefined;
  poolOptions: WorkerPoolOptions | undefined;
  engine: Readonly<CompiledPoolOptions> | undefined;
} {
  if (options.pool !== undefined) {
    const pool: unknown = options.pool;
    if (typeof pool !== 'object' || pool === null || typeof (pool as Partial<Executor>).execute !== 'function') {
      throw new TypeError('options.pool: expected an engine with an execute() method (a pool from createPool)');
    }
    // Silently ignored, they would leave the caller believing their limits apply.
    if (options.poolOptions !== undefined) {
      throw new RangeError('options.poolOptions: not used with options.pool (the given engine keeps its own options); give one or the other');
    }
    return { pool: options.pool, poolOptions: undefined, engine: undefined };
  }
  const given: unknown = options.poolOptions;
  if (given !== undefined && (typeof given !== 'object' || given === null || Array.isArray(given))) {
    throw new TypeError(`options.poolOptions: expected an object, got ${describe(given)}`);
  }
  if (given !== undefined && (given as { logger?: unknown }).logger !== undefined) {
    throw new RangeError('options.poolOptions.logger: not used here; the pool logs through options.logger');
  }
  const poolOptions = given as WorkerPoolOptions | undefined;
  try {
    return { pool: undefined, poolOptions, engine: compilePoolOptions(poolOptions) };
  } catch (error) {
    if (!(error instanceof RangeError || error instanceof TypeError)) throw error;
    const message = error.message.startsWith('options.')
      ? `options.poolOptions.${error.message.slice('options.'.length)}`
      : `options.poolOptions: ${error.message}`;
    throw error instanceof RangeError ? new RangeError(message, { cause: error }) : new TypeError(message, { cause: error });
  }
}

/** A value's kind for an error message: never the value itself (it may be a secret). */
function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  return typeof value;
}

/** The side port to bind, or undefined for none (undefined or null given). */
function sidePortNumber(port: number | null | undefined): number | undefined {
  if (port === undefined || port === null) return undefined;
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new RangeError(`options.metricsPort: expected an integer from 0 to 65535 or null (none), got ${String(port)}`);
  }
  return port;
}

/**
 * BullMQ's Worker, except that a job whose stored data is not JSON (a hand-written job; every
 * BullMQ producer encodes it) becomes a job the processor completes as `rejected`: BullMQ's own
 * parse would throw while fetching it, leaving it to bounce between active and waiting for ever.
 * (Options that are not JSON fail earlier, inside BullMQ's fetch, out of sandpool's reach.)
 */
class SandpoolWorker extends Worker {
  readonly #maxDataChars: number;
  readonly #unescapedChars: number;
  readonly #retention: { completed: KeepJobs; failed: KeepJobs };

  constructor(
    own: { maxDataChars: number; retention: { completed: KeepJobs; failed: KeepJobs } },
    name: string,
    processor: Processor,
    options: BullWorkerOptions,
  ) {
    super(name, processor, options);
    this.#maxDataChars = own.maxDataChars;
    this.#unescapedChars = unescapedDataChars(own.maxDataChars);
    this.#retention = own.retention;
  }

  protected override createJob(data: JobJson, jobId: string): Job {
    const job = this.#createJob(data, jobId);
    // BullMQ applies a job's own retention to every finished job of the queue when it finishes: a
    // producer's `removeOnComplete: { count: 1 }` would delete every other tenant's Results. Obeyed
    // only where it keeps at least as much as the worker's; `true`/`false` concern the job alone.
    const opts = job.opts as { removeOnComplete?: unknown; removeOnFail?: unknown };
    if (!keepsAtLeast(opts.removeOnComplete, this.#retention.completed)) delete opts.removeOnComplete;
    if (!keepsAtLeast(opts.removeOnFail, this.#retention.failed)) delete opts.removeOnFail;
    return job;
  }

  /** BullMQ's job, with `data` standing in for the stored data it was not (or not yet) parsed from. */
  #standIn(data: JobJson, jobId: string, stand: unknown): Job {
    const job = super.createJob({ ...data, data: '{}' }, jobId);
    job.data = stand;
    return job;
  }

  #createJob(data: JobJson, jobId: string): Job {
    const chars = typeof data.data === 'string' ? data.data.length : 0;
    // Too long to parse: answered `rejected`, its length said (see WorkerOptions.maxDataChars).
    if (chars > this.#maxDataChars) {
      return this.#standIn(data, jobId, new UnreadData(`the job's data is ${chars} characters of JSON, more than the ${this.#maxDataChars} this worker reads`));
    }
    // Longer than a valid job's data without escapes: parsed on a thread before its run.
    if (chars > this.#unescapedChars) {
      return this.#standIn(data, jobId, new DeferredData(data.data, this.#unescapedChars));
    }
    try {
      return super.createJob(data, jobId);
    } catch {
      return this.#standIn(data, jobId, UNREADABLE_DATA);
    }
  }
}

function isPool(pool: Executor & Partial<Pick<Pool, 'stats'>>): pool is Executor & Pick<Pool, 'stats'> {
  return typeof pool.stats === 'function';
}

/** Resolves true once `condition()` holds, false when `ms` passes first. */
async function pollUntil(condition: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return true;
}

/** Resolves 'done' when the promise settles, 'late' when `ms` passes first; never rejects. */
async function within(promise: Promise<unknown>, ms: number): Promise<'done' | 'late'> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), ms);
  });
  try {
    return await Promise.race([promise.then(() => 'done' as const, () => 'done' as const), late]);
  } finally {
    clearTimeout(timer);
  }
}

function keep(retention: { ageSeconds: number; count: number }): KeepJobs {
  return { age: retention.ageSeconds, count: retention.count };
}

/**
 * Whether a job's own retention (BullMQ's removeOnComplete/removeOnFail: a boolean, a count, or
 * `{ age, count }`) keeps at least what `worker` keeps, by age and by count. Booleans concern the
 * job alone (`true`: removed at once, `false`: kept, nothing trimmed), so they are obeyed.
 */
function keepsAtLeast(own: unknown, worker: KeepJobs): boolean {
  if (own === undefined || typeof own === 'boolean') return true;
  if (typeof own !== 'number' && (typeof own !== 'object' || own === null)) return false;
  const { count, age, limit } = (typeof own === 'number' ? { count: own } : own) as Record<string, unknown>;
  // Only what BullMQ's scripts can carry out (ZREVRANGE takes whole numbers: 10.5 failed the
  // finish half-way). Unset: no bound of that kind, which keeps more; a negative count is BullMQ's
  // "keep all".
  if (count !== undefined && !Number.isSafeInteger(count)) return false;
  if (age !== undefined && !(Number.isSafeInteger(age) && (age as number) >= 0)) return false;
  if (limit !== undefined && !(Number.isSafeInteger(limit) && (limit as number) > 0)) return false;
  const bound = worker as { age?: number; count?: number };
  const countKept = count === undefined || (count as number) < 0 || (count as number) >= (bound.count ?? Number.POSITIVE_INFINITY);
  const ageKept = age === undefined || (age as number) >= (bound.age ?? Number.POSITIVE_INFINITY);
  return countKept && ageKept;
}

/** Closes gracefully within the teardown bound, else drops the connections outright. */
async function closeOrDrop(closing: Promise<unknown>, drop: () => Promise<unknown>): Promise<void> {
  if ((await within(closing, WORKER_DEFAULTS.teardownMs)) === 'late') await drop().catch(() => undefined);
}

async function quit(redis: Redis): Promise<void> {
  // Not connected: a QUIT would only join the commands queued for a connection that may never come.
  if (redis.status !== 'ready') return redis.disconnect();
  // QUIT waits for Redis; one that does not answer gets the socket closed instead.
  if ((await within(redis.quit(), 1_000)) === 'late') redis.disconnect();
}

/** Serves a queue from a loaded Config (what `sandpool worker` runs). */
export async function startWorker(config: Readonly<Config>, logger: Logger): Promise<WorkerHandle> {
  return createWorker({
    connection: config.redisUrl,
    queue: config.queue,
    prefix: config.prefix,
    concurrency: config.concurrency,
    lockDurationMs: config.lockDurationMs,
    stalledIntervalMs: config.stalledIntervalMs,
    maxStalledCount: config.maxStalledCount,
    shutdownGraceMs: config.shutdownGraceMs,
    // SANDPOOL_REDIS_TIMEOUT_MS bounds the worker's connect as it bounds a client's calls.
    connectTimeoutMs: config.redisTimeoutMs,
    keepCompleted: { ageSeconds: config.keepCompletedAgeSeconds, count: config.keepCompletedCount },
    keepFailed: { ageSeconds: config.keepFailedAgeSeconds, count: config.keepFailedCount },
    eventsMaxLen: config.eventsMaxLen,
    poolOptions: {
      executors: config.executors,
      threadsPerExecutor: config.threadsPerExecutor,
      standbyExecutors: config.standbyExecutors,
      ceilings: config.ceilings,
      defaults: config.defaults,
      ceilingMode: config.ceilingMode,
      ...(config.prescreen ? { prescreen: config.prescreen } : {}),
      ...(config.tools ? { tools: config.tools } : {}),
    },
    logger,
    metricsPort: config.metricsPort,
  });
}

const USAGE = `Usage: sandpool worker [options]

Serves sandpool jobs from a BullMQ queue in Redis until SIGTERM or SIGINT (a second one forces).
Flags override the environment (SANDPOOL_*).

  --redis URL              Redis URL (redis://, rediss://; user:password@ for AUTH/ACL)  [SANDPOOL_REDIS_URL]
  --queue NAME             queue name (default sandpool)                                  [SANDPOOL_QUEUE]
  --prefix PREFIX          key prefix (default bull; {name} for Redis Cluster)            [SANDPOOL_PREFIX]
  --concurrency N          jobs taken at once (default executors × threads)               [SANDPOOL_CONCURRENCY]
  --executors N            executor processes (default: cores)                            [SANDPOOL_EXECUTORS]
  --threads N              threads per executor (default 1)                               [SANDPOOL_THREADS_PER_EXECUTOR]
  --standby N              idle executors kept to replace a dead one at once (default 0)  [SANDPOOL_STANDBY_EXECUTORS]
  --lock-duration MS       job lock; a dead worker's jobs return after about this         [SANDPOOL_LOCK_DURATION_MS]
  --stalled-interval MS    how often stalled jobs are looked for                          [SANDPOOL_STALLED_INTERVAL_MS]
  --metrics-port P         HTTP side port for /metrics /healthz /readyz, or off           [SANDPOOL_METRICS_PORT]
  --grace MS               shutdown grace for in-flight jobs                              [SANDPOOL_SHUTDOWN_GRACE_MS]
  --tools FILE             JSON array of tool definitions jobs may call                   [SANDPOOL_TOOLS_FILE]
  --policy FILE            ceilings, defaults, ceiling mode, pre-screen settings (JSON)   [SANDPOOL_POLICY_FILE]
  --log-level LEVEL        fatal error warn info debug trace silent                       [SANDPOOL_LOG_LEVEL]
  --pretty                 human-readable logs instead of JSON lines
`;

/** After a clean drain, how long the process may linger on open handles before it exits. */
const EXIT_BACKSTOP_MS = 3_000;
/** A stop signal repeated within this is the same request (see onSignal). */
const REPEAT_SIGNAL_MS = 1_000;
/** `sandpool worker`'s exit codes besides 0 and 2 (README): as `run`'s and `submit`'s, 1 is never sandpool's own failure. */
const EXIT_REDIS_UNAVAILABLE = 7;
const EXIT_FAILED = 8;
/** A second stop signal ended the drain: unfinished jobs return through stalled-job detection. */
const EXIT_FORCED = 8;

const FLAG_TO_ENV = Object.freeze({
  redis: 'SANDPOOL_REDIS_URL',
  queue: 'SANDPOOL_QUEUE',
  prefix: 'SANDPOOL_PREFIX',
  concurrency: 'SANDPOOL_CONCURRENCY',
  executors: 'SANDPOOL_EXECUTORS',
  threads: 'SANDPOOL_THREADS_PER_EXECUTOR',
  standby: 'SANDPOOL_STANDBY_EXECUTORS',
  'lock-duration': 'SANDPOOL_LOCK_DURATION_MS',
  'stalled-interval': 'SANDPOOL_STALLED_INTERVAL_MS',
  'metrics-port': 'SANDPOOL_METRICS_PORT',
  grace: 'SANDPOOL_SHUTDOWN_GRACE_MS',
  'log-level': 'SANDPOOL_LOG_LEVEL',
  tools: 'SANDPOOL_TOOLS_FILE',
  policy: 'SANDPOOL_POLICY_FILE',
} as const);

/**
 * The `sandpool worker` process entry: serves until SIGTERM/SIGINT, drains, resolves with the exit
 * code (0 after a clean drain). A second signal exits at once with 8 (EXIT_FORCED).
 */
export async function main(argv: string[], env: Readonly<Record<string, string | undefined>>): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: false,
      options: {
        ...Object.fromEntries(Object.keys(FLAG_TO_ENV).map((flag) => [flag, { type: 'string' as const }])),
        pretty: { type: 'boolean' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    process.stderr.write(`sandpool worker: ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const overlay: Record<string, string | undefined> = { ...env };
  for (const [flag, variable] of Object.entries(FLAG_TO_ENV)) {
    const value = values[flag];
    if (typeof value === 'string') overlay[variable] = value;
  }
  let config: Readonly<Config>;
  try {
    config = loadConfig(overlay);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    // Name the flag the person typed rather than the variable it stands for.
    let message = error.message;
    for (const [flag, variable] of Object.entries(FLAG_TO_ENV)) {
      if (typeof values[flag] === 'string') message = message.replaceAll(`${variable}=`, `--${flag}=`);
    }
    process.stderr.write(`sandpool worker: ${message}\n`);
    return 2;
  }
  const unknown = unknownVariables(env);

  const logger = pino(
    {
      level: config.logLevel,
      base: { pid: process.pid, hostname: hostname() },
      // Nothing logs these today; redaction keeps a future mistake from leaking code, outputs or
      // credentials (a Redis URL may carry a password).
      redact: { paths: LOG_REDACT_PATHS, censor: '[redacted]' },
    },
    values.pretty ? prettyDestination() : pino.destination({ dest: 1, sync: true }),
  );
  // A stop during start-up is kept and acted on once the worker exists (it may hold a job by
  // then, to be drained), instead of killing the process mid-way with the signal's default action.
  let early: NodeJS.Signals | undefined;
  const onEarlySignal = (signal: NodeJS.Signals) => {
    early ??= signal;
  };
  process.on('SIGTERM', onEarlySignal);
  process.on('SIGINT', onEarlySignal);
  if (unknown.length > 0) {
    logger.warn({ variables: unknown.slice(0, 20) }, 'environment variables named SANDPOOL_* that sandpool does not read (misspelt?): ignored');
  }
  let handle: WorkerHandle;
  try {
    handle = await startWorker(config, logger);
  } catch (error) {
    process.off('SIGTERM', onEarlySignal);
    process.off('SIGINT', onEarlySignal);
    logger.fatal({ err: (error as Error)?.message }, 'worker failed to start');
    logger.flush();
    // Said on stderr as well, as configuration errors are: the log may be silenced or shipped away.
    process.stderr.write(`sandpool worker: failed to start: ${(error as Error)?.message ?? String(error)}\n`);
    // Redis unreachable is the infrastructure failing (as `submit` says it); anything else is sandpool's.
    return error instanceof QueueError && error.code === 'REDIS_UNAVAILABLE' ? EXIT_REDIS_UNAVAILABLE : EXIT_FAILED;
  }

  return await new Promise<number>((resolve) => {
    let firstSignalAt: number | undefined;
    const onSignal = (signal: NodeJS.Signals) => {
      const now = Date.now();
      // One stop often arrives twice at once: a terminal's Ctrl-C reaches the whole process group
      // while npm, npx or `timeout` pass it on as well. A repeat within REPEAT_SIGNAL_MS is that
      // same request; only a later one means "now".
      if (firstSignalAt !== undefined && now - firstSignalAt < REPEAT_SIGNAL_MS) return;
      if (firstSignalAt !== undefined) {
        logger.warn({ signal }, 'second signal: exiting now; unfinished jobs return through stalled-job detection');
        logger.flush();
        // The process entry is the one place allowed to end the process outright.
        process.exit(EXIT_FORCED);
      }
      firstSignalAt = now;
      logger.info({ signal }, 'shutting down');
      handle.close().then(
        () => {
          process.off('SIGTERM', onSignal);
          process.off('SIGINT', onSignal);
          logger.flush();
          // Drained: if a connection still retrying against an absent Redis keeps the event loop
          // alive, end the process anyway (the timer itself holds nothing open).
          setTimeout(() => process.exit(0), EXIT_BACKSTOP_MS).unref();
          resolve(0);
        },
        (error: unknown) => {
          logger.error({ err: (error as Error)?.message }, 'shutdown failed');
          logger.flush();
          resolve(EXIT_FAILED);
        },
      );
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    process.off('SIGTERM', onEarlySignal);
    process.off('SIGINT', onEarlySignal);
    if (early !== undefined) onSignal(early);
  });
}

/** One line per log record, readable by a person: level, message, then the fields as JSON. */
function prettyDestination() {
  return {
    write(line: string) {
      try {
        const { level, msg, time, pid: _pid, hostname: _host, ...rest } = JSON.parse(line) as Record<string, unknown>;
        const fields = Object.keys(rest).length > 0 ? ` ${JSON.stringify(rest)}` : '';
        process.stderr.write(`${new Date(Number(time)).toISOString()} ${pino.levels.labels[Number(level)] ?? level} ${msg}${fields}\n`);
      } catch {
        // Not JSON (cannot happen with pino): pass it through untouched.
        process.stderr.write(line);
      }
    },
  };
}
