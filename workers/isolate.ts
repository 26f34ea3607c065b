// Runs on a piscina worker thread inside an executor child process: workers/thread.ts calls
// IsolateRunner.run() once per task (thread-level tests call it in-process, on the main thread).
// The only file that imports isolated-vm: one snippet, one fresh isolate, limits, metrics, dispose.
//
// Every job gets an isolate no other job used. Up to `sparesPerThread` of them are kept prepared
// (context, console, harness: see isolate-harness.ts) for the default memory limit and refilled
// after the outcome is returned; a job that finds none makes one inline and pays it in setupMs.
// The snippet runs through isolated-vm's async calls, so this thread's event loop stays free for the
// timers that enforce the limits isolated-vm does not: wall time across awaits, CPU time and
// cancellation, each ending in dispose() when the isolate is still busy.
import ivm from 'isolated-vm';
import { threadId } from 'node:worker_threads';
import { DEFAULT_LIMITS, runsSynchronously } from '../src/limits.ts';
import {
  ENTRY_FILENAME,
  ENTRY_SOURCE,
  HARNESS_FILENAME,
  HARNESS_SOURCE,
  SNIPPET_FILENAME,
  SNIPPET_MODULE_FILENAME,
  SNIPPET_SPECIFIER,
} from './isolate-harness.ts';
import { capOutput, describeHostCopy, limitError, readHarnessOutcome, type HarnessOutcome, type OutputSnapshot } from './isolate-outcome.ts';
import type { ThreadOutcome, ThreadTask } from './protocol.ts';

/** How often CPU time, the wall deadline and the cancel board are checked while a job runs. */
const POLL_MS = 5;
/** The thread's poll timer stops after this many ticks with no job. */
const IDLE_TICKS = 20;
/** At the wall deadline a busy isolate gets this long for isolated-vm's own timeout to stop it. */
const WALL_GRACE_MS = 20;
/** Collecting the output of a stopped (idle) isolate may take no longer than this. */
const COLLECT_MS = 20;
/** Work after a job waits at most this long for the executor to have sent the outcome on. */
const SENT_WAIT_MS = 20;
/** Priming a spare (a few hundred microseconds) may take no longer than this. */
const PRIME_MS = 100;
/** A disposed isolate whose running call has not ended after this is taken as still running. */
const DISPOSE_GRACE_MS = 250;
const MIB = 1024 * 1024;
/**
 * How isolated-vm words a call stopped by its own timeout. A snippet can throw or reject with the
 * same words, so they count only once the call's deadline has passed (see runJob). The heap limit
 * needs no words: isolated-vm disposes the isolate before the call rejects, which no snippet can do.
 */
const TIMED_OUT = /^Script execution timed out\.?$/;

export interface IsolateRunnerOptions {
  /** The executor's cancel board (Int32Array over its SharedArrayBuffer); none in tests. */
  cancelBoard?: Int32Array;
  /** The executor's sent board: a slot turns 1 once that slot's outcome left for the pool. */
  sentBoard?: Int32Array;
  /** Never-used prepared isolates kept ready. @default 2 (as the pool's) */
  sparesPerThread?: number;
  /** Spares are made for this memory limit only; other limits make their isolate inline. */
  spareMemoryMb?: number;
  /**
   * Call the isolate synchronously where the job's limits allow (runsSynchronously). Such a call
   * holds this thread until isolated-vm returns, and a few hostile snippets (a thrown or rejected
   * Proxy with looping traps, built-ins that ignore termination) keep it from returning at all:
   * only a thread someone can terminate, in a process someone can end, may make them — an
   * executor's (workers/thread.ts), not the in-process runner of thread-level tests. @default false
   */
  syncCalls?: boolean;
}

export interface IsolateRunnerStats {
  /** Jobs that started on a prepared spare. */
  sparesTaken: number;
  /** Spares prepared off the job path. */
  sparesMade: number;
  /** Spares primed (see isolate-harness.ts) while no job waited for them. */
  sparesPrimed: number;
  /** Jobs that had to prepare their isolate themselves. */
  inlineMade: number;
  /** Spares ready right now. */
  sparesReady: number;
}

interface Prepared {
  isolate: ivm.Isolate;
  context: ivm.Context;
  harness: ivm.Reference;
  channel: Channel;
  /** The spare's 'prime' call (see isolate-harness.ts); false when it failed. */
  primed?: Promise<boolean>;
}

