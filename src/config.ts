// Configuration: loadConfig(env) is the only reader of process.env in sandpool. The process entries
// (src/cli.ts, workers/main.ts) call it once at start-up and pass the frozen result down.
import { availableParallelism } from 'node:os';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { DEFAULT_CEILINGS, DEFAULT_LIMITS, LIMIT_KEYS, type CeilingMode, type Limits } from './limits.ts';
import { LimitsRequestSchema } from './request.ts';

/** What every unset variable means. One literal, so the defaults can be read in one place. */
export const CONFIG_DEFAULTS = Object.freeze({
  redisUrl: 'redis://127.0.0.1:6379',
  /** SPEC: the queue is a plain BullMQ queue named `sandpool`. */
  queue: 'sandpool',
  /**
   * BullMQ's own default, so a producer that knows nothing of sandpool reaches the queue as is.
   * For Redis Cluster give a hash tag, e.g. `{sandpool}`, so every key of the queue shares a slot.
   */
  prefix: 'bull',
  metricsPort: 9464,
  logLevel: 'info',
  lockDurationMs: 30_000,
  stalledIntervalMs: 30_000,
  /** A job whose worker died this many times more than once ends as internal_error. */
  maxStalledCount: 1,
  /** Tries for infrastructure failures (user outcomes are never retried). */
  attempts: 3,
  backoffMs: 1_000,
  shutdownGraceMs: 30_000,
  keepCompletedAgeSeconds: 24 * 3600,
  keepCompletedCount: 10_000,
  keepFailedAgeSeconds: 7 * 24 * 3600,
  keepFailedCount: 10_000,
  eventsMaxLen: 10_000,
  maxQueued: 100_000,
  maxQueuedPerTenant: 10_000,
  redisTimeoutMs: 5_000,
  threadsPerExecutor: 1,
  ceilingMode: 'clamp' as CeilingMode,
});

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Operator policy file (SANDPOOL_POLICY_FILE): ceilings and defaults for now. */
export const PolicyFileSchema = z
  .object({
    ceilings: LimitsRequestSchema.optional(),
    defaults: LimitsRequestSchema.optional(),
    ceilingMode: z.enum(['clamp', 'reject']).optional(),
  })
  .strict();

export interface Config {
  redisUrl: string;
  queue: string;
  prefix: string;
  /** Jobs one worker process takes at once. @default executors × threadsPerExecutor */
  concurrency: number;
  /** HTTP side port (/metrics, /healthz, /readyz); 0 picks a free port, null turns it off. */
  metricsPort: number | null;
  logLevel: (typeof LOG_LEVELS)[number];
  lockDurationMs: number;
  stalledIntervalMs: number;
  maxStalledCount: number;
  attempts: number;
  backoffMs: number;
  shutdownGraceMs: number;
  keepCompletedAgeSeconds: number;
  keepCompletedCount: number;
  keepFailedAgeSeconds: number;
  keepFailedCount: number;
  eventsMaxLen: number;
  /** Bound on jobs waiting in the queue; a submit past it fails fast with QUEUE_FULL. */
  maxQueued: number;
  maxQueuedPerTenant: number;
  /** Every Redis call of the client fails with REDIS_UNAVAILABLE after this. */
  redisTimeoutMs: number;
  /** Executor child processes of the engine. @default available cores */
  executors: number;
  threadsPerExecutor: number;
  ceilings: Readonly<Limits>;
  defaults: Readonly<Limits>;
  ceilingMode: CeilingMode;
  policyFile: string | undefined;
}

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const optionalInt = (min: number, max: number) => int(min, max).optional();

