// The embedded engine, in the caller's process: createPool() checks and prepares each job here
// (src/pool-job.ts) and runs it in executor child processes under a supervisor
// (src/pool-supervisor.ts). isolated-vm is never loaded into this process, so no snippet can take
// the caller down with it; a snippet that crashes or wedges V8 costs an executor, which is replaced.
import { randomUUID } from 'node:crypto';
import { refuseUnknownCallOptions, settledWithin } from './options.ts';
import { cancelledError, createJobPipeline, type JobContext, type JobPipeline, type PendingPreparation, type Preparation } from './pool-job.ts';
import { compilePoolOptions, type CompiledPoolOptions, type PoolOptions } from './pool-options.ts';
import type { Job } from './pool-queue.ts';
import type { Deferred } from './pool-health.ts';
import { POOL_ERROR_CODES, Supervisor, closedError } from './pool-supervisor.ts';
import { isParsedRequest, type Request } from './request.ts';
import type { Result } from './result.ts';

export type { PoolOptions } from './pool-options.ts';

export { POOL_ERROR_CODES } from './pool-supervisor.ts';

/** Thrown (as a rejection) by execute() once close() was called. */
export class PoolClosedError extends Error {
  readonly code = POOL_ERROR_CODES.POOL_CLOSED;
  override readonly name = 'PoolClosedError';
  constructor() {
    super('the pool is closed');
  }
}

export interface ExecuteOptions {
  /** Aborting cancels the job: at once while it waits, through the executor while it runs. */
  signal?: AbortSignal;
  /** The job's id in its Result. @default a random UUID */
  id?: string;
  /** When the job was accepted, epoch ms; queueWaitMs counts from here. @default now */
  acceptedAt?: number;
  /** The attempt number a caller's own retry is on (BullMQ's attemptsMade + 1). @default 1 */
  attempt?: number;
}

const EXECUTE_OPTION_KEYS: ReadonlySet<string> = new Set(['signal', 'id', 'acceptedAt', 'attempt']);

export interface PoolStats {
  /** Executors ready to take jobs. */
  executors: number;
  /** Jobs dispatched to an executor and not yet answered. */
  inFlight: number;
  /** Jobs waiting in the pool: for an executor, or for their TypeScript or large code to be prepared on a thread. */
  queued: number;
  /** Executors started to replace dead ones since the pool was created. */
  restarts: number;
}

export interface Pool {
  /**
   * Runs one request. Resolves with a Result whatever the request or snippet did; rejects only with
   * PoolClosedError after close(), or a TypeError for nonsense execute options (a bug in the caller).
   */
  execute(request: unknown, options?: ExecuteOptions): Promise<Result>;
  /**
   * execute() for a request parseRequest() accepted: pass its output unchanged, and it is not
   * validated a second time (the queue worker validates each job once this way).
   */
  executeValidated(request: Request, options?: ExecuteOptions): Promise<Result>;
  stats(): PoolStats;
  /**
   * Stops accepting jobs, lets accepted ones finish for up to `deadlineMs` (@default 10 000;
   * Infinity: as long as they take), answers what is left `internal_error` (code POOL_CLOSED), then
   * stops the executors and resolves once every one has exited. Idempotent: later calls return the
   * same promise. Rejects with a TypeError, closing nothing, when `deadlineMs` is not a number from 0.
   */
  close(options?: { deadlineMs?: number }): Promise<void>;
}

/** Starts the executors and resolves once every one of them is ready. */
export async function createPool(options?: PoolOptions): Promise<Pool> {
  return EmbeddedPool.create(compilePoolOptions(options));
}

const DEFAULT_CLOSE_DEADLINE_MS = 10_000;

class EmbeddedPool implements Pool {
  #options: Readonly<CompiledPoolOptions>;
  #pipeline: JobPipeline;
  #supervisor: Supervisor;
  #keys = 0;
  #closed = false;
  #closing: Promise<void> | undefined;
  /** Set once close() has waited for the jobs being prepared: a job prepared later is answered closed. */
  #stopped = false;
  /**
   * Jobs being prepared on a thread (TypeScript, large code), each with the function that answers it
   * closed at once: close() waits for them within its deadline, then stops those left.
   */
  readonly #preparing = new Set<() => void>();
  /** Preparations on a thread not finished yet, whether or not their jobs were answered meanwhile. */
  #threadWork = 0;
  /** Aborted once close() stops waiting for jobs being prepared: their work not started is dropped. */
  readonly #dropWork = new AbortController();
  /** Resolved when the last job being prepared has left #preparing. */
  #prepared: Deferred<void> | undefined;

