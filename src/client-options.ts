// createClient's options: defaults applied and every one checked before the client connects, as
// createPool's are (src/pool-options.ts). A bad number here used to reach Redis: eventsMaxLen 'x'
// was written to the queue's meta hash and broke every submit of every client, and a NaN timeout
// or attempt count failed each call as if Redis were down.
import { DEFAULT_SIZE_LIMITS, type SizeLimits } from './limits.ts';
import { KEY_PREFIX, QUEUE_NAME, integerOption, optionObject, patternOption, refuseUnknownKeys, retentionOption, type Retention } from './options.ts';
import { compilePrescreenOption, type CompiledPrescreenOptions, type PrescreenOptions } from './prescreen.ts';
import { DEFAULT_PREFIX, DEFAULT_QUEUE, checkConnection, type Connection } from './queue.ts';

export const CLIENT_DEFAULTS = Object.freeze({
  queue: DEFAULT_QUEUE,
  prefix: DEFAULT_PREFIX,
  maxQueued: 100_000,
  maxQueuedPerTenant: 10_000,
  attempts: 3,
  backoffMs: 1_000,
  redisTimeoutMs: 5_000,
  /** Added to a job's own time budget to bound execute()'s wait. */
  waitSlackMs: 30_000,
});


export interface CompiledClientOptions {
  connection: Connection;
  queue: string;
  prefix: string;
  maxQueued: number;
  maxQueuedPerTenant: number;
  queueTimeoutMs: number | undefined;
  attempts: number;
  backoffMs: number;
  keepCompleted: Retention | undefined;
  keepFailed: Retention | undefined;
  eventsMaxLen: number | undefined;
  redisTimeoutMs: number;
  sizeLimits: SizeLimits;
  prescreen: PrescreenOptions;
  /** The operator layer compiled once (a bad setting fails createClient, naming it). */
  prescreenBase: CompiledPrescreenOptions;
}

const CLIENT_OPTION_KEYS: ReadonlySet<string> = new Set([
  'connection', 'queue', 'prefix', 'maxQueued', 'maxQueuedPerTenant', 'queueTimeoutMs', 'attempts', 'backoffMs',
  'keepCompleted', 'keepFailed', 'eventsMaxLen', 'redisTimeoutMs', 'sizeLimits', 'prescreen',
]);

/** createClient's options with defaults applied; throws a TypeError/RangeError naming the bad one. */
export function compileClientOptions(options: unknown): CompiledClientOptions {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new TypeError(`options: expected an object with a connection, got ${options === null ? 'null' : Array.isArray(options) ? 'an array' : typeof options}`);
  }
  refuseUnknownKeys('', options, CLIENT_OPTION_KEYS);
  const o = options as Record<string, unknown>;
  if (o.connection === undefined) throw new TypeError('options.connection: required (a redis:// URL or ioredis options)');
  const sizes = optionObject('sizeLimits', o.sizeLimits, ['maxCodeBytes', 'maxInputBytes']);
  const prescreen = (o.prescreen ?? {}) as PrescreenOptions;
  const prescreenBase = compilePrescreenOption(prescreen);
  return {
    connection: checkConnection(o.connection),
    queue: patternOption('queue', o.queue, CLIENT_DEFAULTS.queue, QUEUE_NAME.pattern, QUEUE_NAME.expected),
    prefix: patternOption('prefix', o.prefix, CLIENT_DEFAULTS.prefix, KEY_PREFIX.pattern, KEY_PREFIX.expected),
    maxQueued: integerOption('maxQueued', o.maxQueued, CLIENT_DEFAULTS.maxQueued, 1, 100_000_000),
    maxQueuedPerTenant: integerOption('maxQueuedPerTenant', o.maxQueuedPerTenant, CLIENT_DEFAULTS.maxQueuedPerTenant, 1, 100_000_000),
    queueTimeoutMs: o.queueTimeoutMs === undefined ? undefined : integerOption('queueTimeoutMs', o.queueTimeoutMs, 0, 1, 86_400_000),
    attempts: integerOption('attempts', o.attempts, CLIENT_DEFAULTS.attempts, 1, 100),
    backoffMs: integerOption('backoffMs', o.backoffMs, CLIENT_DEFAULTS.backoffMs, 0, 3_600_000),
    keepCompleted: retentionOption('keepCompleted', o.keepCompleted),
    keepFailed: retentionOption('keepFailed', o.keepFailed),
    eventsMaxLen: o.eventsMaxLen === undefined ? undefined : integerOption('eventsMaxLen', o.eventsMaxLen, 0, 100, 10_000_000),
    redisTimeoutMs: integerOption('redisTimeoutMs', o.redisTimeoutMs, CLIENT_DEFAULTS.redisTimeoutMs, 100, 600_000),
    sizeLimits: {
      maxCodeBytes: integerOption('sizeLimits.maxCodeBytes', sizes?.maxCodeBytes, DEFAULT_SIZE_LIMITS.maxCodeBytes, 1, 2 ** 31),
      maxInputBytes: integerOption('sizeLimits.maxInputBytes', sizes?.maxInputBytes, DEFAULT_SIZE_LIMITS.maxInputBytes, 1, 2 ** 31),
    },
    prescreen,
    prescreenBase,
  };
}