// Variable name → schema. Empty strings count as unset (a blank line in an env file).
const EnvSchema = z.object({
  SANDPOOL_REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, 'expected a redis:// or rediss:// URL')
    .optional(),
  SANDPOOL_QUEUE: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,128}$/, 'expected 1-128 of A-Z a-z 0-9 _ -')
    .optional(),
  SANDPOOL_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_{}.-]{1,64}$/, 'expected 1-64 of A-Z a-z 0-9 _ - . { } (no colon)')
    .optional(),
  SANDPOOL_CONCURRENCY: optionalInt(1, 10_000),
  SANDPOOL_METRICS_PORT: z.union([z.literal('off'), int(0, 65_535)]).optional(),
  SANDPOOL_LOG_LEVEL: z.enum(LOG_LEVELS).optional(),
  SANDPOOL_POLICY_FILE: z.string().min(1).optional(),
  SANDPOOL_LOCK_DURATION_MS: optionalInt(1_000, 3_600_000),
  SANDPOOL_STALLED_INTERVAL_MS: optionalInt(500, 3_600_000),
  SANDPOOL_MAX_STALLED_COUNT: optionalInt(0, 100),
  SANDPOOL_ATTEMPTS: optionalInt(1, 100),
  SANDPOOL_BACKOFF_MS: optionalInt(0, 3_600_000),
  SANDPOOL_SHUTDOWN_GRACE_MS: optionalInt(0, 3_600_000),
  SANDPOOL_KEEP_COMPLETED_AGE_S: optionalInt(0, 365 * 86_400),
  SANDPOOL_KEEP_COMPLETED_COUNT: optionalInt(0, 10_000_000),
  SANDPOOL_KEEP_FAILED_AGE_S: optionalInt(0, 365 * 86_400),
  SANDPOOL_KEEP_FAILED_COUNT: optionalInt(0, 10_000_000),
  SANDPOOL_EVENTS_MAX_LEN: optionalInt(100, 10_000_000),
  SANDPOOL_MAX_QUEUED: optionalInt(1, 100_000_000),
  SANDPOOL_MAX_QUEUED_PER_TENANT: optionalInt(1, 100_000_000),
  SANDPOOL_REDIS_TIMEOUT_MS: optionalInt(100, 600_000),
  SANDPOOL_EXECUTORS: optionalInt(1, 256),
  SANDPOOL_THREADS_PER_EXECUTOR: optionalInt(1, 256),
});

/** A configuration error: the message names the variable (or policy field) and what was wrong. */
export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  override name = 'ConfigError';
}

/**
 * Reads sandpool's variables from `env` (pass `process.env` from a process entry), validates them
 * and returns a frozen Config. Throws ConfigError naming the bad variable or policy field.
 */