type Stop = 'wall' | 'cpu' | 'cancel';
type CallEnd<T> =
  | { kind: 'value'; value: T }
  | { kind: 'threw'; error: unknown }
  | { kind: 'stop'; reason: Stop; idle: boolean; busyCall?: Promise<unknown> };

/** The host end of one isolate's flush/settle callbacks: what the harness handed over so far. */
class Channel {
  outcome: HarnessOutcome | undefined;
  #onOutcome: (() => void) | undefined;
  readonly flushed: OutputSnapshot = {
    stdoutHead: '', stdoutTail: '', stdoutTotalBytes: 0,
    stderrHead: '', stderrTail: '', stderrTotalBytes: 0,
  };
  #headBudget = [0, 0];

  /** Bounds the head chunks accepted on the host to what the job's cap allows. */
  open(maxOutputBytes: number): void {
    // A UTF-16 code unit is at least one UTF-8 byte: a head within its bytes is within this many units.
    const half = Math.floor(maxOutputBytes / 2);
    this.#headBudget = [half, half];
  }

  /** The snippet printed after the outcome settled: its output is collected again once idle. */
  lateOutput = false;

  flush(stream: unknown, kind: unknown, text: unknown, total: unknown): void {
    if (kind === 'late') this.lateOutput = true;
    if (this.outcome || (stream !== 0 && stream !== 1) || typeof text !== 'string' || typeof total !== 'number') return;
    const f = this.flushed;
    if (stream === 0) f.stdoutTotalBytes = Math.max(f.stdoutTotalBytes, total);
    else f.stderrTotalBytes = Math.max(f.stderrTotalBytes, total);
    const budget = this.#headBudget[stream] ?? 0;
    if (kind === 'head' && budget > 0) {
      const chunk = text.slice(0, budget);
      this.#headBudget[stream] = budget - chunk.length;
      if (stream === 0) f.stdoutHead += chunk;
      else f.stderrHead += chunk;
    } else if (kind === 'tail') {
      if (stream === 0) f.stdoutTail = text;
      else f.stderrTail = text;
    }
  }

  settle(value: unknown): void {
    if (this.outcome) return;
    const outcome = readHarnessOutcome(value);
    if (!outcome) return;
    this.outcome = outcome;
    this.#onOutcome?.();
  }

  /** Resolves when the harness settles (or at once if it has). */
  waitOutcome(): Promise<void> {
    if (this.outcome) return Promise.resolve();
    return new Promise((resolve) => {
      this.#onOutcome = resolve;
    });
  }
}

// The harness as a function of ($0, $1), compiled with a V8 code cache: compiling and warming
// the ~30 KB harness from source cost ~2.7 ms of every spare; from the cache, ~0.8 ms.
const HARNESS_SCRIPT = `(function ($0, $1) {\n${HARNESS_SOURCE}\n})`;

/**
 * This thread's code cache of the harness, made once from an isolate that ran nothing but the
 * harness's own warm-up (never a snippet), after that warm-up, so that it holds the bytecode of the
 * functions every job runs. V8 checks a cache against the source and its own flags and ignores one
 * that does not fit, so a stale cache costs speed, never correctness.
 */
let harnessCache: Promise<ivm.ExternalCopy<ArrayBuffer> | undefined> | undefined;

async function makeHarnessCache(memoryMb: number): Promise<ivm.ExternalCopy<ArrayBuffer> | undefined> {
  const isolate = new ivm.Isolate({ memoryLimit: memoryMb });
  try {
    const context = await isolate.createContext();
    const ignore = new ivm.Callback(() => undefined, { ignored: true });
    const script = await isolate.compileScript(HARNESS_SCRIPT, { filename: HARNESS_FILENAME });
    const factory = (await script.run(context, { reference: true })) as ivm.Reference;
    const harness = (await factory.apply(undefined, [ignore, ignore], { result: { reference: true } })) as ivm.Reference;
    await harness.apply(undefined, ['warm']);
    // Compiling the same source again finds the warmed functions in V8's compilation cache.
    const warmed = await isolate.compileScript(HARNESS_SCRIPT, { filename: HARNESS_FILENAME, produceCachedData: true });
    // The typings leave out what produceCachedData adds to the script (CachedDataResult).
    return (warmed as ivm.Script & ivm.CachedDataResult).cachedData;
  } catch {
    // No cache: every spare compiles the harness from source, slower but the same.
    return undefined;
  } finally {
    dispose(isolate);
  }
}

