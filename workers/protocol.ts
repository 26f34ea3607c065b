// The messages that cross process and thread boundaries inside the engine: pool (caller's process)
// ⇄ executor child process (IPC) ⇄ piscina thread. Plain, structured-clone-safe and JSON-safe data
// only; every union is tagged with `type`, and every job message carries the job's id.
import type { Limits } from '../src/limits.ts';
import type { ErrorPhase, ResultError, Status } from '../src/result.ts';

export type CodeForm = 'script' | 'module';

/** One job for one fresh isolate. Everything is already validated, clamped and type-stripped. */
export interface ThreadTask {
  id: string;
  /** JavaScript source (TypeScript was stripped before it got here). */
  code: string;
  form: CodeForm;
  /** JSON text of `input`, or undefined when the request had none. Parsed inside the isolate. */
  inputJson: string | undefined;
  limits: Limits;
  /**
   * Index into the executor's shared cancel board (an Int32Array over a SharedArrayBuffer handed
   * to every thread in workerData). A non-zero value there means: stop this job now.
   */
  cancelSlot: number;
}

/** What a thread answers for a task: never throws for anything the snippet did. */
export interface ThreadOutcome {
  id: string;
  status: Exclude<Status, 'rejected'>;
  /** JSON text of the value, already capped at maxResultBytes (see truncatedValue). */
  valueJson?: string;
  truncatedValue: boolean;
  stdout: string;
  stderr: string;
  stdoutTotalBytes: number;
  stderrTotalBytes: number;
  error?: ResultError & { phase?: ErrorPhase };
  /** Epoch milliseconds (performance.timeOrigin + performance.now()) when this isolate took the job. */
  startedAt: number;
  setupMs: number;
  wallTimeMs: number;
  cpuTimeMs: number;
  heapUsedBytes: number;
  /** worker_threads threadId of the thread that ran it. */
  thread: number;
  /**
   * True when the isolate did not stop once disposed at a limit (a builtin deaf to termination,
   * such as indexOf over a huge array-like): it keeps a core busy on isolated-vm's threads until
   * this process exits. Also set by the executor on the second task in a row whose thread it had
   * to terminate (isolated-vm there no longer finishes calls). The executor should stop taking jobs
   * and have itself replaced.
   */
  isolateStillRunning?: boolean;
}

/** The thread's workerData, set by the executor. */
export interface ThreadData {
  cancelBoard: SharedArrayBuffer;
  /** One Int32 per slot, as the cancel board: 1 once the executor sent that slot's outcome on. */
  sentBoard: SharedArrayBuffer;
  /** Never-used isolates kept ready per thread, so isolate creation stays off the job's path. */
  sparesPerThread: number;
}

/** Pool → executor. */
export type ToExecutor =
  | { type: 'run'; task: ThreadTask }
  | { type: 'cancel'; id: string }
  | { type: 'shutdown' };

/** Executor → pool. */
export type FromExecutor =
  | { type: 'ready'; pid: number; threads: number }
  | { type: 'done'; id: string; outcome: ThreadOutcome }
  /** The executor could not run the task (its thread died, piscina failed): infrastructure. */
  | { type: 'failed'; id: string; reason: string }
  /** A thread it terminated never exited, while other tasks run: end it once they are done. */
  | { type: 'retire' };

/** How the pool configures an executor: one JSON argument on the executor's command line. */
export interface ExecutorConfig {
  /** File URL or absolute path of the piscina task module (workers/thread.ts, or a test fixture). */
  threadModule: string;
  threads: number;
  /** Tasks the pool may have at this executor at once (running and waiting): its slots. */
  capacity: number;
  sparesPerThread: number;
  /** How long past a task's timeoutMs the executor waits before it terminates the thread. */
  graceMs: number;
}
