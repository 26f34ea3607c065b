// Configuration: loadConfig(env) (the worker) and loadClientConfig(env) (client commands) are the
// only readers of process.env in sandpool. The process entries (src/cli.ts, workers/main.ts) call one
// of them once at start-up and pass the frozen result down.
import { availableParallelism } from 'node:os';
import { closeSync, constants as fsConstants, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { z } from 'zod';
import { DEFAULT_CEILINGS, DEFAULT_LIMITS, LIMIT_FLOORS, LIMIT_KEYS, defaultsAboveCeilings, type CeilingMode, type Limits } from './limits.ts';
import { LimitsRequestSchema } from './request.ts';
import { PrescreenOptionsSchema, type PrescreenOptions } from './prescreen-options.ts';
import { createToolRegistry, type ToolDefinitionInput, type ToolRegistry } from './tools.ts';
// createPool's own bounds, so that every value the configuration accepts is one createPool accepts.
import { KEY_PREFIX, POOL_MAX_EXECUTORS, POOL_MAX_STANDBY_EXECUTORS, POOL_MAX_THREADS_PER_EXECUTOR, QUEUE_NAME } from './options.ts';

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


/** A policy file is a few hundred bytes; this bounds what start-up reads and holds. */
const POLICY_FILE_MAX_BYTES = 1024 * 1024;
/** A tools file holds the tools' code: the bound of every file the CLI reads (`run --tools`'s too). */
const TOOLS_FILE_MAX_BYTES = 64 * 1024 * 1024;

/** Operator policy file (SANDPOOL_POLICY_FILE): ceilings, defaults and the pre-screen's settings. */
export const PolicyFileSchema = z
  .object({
    ceilings: LimitsRequestSchema.optional(),
    defaults: LimitsRequestSchema.optional(),
    ceilingMode: z.enum(['clamp', 'reject']).optional(),
    prescreen: PrescreenOptionsSchema.optional(),
  })
  .strict()
  .superRefine((policy, ctx) => {
    // compileLimits raises every limit to its floor, so a ceiling below the floor would be exceeded
    // by every job (and a default below it never applied): refuse it rather than break the promise
    // that nothing runs above a ceiling.
    for (const group of ['ceilings', 'defaults'] as const) {
      for (const key of LIMIT_KEYS) {
        const value = policy[group]?.[key];
        if (value !== undefined && value < LIMIT_FLOORS[key]) {
          ctx.addIssue({
            code: 'custom',
            path: [group, key],
            message: `${value} is below the floor of ${LIMIT_FLOORS[key]} (the least any job runs with): expected at least ${LIMIT_FLOORS[key]}`,
          });
        }
      }
    }
    for (const { key, value, ceiling } of defaultsAboveCeilings(policy.defaults as Partial<Limits> | undefined, policy.ceilings as Partial<Limits> | undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: ['defaults', key],
        message: `${value} is above the ceiling of ${ceiling} (ceilings.${key}, or its default): expected at most ${ceiling}`,
      });
    }
  });

/** The configuration a client needs (`sandpool submit`, `run --redis`): everything but the policy. */
export interface ClientConfig {
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
  /** Executor child processes of the engine. @default available cores, at most 64 (createPool's bound) */
  executors: number;
  threadsPerExecutor: number;
  /** Idle executors started ahead, to take a dead one's place at once (createPool's standbyExecutors). @default 0 */
  standbyExecutors: number;
}

/**
 * The worker's configuration: the client's, plus the policy (SANDPOOL_POLICY_FILE) it enforces and
 * the tools (SANDPOOL_TOOLS_FILE) it serves.
 */
export interface Config extends ClientConfig {
  ceilings: Readonly<Limits>;
  defaults: Readonly<Limits>;
  ceilingMode: CeilingMode;
  /** The operator's pre-screen settings, as createPool's `prescreen` option. @default the default rules, enforced */
  prescreen: Readonly<PrescreenOptions> | undefined;
  /** The tools jobs may call, checked at start-up. @default none: every tool request is `unknown_tool` */
  tools: ToolRegistry | undefined;
  policyFile: string | undefined;
  toolsFile: string | undefined;
}