async function prepareIsolate(memoryMb: number): Promise<Prepared> {
  harnessCache ??= makeHarnessCache(memoryMb);
  const cachedData = await harnessCache;
  const isolate = new ivm.Isolate({ memoryLimit: memoryMb });
  try {
    const context = await isolate.createContext();
    const channel = new Channel();
    const flush = new ivm.Callback(
      (stream: unknown, kind: unknown, text: unknown, total: unknown) => channel.flush(stream, kind, text, total),
      { ignored: true },
    );
    const settle = new ivm.Callback((value: unknown) => channel.settle(value), { ignored: true });
    const script = await isolate.compileScript(HARNESS_SCRIPT, {
      filename: HARNESS_FILENAME,
      ...(cachedData ? { cachedData } : {}),
    });
    const factory = (await script.run(context, { reference: true })) as ivm.Reference;
    const harness = (await factory.apply(undefined, [flush, settle], { result: { reference: true } })) as ivm.Reference;
    factory.release();
    // The cache holds the bytecode of every function the warm-up ran: running it again in each spare
    // cost ~0.7 ms of CPU per spare and made no job faster. Without a cache, warming spares the job
    // from compiling the harness.
    if (!cachedData) await harness.apply(undefined, ['warm']);
    return { isolate, context, harness, channel };
  } catch (error) {
    dispose(isolate);
    throw new Error('could not prepare an isolate', { cause: error });
  }
}

function dispose(isolate: ivm.Isolate): void {
  try {
    if (!isolate.isDisposed) isolate.dispose();
  } catch {
    // isolated-vm disposed it in between (memory limit): nothing left to free.
  }
}

const sleep = (ms: number) =>
  new Promise<undefined>((resolve) => {
    setTimeout(() => resolve(undefined), ms);
  });

/** Runs snippets, each in a fresh isolate, keeping spares ready. One per thread. */
export class IsolateRunner {
  #board: Int32Array | undefined;
  #sentBoard: Int32Array | undefined;
  #target: number;
  #spareMemoryMb: number;
  #syncCalls: boolean;
  #spares: Prepared[] = [];
  /** The spare being prepared right now; a job that finds no ready spare claims it. */
  #inFlight: { promise: Promise<Prepared>; claimed: boolean } | undefined;
  #refilling = false;
  #closed = false;
  #stats = { sparesTaken: 0, sparesMade: 0, sparesPrimed: 0, inlineMade: 0 };
  /** The running jobs' limit checks, called every POLL_MS by one timer per thread. */
  #checks = new Set<() => void>();
  #ticker: NodeJS.Timeout | undefined;
  #idleTicks = 0;

  constructor(options: IsolateRunnerOptions = {}) {
    this.#board = options.cancelBoard;
    this.#sentBoard = options.sentBoard;
    this.#target = Math.max(0, Math.floor(options.sparesPerThread ?? 2));
    this.#spareMemoryMb = options.spareMemoryMb ?? DEFAULT_LIMITS.memoryMb;
    this.#syncCalls = options.syncCalls === true;
    this.#refill();
  }

