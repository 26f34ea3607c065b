// Pool options: what a caller may give createPool(), the defaults, and the compiled, frozen form
// the pool runs on (every field required, units normalised). Pure; used once per createPool().
import { availableParallelism, hostname } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Logger } from 'pino';
import { POOL_MAX_EXECUTORS, POOL_MAX_STANDBY_EXECUTORS, POOL_MAX_THREADS_PER_EXECUTOR, integerOption, loggerOption, optionObject, refuseUnknownKeys } from './options.ts';
import {
  DEFAULT_CEILINGS,
  DEFAULT_LIMITS,
  DEFAULT_SIZE_LIMITS,
  LIMIT_FLOORS,
  LIMIT_KEYS,
  LIMIT_MAXIMA,
  defaultsAboveCeilings,
  type CeilingMode,
  type Limits,
  type SizeLimits,
} from './limits.ts';
import { compilePrescreenOption, type CompiledPrescreenOptions, type PrescreenOptions } from './prescreen.ts';
import { createToolRegistry, type ToolDefinitionInput, type ToolRegistry } from './tools.ts';

export interface PoolOptions {
  /**
   * Executor child processes; each holds a piscina pool of isolate threads.
   * @default Math.min(2, os.availableParallelism()) — bounds 1..64
   */
  executors?: number;
  /**
   * Threads per executor, i.e. isolates running at once in one executor.
   * @default Math.max(1, Math.ceil(os.availableParallelism() / executors)) — bounds 1..64
   */
  threadsPerExecutor?: number;
  /**
   * Never-used isolates each thread keeps ready, so creating one stays off a job's path. Two let
   * jobs that arrive sooner after each other than a spare takes to make (~2-3 ms of CPU; a caller
   * awaiting jobs one after another over the queue) still find one ready; each costs ~1.2 MiB.
   * @default 2 — bounds 0..8
   */
  sparesPerThread?: number;
  /**
   * Executors started ahead and kept idle: one takes a dead or retired executor's place at once,
   * where a new one takes ~0.4-0.6 s to start (its jobs wait for it, or crowd the others). Each
   * costs an idle executor's memory (~160 MiB with 2 threads here) and takes no job until then.
   * @default 0 — bounds 0..8
   */
  standbyExecutors?: number;
  /** Limits a job gets when its request does not set them. @default DEFAULT_LIMITS (src/limits.ts) */
  defaults?: Partial<Limits>;
  /** The most any job gets. @default DEFAULT_CEILINGS (src/limits.ts) */
  ceilings?: Partial<Limits>;
  /**
   * What a request above a ceiling gets: `clamp` runs it at the ceiling (`limits` in the Result
   * shows what applied); `reject` answers `rejected` with rule `limit_above_ceiling`.
   * @default 'clamp'
   */
  ceilingMode?: CeilingMode;
  /** Caps on the request itself (code bytes, input JSON bytes). @default DEFAULT_SIZE_LIMITS */
  sizeLimits?: Partial<SizeLimits>;
  /**
   * Resident memory (RSS) ceiling per executor process in MiB, sampled from outside the process
   * (Linux /proc; elsewhere it is not enforced). An executor above it is killed and replaced; its
   * job, when it ran alone, ends `memory_limit`. It catches what an isolate's heap limit does not
   * count (WebAssembly.Memory, external strings, V8 overshoot of 2–3× the heap limit).
   * @default 1024 + threadsPerExecutor × ceilings.memoryMb — bounds 128..1048576
   */
  executorMemoryMb?: number;
  /**
   * An executor is replaced (a new one started, the old one ending once its jobs are done) after
   * this many jobs: memory its threads' native side keeps after each disposed isolate adds up,
   * ~2-4 MiB per 1,000 jobs here. 0: never. @default 10000
   */
  recycleAfterJobs?: number;
  /**
   * An executor whose resident memory (sampled as for executorMemoryMb) is above this many MiB is
   * replaced as after recycleAfterJobs: it takes no new job and ends once the ones it holds are done.
   * It catches memory that outlives the jobs that made it (caches the ICU library keeps for the
   * whole process, whatever locales jobs name; the allocator's retention) before it reaches the
   * ceiling, where the executor is killed under the jobs it holds. Only an executor that has
   * answered a job and grown by 64 MiB since it started is replaced this way. 0: never.
   * @default half of executorMemoryMb — bounds 0..executorMemoryMb
   */
  recycleAboveMb?: number;
  /**
   * Jobs that may wait in the pool at once: for an executor, or for their TypeScript or large code
   * to be prepared (that work counts until it ends, even when its job was cancelled meanwhile).
   * One more is answered at once `rejected`, rule `pool_full`, and nothing of it
   * runs: the caller's memory holds every waiting job's code and input, so a caller that submits
   * faster than the executors run would otherwise grow without end.
   * @default 1000 — bounds 1..100000000
   */
  maxQueued?: number;
  /**
   * Runs of one job when the infrastructure fails under it (an executor dies with other jobs in
   * flight, a thread dies). User outcomes (error, timeout, memory_limit) are never retried.
   * @default 2 — bounds 1..10
   */
  maxAttempts?: number;
  /** The piscina task module executors run (file URL or absolute path); tests inject fixtures. @default workers/thread */
  threadModule?: string | URL;
  /** Reported as metrics.worker.host. @default os.hostname() */
  hostName?: string;
  /** Executor lifecycle events (spawned, died and why, replaced). Never code, output, or per-job lines. */
  logger?: Logger;
  /**
   * Tools for `{ tool, input }` requests: a registry, or definitions to build one from (checked
   * at creation; a bad definition throws naming it). Without tools every tool request is `unknown_tool`.
   */
  tools?: ToolRegistry | readonly ToolDefinitionInput[];
  /**
   * The operator's pre-screen settings: the base a request's own `prescreen` field is layered on
   * (a request may only tighten unless `allowLoosening`). `mode: 'off'` screens nothing; the
   * sandbox does not depend on screening. Tool code is the operator's own and is not screened.
   * @default DEFAULT_PRESCREEN (src/prescreen-options.ts): enforce the default rules
   */
  prescreen?: PrescreenOptions;
}

