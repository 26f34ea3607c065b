// Limits: the defaults every job gets, the ceilings an operator (or a tenant policy) sets, and
// compileLimits(), which turns what a request asks for into the frozen limits a job runs under.
// Pure: no I/O, used by the pool, the client and the worker alike.

/** The per-job limits a request may ask for. Every field carries its unit in its name. */
export interface Limits {
  /** Wall-clock budget for the whole run, async work included. */
  timeoutMs: number;
  /** CPU time the isolate may burn, measured by V8 for that isolate alone. */
  cpuTimeMs: number;
  /**
   * Isolate heap limit. V8 honours it approximately: a determined snippet may touch 2–3× this
   * before it is stopped; the executor's RSS ceiling is the backstop for what the heap limit misses.
   */
  memoryMb: number;
  /** Cap on stdout and on stderr, each, in UTF-8 bytes; head and tail are kept. */
  maxOutputBytes: number;
  /** Cap on the JSON-serialised result value, in UTF-8 bytes. */
  maxResultBytes: number;
}

/**
 * Whether a job's thread calls its isolate synchronously (see runJob in workers/isolate.ts), which
 * saves two hops between threads per call but blocks the thread's 5 ms poll. Synchronous code uses
 * no more CPU than wall time, so with cpuTimeMs at or above timeoutMs the wall limit, which
 * isolated-vm's own timeout enforces inside the call, is the first to bind either way.
 */
export function runsSynchronously(limits: Pick<Limits, 'timeoutMs' | 'cpuTimeMs'>): boolean {
  return limits.cpuTimeMs >= limits.timeoutMs;
}

/** Limits on what a request may carry; not per-request settable, only by the operator. */
export interface SizeLimits {
  /** UTF-8 bytes of `code`. */
  maxCodeBytes: number;
  /** UTF-8 bytes of `input` once serialised as JSON. */
  maxInputBytes: number;
}

export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({
  timeoutMs: 5_000,
  cpuTimeMs: 5_000,
  memoryMb: 64,
  maxOutputBytes: 64 * 1024,
  maxResultBytes: 1024 * 1024,
});

/** The most any request gets unless the operator raises it. */
export const DEFAULT_CEILINGS: Readonly<Limits> = Object.freeze({
  timeoutMs: 60_000,
  cpuTimeMs: 60_000,
  memoryMb: 512,
  maxOutputBytes: 4 * 1024 * 1024,
  maxResultBytes: 8 * 1024 * 1024,
});

export const DEFAULT_SIZE_LIMITS: Readonly<SizeLimits> = Object.freeze({
  maxCodeBytes: 512 * 1024,
  maxInputBytes: 4 * 1024 * 1024,
});

/** Hard floors: below these a job cannot even start an isolate meaningfully. */
export const LIMIT_FLOORS: Readonly<Limits> = Object.freeze({
  timeoutMs: 1,
  cpuTimeMs: 1,
  memoryMb: 8,
  maxOutputBytes: 0,
  maxResultBytes: 16,
});

/**
 * The most any limit can be, whatever an operator or a request asks: a day of time, 64 GiB of heap,
 * 2 GiB of output or result. Past these, timers and buffers stop meaning what they say.
 */
export const LIMIT_MAXIMA: Readonly<Limits> = Object.freeze({
  timeoutMs: 86_400_000,
  cpuTimeMs: 86_400_000,
  memoryMb: 65_536,
  maxOutputBytes: 2 ** 31,
  maxResultBytes: 2 ** 31,
});

export const LIMIT_KEYS = Object.freeze([
  'timeoutMs',
  'cpuTimeMs',
  'memoryMb',
  'maxOutputBytes',
  'maxResultBytes',
] as const satisfies readonly (keyof Limits)[]);

/** What happens when a request asks for more than a ceiling. */
export type CeilingMode = 'clamp' | 'reject';

export interface LimitViolation {
  field: keyof Limits;
  requested: number;
  ceiling: number;
}

export interface CompiledLimits {
  limits: Readonly<Limits>;
  /** Fields that asked for more than the ceiling (clamped in `clamp` mode, fatal in `reject`). */
  violations: readonly LimitViolation[];
}

/**
 * Applies defaults, then the ceilings. A default above a ceiling is lowered to the ceiling; a
 * requested value above a ceiling is clamped (and reported) or, in `reject` mode, reported for the
 * caller to reject. Values are never obeyed above a ceiling.
 */
/**
 * Defaults given above their ceiling (the one given, else the built-in one): such a default could
 * never apply, as every job would be clamped to the ceiling (or rejected in 'reject' mode).
 */
export function defaultsAboveCeilings(
  defaults: Partial<Limits> | undefined,
  ceilings: Partial<Limits> | undefined,
): { key: keyof Limits; value: number; ceiling: number }[] {
  const above = [];
  for (const key of LIMIT_KEYS) {
    const value = defaults?.[key];
    const ceiling = ceilings?.[key] ?? DEFAULT_CEILINGS[key];
    if (value !== undefined && value > ceiling) above.push({ key, value, ceiling });
  }
  return above;
}

export function compileLimits(
  requested: Partial<Limits> | undefined,
  ceilings: Readonly<Limits> = DEFAULT_CEILINGS,
  defaults: Readonly<Limits> = DEFAULT_LIMITS,
): CompiledLimits {
  const limits = {} as Limits;
  const violations: LimitViolation[] = [];
  for (const key of LIMIT_KEYS) {
    const ceiling = ceilings[key];
    const asked = requested?.[key];
    if (asked !== undefined && asked > ceiling) violations.push({ field: key, requested: asked, ceiling });
    const value = Math.min(asked ?? defaults[key], ceiling);
    limits[key] = Math.max(Math.floor(value), LIMIT_FLOORS[key]);
  }
  return { limits: Object.freeze(limits), violations };
}