  static async create(options: Readonly<CompiledPoolOptions>): Promise<EmbeddedPool> {
    const pool = new EmbeddedPool(options);
    try {
      await pool.#supervisor.ready();
    } catch (cause) {
      await pool.close({ deadlineMs: 0 });
      throw new Error('sandpool: the executors failed to start', { cause });
    }
    return pool;
  }

  private constructor(options: Readonly<CompiledPoolOptions>) {
    this.#options = options;
    this.#pipeline = createJobPipeline(options, this.#dropWork.signal);
    this.#supervisor = new Supervisor(options, this.#pipeline);
  }

  execute(request: unknown, options: ExecuteOptions = {}): Promise<Result> {
    return this.#execute((id) => this.#pipeline.prepare(request, id, options.signal), options);
  }

  executeValidated(request: Request, options: ExecuteOptions = {}): Promise<Result> {
    // Trusted as validated, so it must be parseRequest's own output: anything else is a caller's bug.
    if (!isParsedRequest(request)) {
      return Promise.reject(new TypeError("executeValidated(): expected parseRequest()'s own output, unchanged; use execute() for anything else"));
    }
    return this.#execute((id) => this.#pipeline.prepareValidated(request, id, options.signal), options);
  }

  async #execute(prepare: (id: string) => Preparation | PendingPreparation, options: ExecuteOptions): Promise<Result> {
    if (this.#closed) throw new PoolClosedError();
    // The options are the calling program's, not the producer's: nonsense there is a bug to name.
    if (typeof options !== 'object' || options === null) {
      throw new TypeError(`execute(): options must be an object, got ${options === null ? 'null' : typeof options}`);
    }
    refuseUnknownCallOptions('execute', options, EXECUTE_OPTION_KEYS);
    // Sub-millisecond, as the thread's own start is: Date.now() would add up to 1 ms to every wait.
    const acceptedAt = options.acceptedAt ?? performance.timeOrigin + performance.now();
    const id = options.id ?? randomUUID();
    const attempt = options.attempt ?? 1;
    if (typeof acceptedAt !== 'number' || !Number.isFinite(acceptedAt) || acceptedAt < 0) {
      throw new TypeError(`execute(): options.acceptedAt must be epoch milliseconds, got ${String(acceptedAt)}`);
    }
    if (typeof id !== 'string') throw new TypeError(`execute(): options.id must be a string, got ${typeof id}`);
    if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
      throw new TypeError('execute(): options.signal must be an AbortSignal');
    }
    if (!Number.isSafeInteger(attempt) || attempt < 1) {
      throw new TypeError(`execute(): options.attempt must be a whole number from 1, got ${String(attempt)}`);
    }
    // Jobs waiting for an executor, and thread work on jobs being prepared (which, once a thread
    // took it, runs out even for a job cancelled meanwhile), hold their code and input here. A job
    // cancelled already is answered so rather than turned away.
    if (this.#supervisor.queued + this.#threadWork >= this.#options.maxQueued) {
      if (options.signal?.aborted) return this.#pipeline.withoutRun('cancelled', this.#unprepared(id, acceptedAt, attempt), cancelledError());
      return this.#pipeline.full(id);
    }
    let preparation;
    // What is known of a job still being prepared: the answer if it is cancelled or closed meanwhile.
    let known: PendingPreparation['known'] | undefined;
    try {
      preparation = prepare(id);
      // TypeScript and large code are prepared on a thread; the rest at once, with no await.
      // close() and the job's signal do not wait for that thread.
      if (preparation instanceof Promise) {
        const pending = preparation;
        known = pending.known;
        this.#threadWork++;
        const signal = options.signal;
        preparation = await new Promise<Preparation | 'closed' | 'cancelled'>((resolve, reject) => {
          // Answered (closed, cancelled, or prepared): no longer waited for by close() nor counted
          // as queued, though the thread's work on a cancelled job runs out on its own.
          const leave = () => {
            if (!this.#preparing.delete(stop)) return;
            if (this.#preparing.size === 0) this.#prepared?.resolve();
          };
          const stop = () => {
            leave();
            resolve('closed');
          };
          const cancel = () => {
            leave();
            resolve('cancelled');
          };
          this.#preparing.add(stop);
          if (signal?.aborted) cancel();
          signal?.addEventListener('abort', cancel, { once: true });
          pending.then(resolve, reject).finally(() => {
            this.#threadWork--;
            leave();
            signal?.removeEventListener('abort', cancel);
          });
        });
      }
    } catch (cause) {
      preparation = cause instanceof Error ? cause : new Error(String(cause));
    }
    if (preparation instanceof Error || preparation === 'closed' || preparation === 'cancelled') {
      const context = this.#unprepared(id, acceptedAt, attempt);
      if (known !== undefined) {
        context.limits = known.limits;
        context.labels = known.labels;
      }
      // close() or the signal came while the job was being prepared on a thread: answered at once
      // (the thread's work runs out on its own, within its bound).
      if (preparation === 'closed') return this.#pipeline.withoutRun('internal_error', context, closedError());
      if (preparation === 'cancelled') return this.#pipeline.withoutRun('cancelled', context, cancelledError());
      // Our bug, not the caller's: answer it rather than reject, as promised.
      return this.#pipeline.withoutRun('internal_error', context, {
        name: 'InternalError',
        message: `the pool failed to prepare the job: ${preparation.message}`,
        code: POOL_ERROR_CODES.PIPELINE_FAILED,
      });
    }
    if (!preparation.ok) return preparation.result;
    const { task, limits, warnings, labels, queueTimeoutMs } = preparation.job;
    // Accepted before close(): runs, unless close() has stopped waiting for it.
    if (this.#stopped) return this.#pipeline.withoutRun('internal_error', { id, limits, warnings, labels, acceptedAt, attempt }, closedError());
    const signal = options.signal;
    if (signal?.aborted) {
      return this.#pipeline.withoutRun('cancelled', { id, limits, warnings, labels, acceptedAt, attempt }, cancelledError());
    }
    // A caller's ids may repeat; the wire and the executor need one that does not.
    const key = String(++this.#keys);
    task.id = key;
    return new Promise<Result>((resolve) => {
      const job: Job = {
        id,
        key,
        limits,
        warnings,
        labels,
        acceptedAt,
        attempt,
        task,
        runs: 1,
        place: 'queued',
        executor: undefined,
        runningSince: 0,
        stalledMs: 0,
        cancelRequested: false,
        queueTimeoutMs,
        queueDeadline: undefined,
        signal,
        onAbort: undefined,
        resolve,
      };
      if (signal !== undefined) {
        job.onAbort = () => this.#supervisor.cancel(job);
        signal.addEventListener('abort', job.onAbort, { once: true });
      }
      this.#supervisor.submit(job);
    });
  }

  /** A job that was not prepared: nothing of its request is known, so the pool's defaults stand for it. */
  #unprepared(id: string, acceptedAt: number, attempt: number): JobContext {
    return { id, limits: this.#options.defaults, warnings: [], labels: undefined, acceptedAt, attempt };
  }

  stats(): PoolStats {
    const stats = this.#supervisor.stats();
    stats.queued += this.#preparing.size;
    return stats;
  }

  close(options: { deadlineMs?: number } = {}): Promise<void> {
    const deadlineMs = options?.deadlineMs ?? DEFAULT_CLOSE_DEADLINE_MS;
    if (typeof deadlineMs !== 'number' || Number.isNaN(deadlineMs) || deadlineMs < 0) {
      return Promise.reject(
        new TypeError(`close(): options.deadlineMs must be a number of milliseconds from 0 (Infinity: no deadline), got ${String(deadlineMs)}`),
      );
    }
    this.#closed = true;
    this.#closing ??= this.#shutdown(deadlineMs);
    return this.#closing;
  }

  /**
   * Jobs still being prepared are accepted jobs: they are waited for (within the deadline) and go to
   * the executors, which then drain within what is left of it.
   */
  async #shutdown(deadlineMs: number): Promise<void> {
    const start = performance.now();
    if (this.#preparing.size > 0 && deadlineMs > 0) {
      this.#prepared = Promise.withResolvers<void>();
      await settledWithin(this.#prepared.promise, deadlineMs);
      // The last one's own continuation (its submit) runs on the microtask after its removal.
      await new Promise((resolve) => setImmediate(resolve));
    }
    this.#stopped = true;
    // Each stop() takes its job out of #preparing.
    for (const stop of [...this.#preparing]) stop();
    this.#dropWork.abort();
    await this.#supervisor.shutdown(Math.max(0, deadlineMs - (performance.now() - start)));
  }
}