export interface CompiledPoolOptions {
  executors: number;
  standbyExecutors: number;
  threadsPerExecutor: number;
  sparesPerThread: number;
  defaults: Readonly<Limits>;
  ceilings: Readonly<Limits>;
  ceilingMode: CeilingMode;
  sizeLimits: Readonly<SizeLimits>;
  executorMemoryMb: number;
  recycleAfterJobs: number;
  recycleAboveMb: number;
  maxQueued: number;
  maxAttempts: number;
  /** A file URL string. */
  threadModule: string;
  /** Path of the executor entry, next to this module's build (workers/executor.ts or .js). */
  executorPath: string;
  hostName: string;
  logger: Logger | undefined;
  tools: ToolRegistry | undefined;
  /** The operator layer as given, for requests that bring their own `prescreen` settings. */
  prescreen: PrescreenOptions;
  /** The operator layer compiled once: what a request without `prescreen` settings is screened with. */
  prescreenBase: CompiledPrescreenOptions;
  /** The executor terminates a task's thread at timeoutMs + executorGraceMs. */
  executorGraceMs: number;
  /** The pool kills the whole executor at timeoutMs + poolGraceMs (always > executorGraceMs). */
  poolGraceMs: number;
}

/**
 * The deadlines outside the isolate, each derived from the job's own timeoutMs: the thread owns
 * timeoutMs itself; the executor's backstop leaves room for isolate setup and a thread that answers
 * late; the pool's backstop leaves the executor time to answer first.
 */
const EXECUTOR_GRACE_MS = 1_000;
export const POOL_GRACE_MS = EXECUTOR_GRACE_MS + 1_500;

// Run from src/ (Node type stripping, vitest) the siblings are .ts; from dist/ after tsc, .js.
const OWN_EXTENSION = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
const EXECUTOR_URL = new URL(`../workers/executor${OWN_EXTENSION}`, import.meta.url);
const THREAD_URL = new URL(`../workers/thread${OWN_EXTENSION}`, import.meta.url);

/** The keys createPool() knows: a misspelt option is an error, not a silent default. */
const POOL_OPTION_KEYS: ReadonlySet<string> = new Set([
  'executors', 'standbyExecutors', 'threadsPerExecutor', 'sparesPerThread', 'defaults', 'ceilings', 'ceilingMode', 'sizeLimits',
  'executorMemoryMb', 'recycleAfterJobs', 'recycleAboveMb', 'maxQueued', 'maxAttempts', 'threadModule', 'hostName', 'logger', 'tools', 'prescreen',
] satisfies (keyof PoolOptions)[]);

/**
 * Limits over `base`, each between its floor (below it a job would run above what was set) and
 * LIMIT_MAXIMA.
 */
function limitsWith(name: string, base: Readonly<Limits>, given: unknown): Readonly<Limits> {
  const fields = optionObject(name, given, LIMIT_KEYS);
  const limits = { ...base };
  for (const key of LIMIT_KEYS) {
    const value = fields?.[key];
    if (value === undefined) continue;
    const [min, max] = [LIMIT_FLOORS[key], LIMIT_MAXIMA[key]];
    if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
      throw new RangeError(`options.${name}.${key}: expected a number from ${min} to ${max}, got ${String(value)}`);
    }
    limits[key] = value;
  }
  return Object.freeze(limits);
}

function checkedTools(tools: unknown, rejectAbove: Readonly<Limits> | undefined): ToolRegistry | undefined {
  if (tools === undefined) return undefined;
  let registry: ToolRegistry;
  if (Array.isArray(tools)) registry = createToolRegistry(tools as readonly ToolDefinitionInput[]);
  else if (typeof tools !== 'object' || tools === null || typeof (tools as { resolve?: unknown }).resolve !== 'function') {
    throw new RangeError('options.tools: expected tool definitions (an array) or a registry from createToolRegistry()');
  } else registry = tools as ToolRegistry;
  try {
    if (rejectAbove !== undefined) registry.checkLimits?.(rejectAbove);
  } catch (cause) {
    throw new RangeError(`options.tools: ${(cause as Error).message} (options.ceilings, or its default, with ceilingMode 'reject')`, { cause });
  }
  return registry;
}