// Plain decimal digits only, nothing around them, as the CLI's flags (integerFlag in src/cli.ts):
// z.coerce.number() also took 0x10, 0b11, 1e3 and 1.0, so a typo could pass as some other number.
const DECIMAL_DIGITS = /^[0-9]+$/;
const isIntIn = (text: string, min: number, max: number) =>
  DECIMAL_DIGITS.test(text) && Number(text) >= min && Number(text) <= max;
const optionalInt = (min: number, max: number) =>
  z
    .string()
    .refine((text) => isIntIn(text, min, max), `expected a whole number from ${min} to ${max} (decimal digits only)`)
    .transform(Number)
    .optional();

// Variable name → schema. Blank values count as unset (a blank line in an env file); text values
// are trimmed, numbers are not (see DECIMAL_DIGITS).
const EnvSchema = z.object({
  SANDPOOL_REDIS_URL: z
    .string()
    .trim()
    .superRefine((url, ctx) => {
      const problem = redisUrlProblem(url);
      if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
    })
    .optional(),
  SANDPOOL_QUEUE: z
    .string()
    .trim()
    .regex(QUEUE_NAME.pattern, `expected ${QUEUE_NAME.expected}`)
    .optional(),
  SANDPOOL_PREFIX: z
    .string()
    .trim()
    .regex(KEY_PREFIX.pattern, `expected ${KEY_PREFIX.expected}`)
    .optional(),
  SANDPOOL_CONCURRENCY: optionalInt(1, 10_000),
  SANDPOOL_METRICS_PORT: z
    .string()
    .refine((text) => text === 'off' || isIntIn(text, 0, 65_535), "expected a port 0..65535 (decimal digits) or 'off'")
    .transform((text) => (text === 'off' ? ('off' as const) : Number(text)))
    .optional(),
  SANDPOOL_LOG_LEVEL: z.string().trim().pipe(z.enum(LOG_LEVELS)).optional(),
  SANDPOOL_POLICY_FILE: z.string().trim().min(1).optional(),
  SANDPOOL_TOOLS_FILE: z.string().trim().min(1).optional(),
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
  SANDPOOL_EXECUTORS: optionalInt(1, POOL_MAX_EXECUTORS),
  SANDPOOL_THREADS_PER_EXECUTOR: optionalInt(1, POOL_MAX_THREADS_PER_EXECUTOR),
  SANDPOOL_STANDBY_EXECUTORS: optionalInt(0, POOL_MAX_STANDBY_EXECUTORS),
});

/**
 * Why `url` is not a Redis URL ioredis will take, or undefined. Checked here, with the WHATWG parser
 * ioredis uses, so a malformed URL stops start-up naming the variable instead of ioredis throwing
 * `TypeError: Invalid URL` (or a URIError) later. The messages never contain the URL.
 */
function redisUrlProblem(url: string): string | undefined {
  if (!/^rediss?:\/\//.test(url)) return 'expected a redis:// or rediss:// URL';
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'expected a redis:// or rediss:// URL: it does not parse as a URL';
  }
  if (parsed.hostname === '') return 'expected a redis:// or rediss:// URL with a host';
  try {
    // ioredis percent-decodes the user and password with decodeURIComponent, which throws on a
    // malformed escape such as %zz.
    decodeURIComponent(parsed.username);
    decodeURIComponent(parsed.password);
  } catch {
    return 'the user or password has a malformed %-escape (write % as %25)';
  }
  // ioredis takes the path as the database number (SELECT), so anything else fails at connect time.
  if (!/^(\/[0-9]*)?$/.test(parsed.pathname)) return 'the path, if any, must be a database number, e.g. /0';
  return undefined;
}