  stats(): IsolateRunnerStats {
    return { ...this.#stats, sparesReady: this.#spares.length };
  }

  /** Resolves once the spares are ready and primed (tests and warm-up). */
  async ready(): Promise<void> {
    while (!this.#closed && this.#target > 0 && (this.#refilling || this.#spares.length < this.#target)) await sleep(1);
  }

  /** Disposes the spares; run() after close() still works but keeps no spares. */
  close(): void {
    this.#closed = true;
    clearInterval(this.#ticker);
    this.#ticker = undefined;
    for (const spare of this.#spares.splice(0)) dispose(spare.isolate);
  }

  async run(task: ThreadTask): Promise<ThreadOutcome> {
    const startedAt = performance.timeOrigin + performance.now();
    const board = this.#board;
    const cancelled = board && task.cancelSlot >= 0 && task.cancelSlot < board.length
      ? () => Atomics.load(board, task.cancelSlot) !== 0
      : () => false;
    if (cancelled()) return cancelledBeforeRun(task, startedAt);

    const setupStart = performance.now();
    let prepared = task.limits.memoryMb === this.#spareMemoryMb ? await this.#takeSpare() : undefined;
    // A spare still priming finishes first (the isolate runs one call at a time), so that its CPU
    // time is not the job's; one whose priming failed is not used.
    if (prepared?.primed && !(await prepared.primed)) {
      dispose(prepared.isolate);
      prepared = undefined;
    }
    if (prepared) {
      this.#stats.sparesTaken++;
    } else {
      prepared = await prepareIsolate(task.limits.memoryMb);
      this.#stats.inlineMade++;
    }
    const setupMs = performance.now() - setupStart;
    try {
      return await runJob(prepared, task, {
        startedAt,
        setupMs,
        cancelled,
        watch: (check) => this.#watch(check),
        syncCalls: this.#syncCalls,
      });
    } finally {
      const used = prepared.isolate;
      this.#afterSent(task.cancelSlot, () => {
        dispose(used);
        this.#refill();
      });
    }
  }

  /**
   * Runs `work` (disposing the job's isolate, preparing the next spare: milliseconds of CPU) once
   * the executor has sent the job's outcome on to the pool, not while the outcome is on its way
   * out of this process: on a busy core that work delayed the executor's own thread by as much as
   * the outcome's whole trip (0.8 ms p90 paced, against 0.25 ms after the send). The executor
   * raises the job's slot on the sent board; past SENT_WAIT_MS the work runs anyway. Without a
   * board (in-process use), on the next turn of the event loop, after piscina posted the outcome.
   */
  #afterSent(slot: number, work: () => void): void {
    const board = this.#sentBoard;
    if (board === undefined || slot < 0 || slot >= board.length) {
      setImmediate(work);
      return;
    }
    const wait = Atomics.waitAsync(board, slot, 0, SENT_WAIT_MS);
    if (wait.async) void wait.value.then(work);
    else setImmediate(work);
  }

  /**
   * Calls `check` every POLL_MS until the returned function is called. One interval serves every
   * job of the thread and outlives them by IDLE_TICKS: arming and clearing a timer per job cost
   * ~40 µs of a trivial job's path, more than the job's own run.
   */
  #watch(check: () => void): () => void {
    this.#checks.add(check);
    this.#idleTicks = 0;
    this.#ticker ??= setInterval(() => this.#tick(), POLL_MS);
    return () => this.#checks.delete(check);
  }

