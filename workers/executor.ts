// Runs as an executor child process (`node --no-node-snapshot workers/executor.ts <config JSON>`):
// spawned, watched and killed by the pool (src/pool.ts) and spoken to only over the IPC channel.
//
// It holds a piscina pool of threads running the thread module (workers/thread.ts), never more than
// `threads` tasks at once so it knows when each one started, and owns the middle deadline: a task
// not answered by timeoutMs + graceMs has its thread terminated and is answered `timeout`. Isolates
// can still take the whole process down (V8 fatal OOM, process-wide aborts); that is why this is
// a process of its own, and why the pool watches it from outside.
import { writeSync } from 'node:fs';
import type { Worker } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { runsSynchronously } from '../src/limits.ts';
import { EXECUTOR_EXIT_UNUSABLE } from '../src/pool-executor.ts';
import type {
  ExecutorConfig,
  FromExecutor,
  ThreadData,
  ThreadOutcome,
  ThreadTask,
  ToExecutor,
} from './protocol.ts';

/** Tasks in a row whose threads had to be terminated before this executor asks to be retired. */
const TERMINATIONS_BEFORE_RETIRING = 2;
/** A thread told to terminate that is still alive after this is wedged in native code. */
const WEDGED_THREAD_MS = 3_000;
/**
 * A thread answers a cancel at its next poll (5 ms). A job whose thread calls its isolate
 * synchronously (runsSynchronously) cannot answer until that call ends, at the latest at its wall
 * deadline: its thread is terminated after this, so that the cancel is answered this soon.
 */
const SYNC_CANCEL_GRACE_MS = 250;
/** How long the answer of a task whose thread was terminated waits to see that thread exit. */
const THREAD_EXIT_WAIT_MS = 200;
/** How often the deadlines are checked while tasks run: a small part of graceMs. */
const SWEEP_MS = 25;
/** The sweep timer stops after this many sweeps with nothing running. */
const IDLE_SWEEPS = 40;
const MAX_REASON_CHARS = 500;

interface Entry {
  task: ThreadTask;
  slot: number;
  running: boolean;
  startedAt: number;
  controller: TaskStop | undefined;
  /** Epoch ms past which the task's thread is terminated (timeoutMs + graceMs after it started). */
  deadlineAt: number;
  /** Epoch ms past which a cancelled task's thread is terminated; undefined until cancelled. */
  cancelAt: number | undefined;
  /** Set when this executor stopped the task itself, so piscina's AbortError is not a failure. */
  stoppedFor: 'timeout' | 'cancelled' | undefined;
  /** The thread(s) that stopping the task terminated (piscina terminates at once, on abort). */
  stoppedThreads: ReadonlySet<Worker> | undefined;
}

/**
 * What piscina needs of a task's abort signal (it takes an EventEmitter's `once`/`removeListener`
 * as well as an AbortSignal's): an AbortController and its signal per task cost ~10 µs of a
 * trivial job's path, for a stop that almost no task needs.
 */
class TaskStop {
  aborted = false;
  reason: unknown = undefined;
  #listener: (() => void) | undefined;

  once(_event: 'abort', listener: () => void): this {
    this.#listener = listener;
    return this;
  }

  removeListener(_event: 'abort', listener: () => void): this {
    if (this.#listener === listener) this.#listener = undefined;
    return this;
  }

  off(event: 'abort', listener: () => void): this {
    return this.removeListener(event, listener);
  }

  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    const listener = this.#listener;
    this.#listener = undefined;
    listener?.();
  }
}

function readConfig(): ExecutorConfig {
  const raw = process.argv[2];
  if (raw === undefined || typeof process.send !== 'function') {
    writeSync(2, 'sandpool executor: start me through createPool (needs a config argument and an IPC channel)\n');
    process.exit(64);
  }
  return JSON.parse(raw) as ExecutorConfig;
}

const config = readConfig();
const capacity = config.capacity;
const cancelBoard = new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT * capacity);
const board = new Int32Array(cancelBoard);
const sentBoard = new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT * capacity);
const sent = new Int32Array(sentBoard);
const freeSlots: number[] = Array.from({ length: capacity }, (_, index) => capacity - 1 - index);
const entries = new Map<string, Entry>();
const waiting: Entry[] = [];
let running = 0;
/** Tasks in a row answered by terminating their thread (see TERMINATIONS_BEFORE_RETIRING). */
let terminatedInARow = 0;
/** This executor asked the pool to retire it (isolateStillRunning): sent no new job, ended once idle. */
let retiring = false;
let shuttingDown = false;