/** `url` for a message, without its secrets; undefined when it does not parse as a URL with a host. */
function redactedUrl(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  // Without a host the parser keeps everything after the scheme as an opaque path, where a
  // password can sit (`redis:user:pw@h`): show none of it.
  if (parsed.host === '') return undefined;
  const auth = parsed.username !== '' || parsed.password !== '' ? '***@' : '';
  // Only a database number is shown of the path; query values can carry options, `password` included
  // (ioredis reads them), and a fragment is never needed to tell which server was meant.
  const path = /^(\/[0-9]*)?$/.test(parsed.pathname) ? parsed.pathname : '/***';
  const query = parsed.search !== '' ? '?***' : '';
  const fragment = parsed.hash !== '' ? '#***' : '';
  return `${parsed.protocol}//${auth}${parsed.host}${path}${query}${fragment}`;
}

/**
 * A URL (e.g. a Redis URL) fit for a message or a log line: the user and password become `***`, as
 * do the query, the fragment and any path but a database number, so
 * `redis://admin:hunter2@h:6379/0` gives `redis://***@h:6379/0`. A string that does not parse as a
 * URL with a host is not shown at all.
 */
export function redactUrl(url: string): string {
  return redactedUrl(url) ?? '(URL not shown: it does not parse)';
}

// A variable whose name says it holds a secret is never quoted in a message. None does today
// (only the Redis URL carries one); a future HMAC key or password variable is covered by its name
// without anyone remembering to add it here.
const SECRET_NAME = /(?:PASSWORD|PASSWD|SECRET|TOKEN|HMAC|CREDENTIALS?|(?:^|_)KEY)(?:_|$)/;

/** How a bad variable's value is shown in a ConfigError: quoted, redacted, or not at all. */
function shownValue(name: string, value: string): string {
  if (name === 'SANDPOOL_REDIS_URL') {
    const redacted = redactedUrl(value.trim());
    return redacted === undefined ? '(not shown: it does not parse, and may hold a password)' : JSON.stringify(redacted);
  }
  if (SECRET_NAME.test(name)) return '(not shown)';
  return JSON.stringify(value);
}

/**
 * The default executor count for `cores` available CPUs: one per core, capped at createPool's
 * maximum, so a host with more cores than that still starts with no configuration at all.
 */
export function defaultExecutors(cores: number): number {
  return Math.min(POOL_MAX_EXECUTORS, Math.max(1, Math.floor(cores)));
}

/** A configuration error: the message names the variable (or policy field) and what was wrong. */
export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  override name = 'ConfigError';
}

/**
 * Reads sandpool's variables from `env` (pass `process.env` from a process entry), validates them,
 * reads and validates the policy file (SANDPOOL_POLICY_FILE) and returns a frozen Config: what the
 * worker runs on. Throws ConfigError naming the bad variable or policy field.
 */
export function loadConfig(env: Readonly<Record<string, string | undefined>>): Readonly<Config> {
  const base = readEnv(env);
  const policy = base.policyFile === undefined ? undefined : readPolicyFile(base.policyFile);
  const ceilings = mergeLimits(DEFAULT_CEILINGS, policy?.ceilings);
  const tools = base.toolsFile === undefined ? undefined : readToolsFile(base.toolsFile);
  try {
    // Under ceilingMode 'reject' every call would be rejected; under 'clamp' the tool runs at the ceiling.
    if (policy?.ceilingMode === 'reject') tools?.checkLimits?.(ceilings);
  } catch (cause) {
    const against = base.policyFile === undefined ? 'the built-in ceilings' : `the ceilings of SANDPOOL_POLICY_FILE=${JSON.stringify(base.policyFile)}`;
    throw new ConfigError(`SANDPOOL_TOOLS_FILE=${JSON.stringify(base.toolsFile)}: ${(cause as Error).message} (${against})`, { cause });
  }
  const config: Config = {
    ...base.config,
    ceilings,
    // A built-in default above a ceiling the file lowered is lowered to it, as createPool does
    // (one the file sets above its ceiling was refused above); the pool would refuse it whole.
    defaults: mergeLimits(DEFAULT_LIMITS, policy?.defaults, ceilings),
    ceilingMode: policy?.ceilingMode ?? CONFIG_DEFAULTS.ceilingMode,
    prescreen: policy?.prescreen === undefined ? undefined : Object.freeze(policy.prescreen),
    tools,
    policyFile: base.policyFile,
    toolsFile: base.toolsFile,
  };
  return Object.freeze(config);
}