export function loadConfig(env: Readonly<Record<string, string | undefined>>): Readonly<Config> {
  const present: Record<string, string> = {};
  for (const key of Object.keys(EnvSchema.shape)) {
    const value = env[key];
    if (value !== undefined && value.trim() !== '') present[key] = value.trim();
  }
  const parsed = EnvSchema.safeParse(present);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => {
      const name = String(issue.path[0] ?? '(env)');
      return `${name}=${JSON.stringify(present[name] ?? '')}: ${issue.message}`;
    });
    throw new ConfigError(`invalid configuration: ${lines.join('; ')}`);
  }
  const e = parsed.data;
  const policy = e.SANDPOOL_POLICY_FILE === undefined ? undefined : readPolicyFile(e.SANDPOOL_POLICY_FILE);
  const executors = e.SANDPOOL_EXECUTORS ?? Math.max(1, availableParallelism());
  const threadsPerExecutor = e.SANDPOOL_THREADS_PER_EXECUTOR ?? CONFIG_DEFAULTS.threadsPerExecutor;
  const ceilings = mergeLimits(DEFAULT_CEILINGS, policy?.ceilings);
  const defaults = mergeLimits(DEFAULT_LIMITS, policy?.defaults);
  const metricsPort = e.SANDPOOL_METRICS_PORT === 'off' ? null : (e.SANDPOOL_METRICS_PORT ?? CONFIG_DEFAULTS.metricsPort);

  const config: Config = {
    redisUrl: e.SANDPOOL_REDIS_URL ?? CONFIG_DEFAULTS.redisUrl,
    queue: e.SANDPOOL_QUEUE ?? CONFIG_DEFAULTS.queue,
    prefix: e.SANDPOOL_PREFIX ?? CONFIG_DEFAULTS.prefix,
    concurrency: e.SANDPOOL_CONCURRENCY ?? executors * threadsPerExecutor,
    metricsPort,
    logLevel: e.SANDPOOL_LOG_LEVEL ?? 'info',
    lockDurationMs: e.SANDPOOL_LOCK_DURATION_MS ?? CONFIG_DEFAULTS.lockDurationMs,
    stalledIntervalMs: e.SANDPOOL_STALLED_INTERVAL_MS ?? CONFIG_DEFAULTS.stalledIntervalMs,
    maxStalledCount: e.SANDPOOL_MAX_STALLED_COUNT ?? CONFIG_DEFAULTS.maxStalledCount,
    attempts: e.SANDPOOL_ATTEMPTS ?? CONFIG_DEFAULTS.attempts,
    backoffMs: e.SANDPOOL_BACKOFF_MS ?? CONFIG_DEFAULTS.backoffMs,
    shutdownGraceMs: e.SANDPOOL_SHUTDOWN_GRACE_MS ?? CONFIG_DEFAULTS.shutdownGraceMs,
    keepCompletedAgeSeconds: e.SANDPOOL_KEEP_COMPLETED_AGE_S ?? CONFIG_DEFAULTS.keepCompletedAgeSeconds,
    keepCompletedCount: e.SANDPOOL_KEEP_COMPLETED_COUNT ?? CONFIG_DEFAULTS.keepCompletedCount,
    keepFailedAgeSeconds: e.SANDPOOL_KEEP_FAILED_AGE_S ?? CONFIG_DEFAULTS.keepFailedAgeSeconds,
    keepFailedCount: e.SANDPOOL_KEEP_FAILED_COUNT ?? CONFIG_DEFAULTS.keepFailedCount,
    eventsMaxLen: e.SANDPOOL_EVENTS_MAX_LEN ?? CONFIG_DEFAULTS.eventsMaxLen,
    maxQueued: e.SANDPOOL_MAX_QUEUED ?? CONFIG_DEFAULTS.maxQueued,
    maxQueuedPerTenant: e.SANDPOOL_MAX_QUEUED_PER_TENANT ?? CONFIG_DEFAULTS.maxQueuedPerTenant,
    redisTimeoutMs: e.SANDPOOL_REDIS_TIMEOUT_MS ?? CONFIG_DEFAULTS.redisTimeoutMs,
    executors,
    threadsPerExecutor,
    ceilings,
    defaults,
    ceilingMode: policy?.ceilingMode ?? CONFIG_DEFAULTS.ceilingMode,
    policyFile: e.SANDPOOL_POLICY_FILE,
  };
  return Object.freeze(config);
}

function mergeLimits(base: Readonly<Limits>, over: Partial<Record<keyof Limits, number | undefined>> | undefined): Readonly<Limits> {
  const merged: Limits = { ...base };
  for (const key of LIMIT_KEYS) {
    const value = over?.[key];
    if (value !== undefined) merged[key] = value;
  }
  return Object.freeze(merged);
}

function readPolicyFile(path: string): z.infer<typeof PolicyFileSchema> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new ConfigError(`SANDPOOL_POLICY_FILE=${JSON.stringify(path)}: cannot be read`, { cause });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new ConfigError(`SANDPOOL_POLICY_FILE=${JSON.stringify(path)}: not valid JSON`, { cause });
  }
  const parsed = PolicyFileSchema.safeParse(json);
  if (!parsed.success) {
    const lines = parsed.error.issues.map(
      (issue) => `${issue.path.length > 0 ? issue.path.join('.') : '(root)'}: ${issue.message}`,
    );
    throw new ConfigError(`SANDPOOL_POLICY_FILE=${JSON.stringify(path)}: ${lines.join('; ')}`);
  }
  return parsed.data;
}