const workerData: ThreadData = { cancelBoard, sentBoard, sparesPerThread: config.sparesPerThread };
const piscina = new Piscina<ThreadTask, ThreadOutcome>({
  filename: config.threadModule,
  minThreads: config.threads,
  maxThreads: config.threads,
  idleTimeout: Number.POSITIVE_INFINITY,
  concurrentTasksPerWorker: 1,
  // Threads prepare spare isolates between tasks; Atomics.wait would freeze their event loop.
  atomics: 'disabled',
  // Nothing reads piscina's run/wait-time histograms; recording them costs every task.
  recordTiming: false,
  workerData,
});

// piscina replaces a dead thread at once, unless threads die while loading the thread module: then
// it stops replacing them and tasks would wait forever, to be answered `timeout` — blaming the job
// for a broken install. An executor short of threads says why on stderr and leaves; the pool
// counts that as a failed start and replaces it with backoff.
function checkThreads(cause: unknown): void {
  if (piscina.threads.length >= config.threads) return;
  writeSync(2, `sandpool executor: threads are not starting: ${describeFailure(cause)}\n`);
  process.exit(EXECUTOR_EXIT_UNUSABLE);
}

// A thread that dies with no task in hand has nobody to answer; without a listener the 'error'
// event would take this process down with every task of every other thread.
piscina.on('error', checkThreads);

// Every thread ever started, until it exits: a terminated thread that stays is stuck in native
// code (an isolate that will not stop), burning a core; past that, only a new process helps.
const liveThreads = new Set<Worker>();
piscina.on('workerCreate', () => {
  for (const thread of piscina.threads) {
    if (liveThreads.has(thread)) continue;
    liveThreads.add(thread);
    thread.once('exit', () => liveThreads.delete(thread));
  }
});

/** Threads piscina let go of (terminated) that have not exited yet. */
function terminatedThreads(): Set<Worker> {
  const current = new Set(piscina.threads);
  const terminated = new Set<Worker>();
  for (const thread of liveThreads) if (!current.has(thread)) terminated.add(thread);
  return terminated;
}