/**
 * loadConfig for client commands (`sandpool submit`, `run --redis`): validates the same variables
 * but does not read the policy file, which only the worker enforces; a client on a host where that
 * file is missing or unreadable still works. Throws ConfigError naming the bad variable.
 */
/**
 * SANDPOOL_* variables in `env` that no configuration reads: a misspelt name (SANDPOOL_REDIS for
 * SANDPOOL_REDIS_URL) would otherwise fall back to the default without a word. Said, not refused:
 * platforms set variables of their own under a service's name (Kubernetes: SANDPOOL_PORT, ...).
 */
export function unknownVariables(env: Readonly<Record<string, string | undefined>>): string[] {
  const known = new Set(Object.keys(EnvSchema.shape));
  return Object.keys(env).filter((name) => name.startsWith('SANDPOOL_') && !known.has(name)).sort();
}

export function loadClientConfig(env: Readonly<Record<string, string | undefined>>): Readonly<ClientConfig> {
  return Object.freeze(readEnv(env).config);
}

function readEnv(env: Readonly<Record<string, string | undefined>>): {
  config: ClientConfig;
  policyFile: string | undefined;
  toolsFile: string | undefined;
} {
  const present: Record<string, string> = {};
  for (const key of Object.keys(EnvSchema.shape)) {
    const value = env[key];
    if (value !== undefined && value.trim() !== '') present[key] = value;
  }
  const parsed = EnvSchema.safeParse(present);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => {
      const name = String(issue.path[0] ?? '(env)');
      return `${name}=${shownValue(name, present[name] ?? '')}: ${issue.message}`;
    });
    throw new ConfigError(`invalid configuration: ${lines.join('; ')}`);
  }
  const e = parsed.data;
  const executors = e.SANDPOOL_EXECUTORS ?? defaultExecutors(availableParallelism());
  const threadsPerExecutor = e.SANDPOOL_THREADS_PER_EXECUTOR ?? CONFIG_DEFAULTS.threadsPerExecutor;
  const metricsPort = e.SANDPOOL_METRICS_PORT === 'off' ? null : (e.SANDPOOL_METRICS_PORT ?? CONFIG_DEFAULTS.metricsPort);

  const config: ClientConfig = {
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
    standbyExecutors: e.SANDPOOL_STANDBY_EXECUTORS ?? 0,
  };
  return { config, policyFile: e.SANDPOOL_POLICY_FILE, toolsFile: e.SANDPOOL_TOOLS_FILE };
}

function mergeLimits(
  base: Readonly<Limits>,
  over: Partial<Record<keyof Limits, number | undefined>> | undefined,
  ceilings?: Readonly<Limits>,
): Readonly<Limits> {
  const merged: Limits = { ...base };
  for (const key of LIMIT_KEYS) {
    const value = over?.[key];
    if (value !== undefined) merged[key] = value;
    else if (ceilings !== undefined) merged[key] = Math.min(merged[key], ceilings[key]);
  }
  return Object.freeze(merged);
}

function readPolicyFile(path: string): z.infer<typeof PolicyFileSchema> {
  const where = `SANDPOOL_POLICY_FILE=${JSON.stringify(path)}`;
  const parsed = PolicyFileSchema.safeParse(readJsonFile(where, path, POLICY_FILE_MAX_BYTES));
  if (!parsed.success) {
    const lines = parsed.error.issues.map(
      (issue) => `${issue.path.length > 0 ? issue.path.join('.') : '(root)'}: ${issue.message}`,
    );
    throw new ConfigError(`${where}: ${lines.join('; ')}`);
  }
  return parsed.data;
}