  #tick(): void {
    if (this.#checks.size === 0) {
      if (++this.#idleTicks < IDLE_TICKS) return;
      clearInterval(this.#ticker);
      this.#ticker = undefined;
      return;
    }
    this.#idleTicks = 0;
    for (const check of this.#checks) check();
  }

  /**
   * A ready spare, else the one being prepared (jobs back to back arrive while the refill is half
   * done: finishing it costs less than starting another), else none.
   */
  async #takeSpare(): Promise<Prepared | undefined> {
    const ready = this.#spares.pop();
    if (ready) return ready;
    const flight = this.#inFlight;
    if (!flight || flight.claimed) return undefined;
    flight.claimed = true;
    return flight.promise.catch(() => undefined);
  }

  #refill(): void {
    if (this.#refilling || this.#closed || this.#spares.length >= this.#target) return;
    this.#refilling = true;
    setImmediate(async () => {
      try {
        while (!this.#closed && this.#spares.length < this.#target) {
          const flight = { promise: prepareIsolate(this.#spareMemoryMb), claimed: false };
          this.#inFlight = flight;
          const spare = await flight.promise;
          this.#inFlight = undefined;
          this.#stats.sparesMade++;
          if (flight.claimed) continue; // a job took it: prepare the next one
          if (this.#closed) {
            dispose(spare.isolate);
            continue;
          }
          // No job is waiting for it: prime it now, so that its job does not pay for it.
          spare.primed = spare.harness
            .apply(undefined, ['prime'], { timeout: PRIME_MS })
            .then(() => true, () => false);
          this.#spares.push(spare);
          if (await spare.primed) this.#stats.sparesPrimed++;
          else {
            const index = this.#spares.indexOf(spare);
            if (index >= 0) {
              this.#spares.splice(index, 1);
              dispose(spare.isolate);
            }
          }
        }
      } catch {
        // Preparing failed (the process is short of memory): jobs make their isolate inline, and
        // the next finished job tries again.
        this.#inFlight = undefined;
      } finally {
        this.#refilling = false;
      }
    });
  }
}

/** A job cancelled before it took an isolate. */
function cancelledBeforeRun(task: ThreadTask, startedAt: number): ThreadOutcome {
  return {
    id: task.id,
    status: 'cancelled',
    truncatedValue: false,
    stdout: '',
    stderr: '',
    stdoutTotalBytes: 0,
    stderrTotalBytes: 0,
    error: limitError('cancel', task.limits),
    startedAt,
    setupMs: 0,
    wallTimeMs: 0,
    cpuTimeMs: 0,
    heapUsedBytes: 0,
    thread: threadId,
  };
}

interface JobContext {
  startedAt: number;
  setupMs: number;
  cancelled: () => boolean;
  /** Has `check` called every POLL_MS until the returned function is called. */
  watch: (check: () => void) => () => void;
  /** See IsolateRunnerOptions.syncCalls. */
  syncCalls: boolean;
}

async function runJob(prepared: Prepared, task: ThreadTask, job: JobContext): Promise<ThreadOutcome> {
  const { isolate, harness, channel } = prepared;
  const { limits } = task;
  let setupMs = job.setupMs;
  const runStart = performance.now();
  const cpuStart = isolate.cpuTime;
  let cpuNs = 0n;
  // This thread's CPU spent on the job's timers: each virtual tick is a round trip to the isolate
  // that the isolate's own clock does not see (several times the isolate's time for empty timers).
  let tickNs = 0n;
  // A synchronous call runs the isolate on this thread: when isolated-vm disposes the isolate in
  // such a call (memory limit), its clock is gone before anything read it, and this thread's own
  // CPU since the start (0.25 µs to read) is the figure.
  const threadCpuStart = process.threadCpuUsage();
  let syncRun = false;
  const readCpu = () => {
    try {
      cpuNs = isolate.cpuTime - cpuStart;
    } catch {
      // Disposed by isolated-vm (memory limit): keep the last reading, or take the thread's.
      if (syncRun) {
        const used = process.threadCpuUsage(threadCpuStart);
        const threadNs = BigInt(used.user + used.system) * 1000n - tickNs;
        if (threadNs > cpuNs) cpuNs = threadNs;
      }
    }
    return cpuNs + tickNs;
  };
  const cpuLimitNs = BigInt(limits.cpuTimeMs) * 1_000_000n;

  let stopWith: (reason: Stop) => void = () => {};
  const stopped = new Promise<Stop>((resolve) => {
    stopWith = resolve;
  });
  // Polled every POLL_MS by the thread's timer (most jobs end before it first ticks). A snippet
  // running synchronously is also stopped at the wall deadline by isolated-vm's own timeout on each
  // call; the poll stops one waiting on promises or timers, so up to POLL_MS past the deadline.
  const deadlineAt = runStart + limits.timeoutMs;
  const check = () => {
    if (deadlineAt - performance.now() <= 0) stopWith('wall');
    else if (job.cancelled()) stopWith('cancel');
    else if (readCpu() > cpuLimitNs) stopWith('cpu');
  };
  const unwatch = job.watch(check);
  const remainingMs = () => Math.max(1, Math.ceil(deadlineAt - performance.now()));

  async function call<T>(promise: Promise<T>): Promise<CallEnd<T>> {
    const ended: Promise<CallEnd<T>> = promise.then(
      (value) => ({ kind: 'value', value }),
      (error: unknown) => ({ kind: 'threw', error }),
    );
    const first = await Promise.race([ended, stopped.then((reason) => ({ kind: 'stop' as const, reason, idle: false }))]);
    if (first.kind !== 'stop') return first;
    // Still busy at the limit. A synchronous run is about to be stopped by isolated-vm's own
    // timeout, which keeps the isolate alive so its output can be collected; anything else
    // (a microtask flood, CPU, a cancel) is ended by dispose().
    if (first.reason === 'wall' && (await Promise.race([ended.then(() => true), sleep(WALL_GRACE_MS)]))) {
      return { kind: 'stop', reason: 'wall', idle: true };
    }
    return { ...first, busyCall: ended };
  }

  /** The outcome came back as a call's value (see stepped). */
  let settledInCall = false;
  /** A dispatcher call's value: an outcome settled during the call is taken, and ends as 'done'. */
  function stepped(value: unknown): CallEnd<unknown> {
    if (typeof value !== 'object' || value === null) return { kind: 'value', value };
    // Printed after it settled, by the call's own microtasks (see write() in the harness).
    if ((value as { late?: unknown }).late === true) channel.lateOutput = true;
    settledInCall = true;
    channel.settle(value);
    return { kind: 'value', value: 'done' };
  }

  /** A dispatcher call; an outcome settled during it comes back as its value and ends as 'done'. */
  async function step(args: unknown[]): Promise<CallEnd<unknown>> {
    const ended = await call(harness.apply(undefined, args, { timeout: remainingMs(), result: { copy: true } }));
    return ended.kind === 'value' ? stepped(ended.value) : ended;
  }

  /**
   * step() as a synchronous call, which saves isolated-vm's two hops between threads (~40 µs on a
   * quiet machine, ~85 µs on a busy one). It blocks this thread's poll until it returns, so only
   * isolated-vm's own timeout stops it: taken only where that is the first limit to bind anyway
   * (runsSynchronously). A cancel then waits for the call, and the executor terminates the thread
   * (SYNC_CANCEL_GRACE_MS in executor.ts). The harness's flush and settle callbacks made during
   * the call are still queued on this thread when it returns (see drainCallbacks).
   */
  function stepSync(args: unknown[]): CallEnd<unknown> {
    const ended = callSync(() => harness.applySync(undefined, args, { timeout: remainingMs(), result: { copy: true } }));
    return ended.kind === 'value' ? stepped(ended.value) : ended;
  }

  const sync = job.syncCalls && runsSynchronously(limits) && !job.cancelled();
  syncRun = sync;

  channel.open(limits.maxOutputBytes);
  let end: CallEnd<unknown>;
  let phaseHint: 'compile' | undefined;
  try {
    if (task.form === 'module') {
      const compileStart = performance.now();
      const linked = await linkModule(prepared, task.code, sync);
      setupMs += performance.now() - compileStart;
      if ('error' in linked) {
        phaseHint = 'compile';
        end = { kind: 'threw', error: linked.error };
      } else {
        // An isolate runs its queued calls in order: input and caps are in place before the
        // module evaluates, without waiting for a round trip. (Parsing the input can only fail on
        // the memory limit, which the evaluation then reports.)
        const begin = ['begin', task.inputJson, limits.maxOutputBytes, limits.maxResultBytes, sync];
        const { entry } = linked;
        if (sync) {
          // A synchronous call does not wait for queued ones: 'begin' is a call of its own here.
          end = callSync(() => harness.applySync(undefined, begin, { timeout: remainingMs() }));
          if (end.kind === 'value') end = callSync(() => entry.evaluateSync({ timeout: remainingMs() }));
        } else {
          harness.applyIgnored(undefined, begin);
          end = await call(entry.evaluate({ timeout: remainingMs() }));
        }
        if (end.kind === 'threw' && !isolate.isDisposed && !isolatedVmTimeout(end.error, deadlineAt)) {
          // isolated-vm rejects an evaluation that left an unhandled rejection behind even when
          // the module itself finished: then its default export still makes the result, as a
          // script's completion value would.
          const args = ['evaluated', entry.namespace.derefInto()];
          const evaluated = sync
            ? callSync(() => harness.applySync(undefined, args, { timeout: remainingMs() }))
            : await call(harness.apply(undefined, args, { timeout: remainingMs() }));
          if (evaluated.kind === 'value' && evaluated.value === true) end = { kind: 'value', value: undefined };
        }
        if (end.kind === 'value') {
          const args = ['module', entry.namespace.derefInto()];
          end = sync ? stepSync(args) : await step(args);
        }
      }
    } else {
      const args = ['script', task.code, task.inputJson, limits.maxOutputBytes, limits.maxResultBytes, sync];
      end = sync ? stepSync(args) : await step(args);
    }
    // 'timers': the snippet waits on its timers, which run in virtual time, one per tick.
    while (end.kind === 'value' && end.value === 'timers' && !channel.outcome) {
      const before = process.threadCpuUsage();
      end = await step(['tick']);
      const used = process.threadCpuUsage(before);
      tickNs += BigInt(used.user + used.system) * 1000n;
    }
    // 'pending': the isolate is idle and the outcome comes through settle(), or never.
    if (end.kind === 'value' && !channel.outcome) {
      const reason = await Promise.race([channel.waitOutcome().then(() => undefined), stopped]);
      if (reason) end = { kind: 'stop', reason, idle: true };
    }
  } finally {
    unwatch();
  }
  // Unless the outcome came back as a synchronous call's value (which carries the mark for later
  // output), what the channel holds is read only once the calls' callbacks have all arrived.
  if (sync && !settledInCall) await drainCallbacks();

  // An isolate that ran out of memory was disposed by isolated-vm; one still busy at a limit is
  // disposed now, before anything else is read from it.
  const memoryHit = end.kind === 'threw' && isolate.isDisposed;
  const timedOut = end.kind === 'threw' && !memoryHit && isolatedVmTimeout(end.error, deadlineAt);
  let idle = !memoryHit && (end.kind !== 'stop' || end.idle);
  let busyCall = end.kind === 'stop' ? end.busyCall : undefined;
  if (end.kind === 'threw' && !memoryHit && !timedOut && !channel.outcome) {
    // isolated-vm rejects a call that left an unhandled rejection behind, even one during which the
    // job settled (the outcome was to be the call's value): the harness still holds it.
    const asked = await collect(harness, 'outcome');
    if (asked.busy) {
      idle = false;
      busyCall = asked.busy;
    } else if (asked.value !== undefined) channel.settle(asked.value);
  }
  let output: OutputSnapshot = channel.outcome ?? channel.flushed;
  // Without an outcome (a limit, or a module that threw at its top level) the channel holds only
  // what was handed over, as far as TAIL_FLUSH_INTERVAL_MS (or its backoff) let it: read it afresh.
  const stale = channel.outcome ? channel.lateOutput : end.kind === 'stop' || end.kind === 'threw';
  if (idle && stale) {
    // Microtasks a stopped snippet left queued run in this call's wake and may never end: a
    // collect that does not come back in time leaves the isolate busy, to be disposed, not read.
    const collected = await collect(harness, 'collect');
    const snapshot = readHarnessOutcome(collected.value);
    if (snapshot) output = snapshot;
    else if (collected.busy) {
      idle = false;
      busyCall = collected.busy;
    }
  }
  const cpuTimeMs = Number(readCpu()) / 1e6;
  let heapUsedBytes = memoryHit ? limits.memoryMb * MIB : 0;
  let stillRunning = false;
  if (idle && !isolate.isDisposed) {
    try {
      const heap = isolate.getHeapStatisticsSync();
      heapUsedBytes = heap.used_heap_size + heap.externally_allocated_size;
    } catch {
      // Disposed under us (memory limit reached while the outcome was read): no figure to report.
    }
  } else {
    dispose(isolate);
    // A disposed isolate's pending call rejects within milliseconds, unless the isolate is stuck in
    // a builtin that never checks for termination: then it spins on, and only the process ending
    // stops it. The executor learns it from the outcome.
    if (busyCall) {
      stillRunning = !(await Promise.race([busyCall.then(() => true), sleep(DISPOSE_GRACE_MS)]));
    }
  }
  // isolated-vm stops an isolate at a full GC over its limit; one huge allocation can get past it
  // and finish. A job that ends holding more than its limit is over its limit all the same.
  const overMemory = idle && heapUsedBytes > limits.memoryMb * MIB;
  const wallTimeMs = performance.now() - runStart;
  const kept = capOutput(output, limits.maxOutputBytes);
  const base = {
    id: task.id,
    truncatedValue: false,
    ...kept,
    startedAt: job.startedAt,
    setupMs,
    wallTimeMs,
    cpuTimeMs,
    heapUsedBytes,
    thread: threadId,
    ...(stillRunning ? { isolateStillRunning: true } : {}),
  };

  if (memoryHit || (overMemory && end.kind !== 'stop' && !timedOut)) {
    return { ...base, status: 'memory_limit', error: limitError('memory', limits) };
  }
  if (end.kind === 'stop' || timedOut) {
    const reason: Stop = end.kind === 'stop' ? end.reason : 'wall';
    return { ...base, status: reason === 'cancel' ? 'cancelled' : 'timeout', error: limitError(reason, limits) };
  }
  const outcome = channel.outcome;
  if (outcome) {
    const result: ThreadOutcome = { ...base, status: outcome.status, truncatedValue: outcome.truncatedValue };
    if (outcome.valueJson !== undefined) result.valueJson = outcome.valueJson;
    if (outcome.error) {
      result.error = outcome.error.phase === 'compile' && task.form === 'script'
        ? await confirmCompileError(isolate, task.code, outcome.error)
        : outcome.error;
    }
    return result;
  }
  // The call itself failed and the harness never settled: a compile or link error of a module, an
  // error thrown while a module evaluated, or an unhandled rejection. isolated-vm handed over a
  // host-side copy (strings, plain data), never the guest's object.
  const thrown = end.kind === 'threw' ? end.error : undefined;
  return { ...base, status: 'error', error: describeHostCopy(thrown, phaseHint ?? 'runtime') };
}

/**
 * Whether a call ended by isolated-vm's own timeout. That ends a call at the job's deadline, never
 * before it (calls are given remainingMs(), rounded up): the same words thrown earlier are the
 * snippet's, an ordinary error.
 */
function isolatedVmTimeout(error: unknown, deadlineAt: number): boolean {
  return TIMED_OUT.test(errorMessage(error)) && performance.now() >= deadlineAt - 1;
}

/** The start of an error's message: isolated-vm's own words for its limits are at the start, and a snippet's may run to hundreds of MB. */
function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message.slice(0, 200) : '';
}

/**
 * A harness call made once the job's own calls ended ('collect': the output so far; 'outcome': the
 * outcome it holds); `busy` is the call when it did not come back in time.
 */
async function collect(harness: ivm.Reference, op: 'collect' | 'outcome'): Promise<{ value?: unknown; busy?: Promise<unknown> }> {
  const call = harness
    .apply(undefined, [op], { timeout: COLLECT_MS, result: { copy: true } })
    .then((value: unknown) => ({ value }), () => ({}));
  const late = await Promise.race([call, sleep(COLLECT_MS + 5).then(() => undefined)]);
  return late ?? { busy: call };
}

type Linked = { entry: ivm.Module } | { error: unknown };

/** Any asynchronous call on this thread's own isolate; see drainCallbacks. */
const noop = new ivm.Reference(() => undefined);

/**
 * Resolves once every isolate callback queued on this thread before it was called has run:
 * isolated-vm delivers them and its asynchronous calls' results in one queue, in order (~8 µs).
 */
async function drainCallbacks(): Promise<void> {
  await noop.apply(undefined, []);
}

/** A job's call made synchronously (see stepSync in runJob): how it ended. */
function callSync<T>(run: () => T): CallEnd<T> {
  try {
    return { kind: 'value', value: run() };
  } catch (error) {
    return { kind: 'threw', error };
  }
}

/**
 * Compiles the snippet as a module and links it under the entry module (see ENTRY_SOURCE). Nothing
 * of the snippet runs here. Every import is refused: a snippet has no modules to import.
 */
async function linkModule(prepared: Prepared, code: string, sync: boolean): Promise<Linked> {
  const { isolate, context } = prepared;
  let snippet: ivm.Module;
  try {
    const options = { filename: SNIPPET_MODULE_FILENAME };
    // Synchronously for a job whose calls are (see stepSync in runJob).
    snippet = sync ? isolate.compileModuleSync(code, options) : await isolate.compileModule(code, options);
  } catch (error) {
    return { error };
  }
  const imported = snippet.dependencySpecifiers[0];
  if (imported !== undefined) {
    const error = new Error(`import of '${imported.slice(0, 200)}' is not available: sandpool snippets cannot import modules`);
    error.name = 'ImportError';
    return { error };
  }
  try {
    const entry = isolate.compileModuleSync(ENTRY_SOURCE, { filename: ENTRY_FILENAME });
    entry.instantiateSync(context, (specifier) => {
      if (specifier === SNIPPET_SPECIFIER) return snippet;
      throw new Error(`import of '${specifier}' is not available`);
    });
    return { entry };
  } catch (error) {
    return { error }; // linking the snippet failed: V8's message, as a compile error
  }
}

/**
 * The harness saw a SyntaxError without a snippet frame. Compiling the code (no snippet code runs)
 * confirms it and yields V8's message with the line and column; if it compiles, the SyntaxError
 * came from the snippet itself at run time.
 */
async function confirmCompileError(
  isolate: ivm.Isolate,
  code: string,
  error: NonNullable<ThreadOutcome['error']>,
): Promise<NonNullable<ThreadOutcome['error']>> {
  try {
    const script = await isolate.compileScript(code, { filename: SNIPPET_FILENAME });
    script.release();
    return { ...error, phase: 'runtime' };
  } catch (compileError) {
    return describeHostCopy(compileError, 'compile');
  }
}