/** Resolves true once none of `threads` is left running, false if one still is after `ms`. */
async function threadsExit(threads: ReadonlySet<Worker>, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  const running = () => {
    for (const thread of threads) if (liveThreads.has(thread)) return true;
    return false;
  };
  while (running()) {
    if (Date.now() >= until) return false;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return true;
}

function checkWedgedThreads(): void {
  // Once retiring, the pool ends this process when its other jobs are done, thread and all.
  if (retiring || liveThreads.size <= config.threads) return;
  writeSync(2, `sandpool executor: ${liveThreads.size - config.threads} terminated thread(s) never exited\n`);
  // A thread stuck in native code (a synchronous call its timeout could not end, a built-in that
  // ignores termination) burns a core: with tasks still running, the pool retires this process,
  // ending it once they are done rather than under them.
  if (running > 0) {
    retiring = true;
    send({ type: 'retire' });
    return;
  }
  // process.exit would wait on those threads; only a signal ends this process for certain.
  process.kill(process.pid, 'SIGKILL');
}

function send(message: FromExecutor): void {
  // A closed channel means the pool is gone; 'disconnect' ends this process.
  process.send?.(message, undefined, undefined, () => {});
}

function stoppedOutcome(entry: Entry, status: 'timeout' | 'cancelled'): ThreadOutcome {
  const now = Date.now();
  const outcome: ThreadOutcome = {
    id: entry.task.id,
    status,
    truncatedValue: false,
    stdout: '',
    stderr: '',
    stdoutTotalBytes: 0,
    stderrTotalBytes: 0,
    startedAt: entry.running ? entry.startedAt : now,
    setupMs: 0,
    wallTimeMs: entry.running ? now - entry.startedAt : 0,
    // Its thread was busy until it was terminated, and took the isolate's clock with it: the time
    // it ran is the figure (an upper bound).
    cpuTimeMs: entry.running ? now - entry.startedAt : 0,
    heapUsedBytes: 0,
    thread: 0,
  };
  if (status === 'timeout') {
    outcome.error = {
      name: 'TimeoutError',
      message: `Script ran past its ${entry.task.limits.timeoutMs} ms wall-clock limit and was stopped`,
      limit: 'wall',
    };
  } else {
    outcome.error = { name: 'CancelledError', message: 'The job was cancelled' };
  }
  return outcome;
}

function release(entry: Entry): void {
  // The thread that ran it may now dispose its isolate and prepare the next (IsolateRunner).
  Atomics.store(sent, entry.slot, 1);
  Atomics.notify(sent, entry.slot);
  entries.delete(entry.task.id);
  freeSlots.push(entry.slot);
  if (entry.running) running--;
  startWaiting();
}

function startWaiting(): void {
  while (running < config.threads && waiting.length > 0) {
    const next = waiting.shift();
    if (next !== undefined) start(next);
  }
}

function start(entry: Entry): void {
  running++;
  entry.running = true;
  entry.startedAt = Date.now();
  entry.deadlineAt = entry.startedAt + entry.task.limits.timeoutMs + config.graceMs;
  const controller = new TaskStop();
  entry.controller = controller;
  watchDeadlines();
  piscina.run(entry.task, { signal: controller }).then(
    (outcome) => {
      terminatedInARow = 0;
      // Sent before anything else: the thread holds back its own work until release() raises the slot.
      send({ type: 'done', id: entry.task.id, outcome });
      release(entry);
    },
    (error: unknown) => {
      release(entry);
      if (entry.stoppedFor !== undefined) {
        const outcome = stoppedOutcome(entry, entry.stoppedFor);
        // Only a job past its deadline counts: a cancel may find its thread busy in a synchronous call.
        if (entry.stoppedFor === 'timeout') terminatedInARow++;
        const answer = (threadRunsOn: boolean) => {
          // Threads that must be terminated task after task, fresh ones included, mean isolated-vm
          // in this process no longer finishes its calls (it has known deadlocks between isolates
          // of one process) or isolates will not stop: the pool retires this executor for a new
          // one. So does a terminated thread that does not exit: it is stuck in native code (a
          // synchronous call that isolated-vm's timeout could not end), burning a core.
          if (terminatedInARow >= TERMINATIONS_BEFORE_RETIRING || threadRunsOn) {
            outcome.isolateStillRunning = true;
            retiring = true;
          }
          send({ type: 'done', id: entry.task.id, outcome });
        };
        // A cancelled job's synchronous call runs on to its deadline: one near ends well before
        // checkWedgedThreads looks, and costs nothing more.
        const deadline = entry.startedAt + entry.task.limits.timeoutMs;
        if (entry.stoppedFor === 'timeout' || deadline - Date.now() > WEDGED_THREAD_MS / 2) {
          // Only the task's own thread: another stopped task's thread may run on legitimately (a
          // cancelled synchronous call until its deadline), which checkWedgedThreads judges.
          void threadsExit(entry.stoppedThreads ?? new Set(), THREAD_EXIT_WAIT_MS).then((exited) => answer(!exited));
        } else {
          answer(false);
        }
        return;
      }
      send({ type: 'failed', id: entry.task.id, reason: describeFailure(error) });
      checkThreads(error);
    },
  );
}

// One interval checks every running task's deadlines, instead of a timer armed and cleared per task
// (tens of microseconds on a trivial task's path); it stops once nothing has run for a while.
let sweeper: NodeJS.Timeout | undefined;
let idleSweeps = 0;

function watchDeadlines(): void {
  idleSweeps = 0;
  sweeper ??= setInterval(sweep, SWEEP_MS);
}

function sweep(): void {
  if (running === 0) {
    if (++idleSweeps < IDLE_SWEEPS) return;
    clearInterval(sweeper);
    sweeper = undefined;
    return;
  }
  idleSweeps = 0;
  const now = Date.now();
  for (const entry of entries.values()) {
    if (!entry.running) continue;
    if (now >= entry.deadlineAt) stop(entry, 'timeout');
    else if (entry.cancelAt !== undefined && now >= entry.cancelAt) stop(entry, 'cancelled');
  }
}

/** Terminates the task's thread (piscina replaces it); the rejection that follows answers it. */
function stop(entry: Entry, reason: 'timeout' | 'cancelled'): void {
  if (entry.stoppedFor !== undefined) return;
  entry.stoppedFor = reason;
  // piscina terminates the task's thread within abort(): the threads terminated since are its.
  const before = terminatedThreads();
  entry.controller?.abort();
  const stopped = terminatedThreads();
  for (const thread of before) stopped.delete(thread);
  entry.stoppedThreads = stopped;
  setTimeout(checkWedgedThreads, WEDGED_THREAD_MS).unref();
}

/** `CODE: message` — the pool reads the code (ERR_WORKER_OUT_OF_MEMORY means memory). */
function describeFailure(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code ?? error.name;
    return `${code}: ${error.message}`.slice(0, MAX_REASON_CHARS);
  }
  return `UNKNOWN: ${String(error)}`.slice(0, MAX_REASON_CHARS);
}

