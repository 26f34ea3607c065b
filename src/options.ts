// Checks for the options a program passes to createPool, createClient and createWorker: a mistake
// there is the calling program's bug, so each is an error naming `options.<name>`, thrown before
// anything starts. Pure, no dependencies.

/** `value`, or `fallback` when undefined; a RangeError naming `options.<name>` unless an integer in min..max. */
export function integerOption(name: string, value: unknown, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`options.${name}: expected an integer from ${min} to ${max}, got ${describeValue(value)}`);
  }
  return value;
}

/** A RangeError naming the first key of `options` not in `known`. */
export function refuseUnknownKeys(name: string, options: object, known: ReadonlySet<string>): void {
  const unknown = Object.keys(options).find((key) => !known.has(key));
  if (unknown !== undefined) {
    throw new RangeError(`${name === '' ? 'options' : `options.${name}`}.${unknown.slice(0, 64)}: unknown option`);
  }
}

/**
 * Throws a TypeError naming the first key of a per-call options object that is not one of `known`
 * (`call` names the method): a misspelt option (`sginal`) silently did nothing. On every job's path,
 * so a plain loop (no array of keys).
 */
export function refuseUnknownCallOptions(call: string, options: object, known: ReadonlySet<string>): void {
  // An AbortSignal, an array or a Map has no own keys to be refused for: given where `{ signal }`
  // belongs, the job would run uncancellable.
  const prototype: unknown = Object.getPrototypeOf(options);
  if (prototype !== Object.prototype && prototype !== null) {
    const name = Array.isArray(options) ? 'array' : String((options as { constructor?: { name?: unknown } }).constructor?.name ?? 'object').slice(0, 64);
    throw new TypeError(`${call}(): options must be a plain object ({ ${[...known].join(', ')} }), got ${/^[AEIOU]/i.test(name) ? 'an' : 'a'} ${name}`);
  }
  for (const key in options) {
    if (Object.hasOwn(options, key) && !known.has(key)) {
      throw new TypeError(`${call}(): options.${key.slice(0, 64)}: unknown option (known: ${[...known].join(', ')})`);
    }
  }
}

/** An optional nested options object: undefined, or a plain object holding only `keys`. */
export function optionObject(name: string, value: unknown, keys: readonly string[]): Record<string, unknown> | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new RangeError(`options.${name}: expected an object, got ${describeValue(value)}`);
  }
  const unknown = Object.keys(value).find((key) => !keys.includes(key));
  if (unknown !== undefined) {
    throw new RangeError(`options.${name}.${unknown.slice(0, 64)}: unknown (expected one of ${keys.join(', ')})`);
  }
  return value as Record<string, unknown>;
}

/** `value` if it is a string matching `pattern`, or `fallback` when undefined; else a TypeError saying what was expected. */
export function patternOption(name: string, value: unknown, fallback: string, pattern: RegExp, expected: string): string {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !pattern.test(value)) {
    throw new TypeError(`options.${name}: expected ${expected}, got ${describeValue(value)}`);
  }
  return value;
}

/** A value for a message: its type for objects, a short quote for strings. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}…` : value);
  if (typeof value === 'object' || typeof value === 'function') return typeof value;
  return String(value);
}

/** A name a queue or key prefix may have: the same rule for createClient, createWorker and the environment. */
export interface NameRule {
  pattern: RegExp;
  expected: string;
}
/** BullMQ refuses a ':' in a queue name. */
export const QUEUE_NAME: NameRule = { pattern: /^[A-Za-z0-9_-]{1,128}$/, expected: '1-128 of A-Z a-z 0-9 _ -' };
/** A hash tag such as `{sandpool}` keeps every key on one Redis Cluster slot; a ':' would split the key space. */
export const KEY_PREFIX: NameRule = { pattern: /^[A-Za-z0-9_{}.-]{1,64}$/, expected: '1-64 of A-Z a-z 0-9 _ - . { } (no colon)' };

/** createPool's bounds on executors and threads per executor, which the environment takes as well. */
export const POOL_MAX_EXECUTORS = 64;
/** The most standby executors a pool keeps (createPool's standbyExecutors). */
export const POOL_MAX_STANDBY_EXECUTORS = 8;
export const POOL_MAX_THREADS_PER_EXECUTOR = 64;

/** The longest delay setTimeout keeps: a longer one fires after 1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Resolves once `done` settles or `ms` have passed, whichever is first. A wait longer than
 * setTimeout keeps (Infinity included) waits for `done` alone, rather than 1 ms.
 */
export async function settledWithin(done: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    done.then(() => undefined, () => undefined),
    new Promise<void>((resolve) => {
      if (ms <= MAX_TIMER_MS) timer = setTimeout(resolve, ms);
    }),
  ]);
  clearTimeout(timer);
}

export interface Retention {
  ageSeconds: number;
  count: number;
}

/**
 * How long and how many finished jobs are kept: each field from `value`, else from `fallback`;
 * without a fallback both must be given. Bounds as SANDPOOL_KEEP_*'s.
 */
export function retentionOption(name: string, value: unknown, fallback: Retention): Retention;
export function retentionOption(name: string, value: unknown): Retention | undefined;
export function retentionOption(name: string, value: unknown, fallback?: Retention): Retention | undefined {
  const fields = optionObject(name, value, ['ageSeconds', 'count']);
  if (fields === undefined) return fallback;
  if (fallback === undefined && (fields.ageSeconds === undefined || fields.count === undefined)) {
    throw new RangeError(`options.${name}: expected { ageSeconds, count }, both given`);
  }
  return {
    ageSeconds: integerOption(`${name}.ageSeconds`, fields.ageSeconds, fallback?.ageSeconds ?? 0, 0, 365 * 86_400),
    count: integerOption(`${name}.count`, fields.count, fallback?.count ?? 0, 0, 10_000_000),
  };
}

/** A pino-like logger with `methods`, or undefined; else an error (of `Kind`) naming options.logger. */
export function loggerOption<L>(
  value: unknown,
  methods: readonly string[],
  Kind: new (message: string) => Error = TypeError,
): L | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || methods.some((m) => typeof (value as Record<string, unknown>)[m] !== 'function')) {
    throw new Kind(`options.logger: expected a pino logger (with ${methods.join(', ')} methods)`);
  }
  return value as L;
}