/** The tools file: a JSON array of tool definitions, registered here so a bad one stops start-up. */
function readToolsFile(path: string): ToolRegistry {
  const where = `SANDPOOL_TOOLS_FILE=${JSON.stringify(path)}`;
  const definitions = readJsonFile(where, path, TOOLS_FILE_MAX_BYTES);
  if (!Array.isArray(definitions)) throw new ConfigError(`${where}: expected a JSON array of tool definitions`);
  try {
    return createToolRegistry(definitions as ToolDefinitionInput[]);
  } catch (cause) {
    throw new ConfigError(`${where}: ${(cause as Error).message}`, { cause });
  }
}

/**
 * A configuration file's JSON: a regular file of at most `maxBytes`, UTF-8 (a leading BOM skipped).
 * `where` names it in every error (the variable and the path).
 */
function readJsonFile(where: string, path: string, maxBytes: number): unknown {
  const limit = maxBytes >= 1024 * 1024 ? `${maxBytes / (1024 * 1024)} MiB` : `${maxBytes} bytes`;
  let fd: number;
  try {
    // O_NONBLOCK: opening a FIFO for reading otherwise waits for a writer, hanging start-up before
    // fstat can refuse it. It changes nothing for a regular file.
    fd = openSync(path, fsConstants.O_RDONLY | (fsConstants.O_NONBLOCK ?? 0));
  } catch (cause) {
    throw new ConfigError(`${where}: cannot be opened: ${fsErrorReason(cause)}`, { cause });
  }
  let bytes: Buffer;
  try {
    // The descriptor's own stat, not the path's: what is checked is what is read.
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new ConfigError(`${where}: not a regular file (${fileKind(stat)})`);
    if (stat.size > maxBytes) {
      throw new ConfigError(`${where}: ${stat.size} bytes, over the limit of ${limit} (${maxBytes} bytes)`);
    }
    // One byte past the limit, so a file that grew after fstat is still caught, not cut short.
    bytes = readUpTo(fd, maxBytes + 1);
    if (bytes.length > maxBytes) {
      throw new ConfigError(`${where}: over the limit of ${limit} (${maxBytes} bytes)`);
    }
  } catch (cause) {
    if (cause instanceof ConfigError) throw cause;
    throw new ConfigError(`${where}: cannot be read: ${fsErrorReason(cause)}`, { cause });
  } finally {
    closeSync(fd);
  }
  let text: string;
  try {
    // fatal: a file that is not UTF-8 is refused rather than read with replacement characters.
    // TextDecoder drops a leading UTF-8 BOM (some editors write one), which JSON.parse would refuse.
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (cause) {
    throw new ConfigError(`${where}: not UTF-8 text`, { cause });
  }
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new ConfigError(`${where}: not valid JSON (${(cause as Error).message})`, { cause });
  }
}

/** Reads from `fd` until end of file or `max` bytes, whichever comes first. */
function readUpTo(fd: number, max: number): Buffer {
  const buffer = Buffer.alloc(max);
  let length = 0;
  while (length < max) {
    const read = readSync(fd, buffer, length, max - length, null);
    if (read === 0) break;
    length += read;
  }
  return buffer.subarray(0, length);
}

/** The error code and a plain reason for a failed open or read, e.g. `ENOENT (no such file)`. */
function fsErrorReason(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const reasons: Record<string, string> = {
    ENOENT: 'no such file',
    EACCES: 'permission denied',
    EPERM: 'operation not permitted',
    EISDIR: 'a directory',
    ENOTDIR: 'a part of the path is not a directory',
    ELOOP: 'too many symbolic links',
    ENAMETOOLONG: 'name too long',
    EMFILE: 'too many open files',
    EIO: 'I/O error',
  };
  if (code === undefined) return (error as Error | undefined)?.message ?? String(error);
  return reasons[code] === undefined ? code : `${code} (${reasons[code]})`;
}

function fileKind(stat: Stats): string {
  if (stat.isDirectory()) return 'a directory';
  if (stat.isFIFO()) return 'a FIFO';
  if (stat.isCharacterDevice()) return 'a character device';
  if (stat.isBlockDevice()) return 'a block device';
  if (stat.isSocket()) return 'a socket';
  return 'an unknown kind of file';
}
