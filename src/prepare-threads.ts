// Work on a job that could hold the event loop of the process taking it (the caller's, or the
// queue worker's, which must keep renewing its job locks) runs on a few piscina threads of that
// process instead (src/prepare-thread.ts): type stripping, bounded in time by ending its thread,
// the pre-screen and form of large code, and reading a queued job's overlong data. The pool
// (pool-job.ts), the client and the queue worker use these.
// One thread stays once started (amaro loaded: ~0.3 s to start one on the VM here), so that a
// thread ended at its bound is always replaced and the tasks waiting behind it go on.
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import { screenAndForm, type ReadDataOutcome, type ReadDataTask, type ScreenOutcome, type ScreenTask, type StripTask } from './prepare-thread.ts';
import { guessCodeForm } from './code-form.ts';
import { unscreenedReport, type CompiledPrescreenOptions } from './prescreen.ts';
import type { CodeMemory, ScreenMemory, TimedStrip } from './code-cache.ts';
import type { StripTypesResult } from './typescript.ts';

/**
 * The longest stripping may take, whatever the job's own time limit: 500 KB of ordinary
 * TypeScript strips in 0.1-0.2 s here (0.25-0.45 s when it needs transform mode).
 */
export const MAX_STRIP_MS = 2_000;
/**
 * Code longer than this (UTF-16 units) is screened (and its form told) on a thread: that may take
 * 30 ms and more (256 KiB, the screen's own bound, 0.4-1.6 s); shorter code is done at once, with
 * no hop.
 */
const INLINE_SCREEN_CHARS = 16 * 1024;
/**
 * The longest the pre-screen of large code may take on its thread. Ordinary code at the screen's
 * own size bound (256 KiB) screens in a fraction of that; acorn's quadratic corners take longer.
 */
const MAX_SCREEN_MS = 2_000;
/** Threads working at once in one process: a source that runs to its bound holds one that long. */
export const PREPARE_THREADS = Math.max(2, Math.min(4, availableParallelism()));

export type BoundedStripResult = StripTypesResult | { ok: false; overran: true };

const OWN_EXTENSION = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
let threads: Piscina | undefined;
/** Strips waiting for their thread to start on them, by key: each then arms its time bound. */
const starting = new Map<number, () => void>();
let nextKey = 0;

function pool(): Piscina {
  if (threads) return threads;
  // Idle threads are unref'd by piscina and end after idleTimeout: nothing here keeps a process up.
  threads = new Piscina({
    filename: new URL(`./prepare-thread${OWN_EXTENSION}`, import.meta.url).href,
    // Piscina replaces a thread it ended (abort, crash) only up to minThreads: with none, tasks
    // waiting behind threads that were all ended would wait for the next run() call.
    minThreads: 1,
    maxThreads: PREPARE_THREADS,
    idleTimeout: 30_000,
    concurrentTasksPerWorker: 1,
    atomics: 'disabled',
    recordTiming: false,
  });
  // A thread's own messages (prepare-thread.ts: { started }) come to the pool's listeners.
  threads.on('message', (message: unknown) => {
    const key = (message as { started?: unknown } | null)?.started;
    if (typeof key === 'number') starting.get(key)?.();
  });
  return threads;
}

/**
 * A task on a thread of this process, ended once it has run `budgetMs` (from the moment the thread
 * starts on it, not from a wait behind other tasks): `overran` then. The caller's event loop stays
 * free throughout. Rejects only when the thread itself fails.
 */
async function runBounded<T>(
  name: 'strip' | 'screen' | 'readData',
  task: (key: number) => StripTask | ScreenTask | ReadDataTask,
  budgetMs: number,
  { timed, signals = [] }: BoundedRun = {},
): Promise<T | { ok: false; overran: true }> {
  if (signals.some((signal) => signal?.aborted)) throw new Error(NOT_STARTED);
  const abort = new AbortController();
  const key = ++nextKey;
  let timer: NodeJS.Timeout | undefined;
  let startedAt = performance.now();
  let dropped = false;
  starting.set(key, () => {
    starting.delete(key);
    startedAt = performance.now();
    timer = setTimeout(() => abort.abort(), budgetMs);
  });
  // Answered before a thread took it: piscina drops it from its queue. Once started it runs out
  // (ending the thread would cost the next job a new one), except in the moment between a thread
  // starting on it and this loop hearing so: then the thread is ended and replaced.
  const drop = () => {
    if (!starting.has(key)) return;
    dropped = true;
    abort.abort();
  };
  for (const signal of signals) signal?.addEventListener('abort', drop, { once: true });
  try {
    // Aborting a task that is running ends its thread (piscina starts another when needed).
    const value = (await pool().run(task(key), { name, signal: abort.signal })) as T;
    timed?.(performance.now() - startedAt);
    return value;
  } catch (error) {
    if (dropped) throw new Error(NOT_STARTED, { cause: error });
    if (abort.signal.aborted) return { ok: false, overran: true };
    throw error;
  } finally {
    for (const signal of signals) signal?.removeEventListener('abort', drop);
    starting.delete(key);
    clearTimeout(timer);
  }
}