/** Applies the defaults and checks the bounds; throws a RangeError naming the bad option. */
export function compilePoolOptions(options: PoolOptions = {}): Readonly<CompiledPoolOptions> {
  if (typeof options !== 'object' || options === null) {
    throw new RangeError(`options: expected an object, got ${options === null ? 'null' : typeof options}`);
  }
  refuseUnknownKeys('', options, POOL_OPTION_KEYS);
  const cores = availableParallelism();
  const executors = integerOption('executors', options.executors, Math.min(2, cores), 1, POOL_MAX_EXECUTORS);
  const threadsPerExecutor = integerOption(
    'threadsPerExecutor',
    options.threadsPerExecutor,
    Math.max(1, Math.ceil(cores / executors)),
    1,
    POOL_MAX_THREADS_PER_EXECUTOR,
  );
  const ceilings = limitsWith('ceilings', DEFAULT_CEILINGS, options.ceilings);
  const ceilingMode = options.ceilingMode ?? 'clamp';
  if (ceilingMode !== 'clamp' && ceilingMode !== 'reject') {
    throw new RangeError(`options.ceilingMode: expected 'clamp' or 'reject', got ${String(ceilingMode)}`);
  }
  const sizeLimits = { ...DEFAULT_SIZE_LIMITS };
  const sizeKeys = ['maxCodeBytes', 'maxInputBytes'] as const;
  const givenSizes = optionObject('sizeLimits', options.sizeLimits, sizeKeys);
  for (const key of sizeKeys) {
    sizeLimits[key] = integerOption(`sizeLimits.${key}`, givenSizes?.[key] as number | undefined, sizeLimits[key], 1, 2 ** 31);
  }
  const threadModule = options.threadModule ?? THREAD_URL;
  if (typeof threadModule !== 'string' && !(threadModule instanceof URL)) {
    throw new RangeError(`options.threadModule: expected a file URL or a path, got ${typeof threadModule}`);
  }
  const prescreen = options.prescreen ?? {};
  const prescreenBase = compilePrescreenOption(prescreen);
  const executorMemoryMb = integerOption(
    'executorMemoryMb',
    options.executorMemoryMb,
    1024 + threadsPerExecutor * ceilings.memoryMb,
    128,
    1_048_576,
  );
  const defaults = limitsWith('defaults', DEFAULT_LIMITS, options.defaults);
  // Said, not lowered: built-in defaults above lowered ceilings are simply lowered to them.
  const [above] = defaultsAboveCeilings(options.defaults as Partial<Limits> | undefined, ceilings);
  if (above !== undefined) {
    throw new RangeError(
      `options.defaults.${above.key}: ${above.value} is above the ceiling of ${above.ceiling} (options.ceilings.${above.key}, or its default): no job could run with it`,
    );
  }
  return Object.freeze({
    executors,
    standbyExecutors: integerOption('standbyExecutors', options.standbyExecutors, 0, 0, POOL_MAX_STANDBY_EXECUTORS),
    threadsPerExecutor,
    sparesPerThread: integerOption('sparesPerThread', options.sparesPerThread, 2, 0, 8),
    defaults,
    ceilings,
    ceilingMode,
    sizeLimits: Object.freeze(sizeLimits),
    executorMemoryMb,
    recycleAfterJobs: integerOption('recycleAfterJobs', options.recycleAfterJobs, 10_000, 0, 100_000_000),
    recycleAboveMb: integerOption('recycleAboveMb', options.recycleAboveMb, Math.floor(executorMemoryMb / 2), 0, executorMemoryMb),
    maxQueued: integerOption('maxQueued', options.maxQueued, 1_000, 1, 100_000_000),
    maxAttempts: integerOption('maxAttempts', options.maxAttempts, 2, 1, 10),
    threadModule: threadModule instanceof URL ? threadModule.href : toFileUrl(threadModule),
    executorPath: fileURLToPath(EXECUTOR_URL),
    hostName: String(options.hostName ?? hostname()),
    // The methods the pool calls.
    logger: loggerOption<Logger>(options.logger, ['debug', 'info', 'warn', 'error'], RangeError),
    // Under `clamp` a tool's limit above a ceiling runs at the ceiling, as a request's does.
    tools: checkedTools(options.tools, ceilingMode === 'reject' ? ceilings : undefined),
    prescreen,
    prescreenBase,
    executorGraceMs: EXECUTOR_GRACE_MS,
    poolGraceMs: POOL_GRACE_MS,
  });
}

function toFileUrl(path: string): string {
  return path.startsWith('file:') ? path : pathToFileURL(resolve(path)).href;
}