function onRun(task: ThreadTask): void {
  const slot = freeSlots.pop();
  if (shuttingDown || slot === undefined || entries.has(task.id)) {
    // The pool never sends more than `capacity` tasks or reuses a live id; answering keeps it honest.
    send({ type: 'failed', id: task.id, reason: 'EXECUTOR_REFUSED: no free slot, duplicate id, or shutting down' });
    if (slot !== undefined) freeSlots.push(slot);
    return;
  }
  Atomics.store(board, slot, 0);
  Atomics.store(sent, slot, 0);
  task.cancelSlot = slot;
  const entry: Entry = {
    task,
    slot,
    running: false,
    startedAt: 0,
    controller: undefined,
    deadlineAt: Number.POSITIVE_INFINITY,
    cancelAt: undefined,
    stoppedFor: undefined,
    stoppedThreads: undefined,
  };
  entries.set(task.id, entry);
  if (running < config.threads) start(entry);
  else waiting.push(entry);
}

function onCancel(id: string): void {
  const entry = entries.get(id);
  if (entry === undefined) return;
  if (!entry.running) {
    waiting.splice(waiting.indexOf(entry), 1);
    release(entry);
    send({ type: 'done', id, outcome: stoppedOutcome(entry, 'cancelled') });
    return;
  }
  // The thread polls its slot and answers `cancelled` itself, output so far included; a thread
  // that does not within the grace is terminated.
  Atomics.store(board, entry.slot, 1);
  Atomics.notify(board, entry.slot);
  const grace = runsSynchronously(entry.task.limits) ? Math.min(config.graceMs, SYNC_CANCEL_GRACE_MS) : config.graceMs;
  entry.cancelAt ??= Date.now() + grace;
}

function onShutdown(): void {
  if (shuttingDown) return;
  shuttingDown = true;
  // The pool drained what it could before asking; anything still here is abandoned by it.
  void piscina.destroy().finally(() => process.exit(0));
}

process.on('message', (message: ToExecutor) => {
  switch (message.type) {
    case 'run':
      onRun(message.task);
      break;
    case 'cancel':
      onCancel(message.id);
      break;
    case 'shutdown':
      onShutdown();
      break;
  }
});

// Ctrl-C in a terminal, or systemd stopping a unit, signals every process of the group, executors
// included. Their parent decides when they end (it drains its jobs first, then sends `shutdown`);
// dying here at once would turn a graceful stop into crashed jobs. SIGKILL still ends this process.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => {});

// The pool is gone (it exited, crashed or was killed): nobody will read an answer, and an
// orphan executor would hold memory and maybe a spinning isolate. process.exit could wait on a
// wedged thread; a signal cannot.
process.on('disconnect', () => process.kill(process.pid, 'SIGKILL'));

// `ready` waits until every thread has loaded the thread module, so that a broken install (a
// native module built for another Node, a missing file) fails createPool() with its reason instead
// of failing jobs later, and the first jobs do not wait on module loading. piscina tells a thread's
// readiness only internally: each posts { _WORKER_READY: true } once its module is loaded. Should
// a piscina upgrade change that, this waits THREADS_READY_TIMEOUT_MS and goes on: slower, not wrong.
const PISCINA_READY_KEY = '_WORKER_READY';
const THREADS_READY_TIMEOUT_MS = 15_000;

function whenThreadsLoaded(): Promise<void> {
  const loading = piscina.threads.map(
    (thread) =>
      new Promise<void>((resolve) => {
        const onMessage = (message: unknown) => {
          if (typeof message !== 'object' || message === null || !(PISCINA_READY_KEY in message)) return;
          thread.off('message', onMessage);
          resolve();
        };
        thread.on('message', onMessage);
      }),
  );
  let timer: NodeJS.Timeout | undefined;
  const fallback = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, THREADS_READY_TIMEOUT_MS);
  });
  return Promise.race([Promise.all(loading).then(() => undefined), fallback]).finally(() => clearTimeout(timer));
}

void whenThreadsLoaded().then(() => send({ type: 'ready', pid: process.pid, threads: config.threads }));