const NOT_STARTED = 'the job was answered before its preparation started';

interface BoundedRun {
  /** Told how long the thread took over the task, once it finished. */
  timed?: (ranMs: number) => void;
  /** The job's, the pool's: once one aborts, a task not started yet is dropped, and the promise rejects. */
  signals?: readonly (AbortSignal | undefined)[] | undefined;
}

/**
 * stripTypes() on a thread, bounded by `budgetMs` (see runBounded). Never throws for anything in
 * the source; rejects only when the thread fails (then the job's preparation failed, not its code)
 * or when one of `signals` (the job's, the pool's) aborts before a thread took the strip. With a `cache`, a source it knows is answered from it at once, with no thread, when its strip
 * took no longer than `budgetMs` (a job with less time than that strips afresh, and overruns as
 * it would have); each strip that finished is kept in it, unless the parser failed in a way it
 * does not report (a stack or memory overflow of one instance, not a diagnostic of the source).
 */
export function stripTypesWithin(
  source: string,
  budgetMs: number,
  cache?: CodeMemory<TimedStrip>,
  signals?: readonly (AbortSignal | undefined)[],
): BoundedStripResult | Promise<BoundedStripResult> {
  const known = cache?.get(source);
  if (known !== undefined && known.ranMs <= budgetMs) return known.result;
  let ranMs = 0;
  const timed = (ms: number) => {
    ranMs = ms;
  };
  return runBounded<StripTypesResult>('strip', (key) => ({ source, key }), budgetMs, { timed, signals }).then((stripped) => {
    if (!('overran' in stripped) && !(!stripped.ok && stripped.unexpected === true)) cache?.set(source, { result: stripped, ranMs });
    return stripped;
  });
}

/**
 * The pre-screen (when `options` are given) and the form of the code: at once for code up to
 * INLINE_SCREEN_CHARS, on a thread of this process for longer code (a promise then, which rejects
 * only if that thread fails). On the thread it may take MAX_SCREEN_MS: past that the code is
 * reported `prescreen_too_slow` (rejected in enforce mode) and its form guessed from its text.
 * With a `cache`, code it knows under these options is answered from it, with no parse, and each
 * finished screen is kept in it.
 */
export function screenCode(
  code: string,
  options: CompiledPrescreenOptions | undefined,
  cache?: ScreenMemory,
  signals?: readonly (AbortSignal | undefined)[],
): ScreenOutcome | Promise<ScreenOutcome> {
  const known = cache?.get(code, options);
  if (known !== undefined) return known;
  if (code.length <= INLINE_SCREEN_CHARS) {
    const outcome = screenAndForm(code, options);
    cache?.set(code, options, outcome);
    return outcome;
  }
  return runBounded<ScreenOutcome>('screen', (key) => ({ code, options, key }), MAX_SCREEN_MS, { signals }).then((outcome) => {
    if (!('overran' in outcome)) {
      cache?.set(code, options, outcome);
      return outcome;
    }
    // Not kept: whether the screen finishes in time depends on the machine's load at the time.
    const form = guessCodeForm(code);
    return options === undefined ? { form } : { report: unscreenedReport(code, options, MAX_SCREEN_MS), form };
  });
}

/** The longest reading a job's data may take on its thread (27 M characters parse in ~2 s here). */
export const MAX_READ_DATA_MS = 10_000;
/** Data being read, one at a time: each may take hundreds of MB while parsed. */
let reading: Promise<unknown> = Promise.resolve();

/**
 * readData() (prepare-thread.ts) on a thread, one read at a time per process, bounded by
 * MAX_READ_DATA_MS (`overran` past it). Rejects only when the thread fails.
 */
export function readDataOnThread(text: string, maxChars: number): Promise<ReadDataOutcome | { ok: false; overran: true }> {
  const read = reading.then(() => runBounded<ReadDataOutcome>('readData', (key) => ({ text, maxChars, key }), MAX_READ_DATA_MS));
  reading = read.catch(() => undefined);
  return read;
}
