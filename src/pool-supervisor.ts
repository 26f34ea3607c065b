// Runs in the caller's process, under createPool(): the supervisor of the executor child processes
// (workers/executor.ts). It owns dispatch, the pool-side deadline, the RSS ceiling, executor
// deaths and whom they are blamed on, retries, and replacing the dead.
//
// - Dispatch: least-loaded ready executor, at most threads × 2 jobs each; the rest wait here in a
//   FIFO. The FIFO is not bounded: an embedded caller bounds its own concurrency, and in worker
//   mode BullMQ's concurrency does.
// - Deadlines: the thread owns timeoutMs; the executor terminates the thread at timeoutMs +
//   executorGraceMs; the supervisor SIGKILLs the whole executor at timeoutMs + poolGraceMs if it
//   still has not answered. It mirrors which of an executor's jobs are running (the executor starts
//   them FIFO, `threads` at a time), so that clock starts when the job got a thread.
// - Memory: every executor's RSS is read from /proc each SAMPLE_MS; above executorMemoryMb it dies.
//   An isolate that would not stop after its job was answered is reported by its thread
//   (isolateStillRunning): that executor is retired — replaced at once, killed once its other jobs
//   are done. One nobody reported is noticed as CPU burnt while the executor has no job.
// - Death: every job in flight on a dead executor is answered. Alone, it is the cause
//   (memory_limit for memory, timeout for a deadline); with company nobody can be blamed, so each
//   runs again in quarantine — alone on an executor — until maxAttempts, after which it is
//   internal_error. Dead executors are replaced with backoff; the pool keeps serving throughout.
// - Standby: `standbyExecutors` started ahead and kept idle; one takes a dead or retired
//   executor's place at once, and another is started behind it.
import { EXECUTOR_EXIT_UNUSABLE, ExecutorProcess, type ExecutorExit } from './pool-executor.ts';
import { describeDeath, judgeExecutor, SAMPLE_MS, STALL_TOLERANCE_MS, type Death, type Deferred, type Executor } from './pool-health.ts';
import { JobQueue, type Job } from './pool-queue.ts';
import { cancelledError, msSinceAccepted, type JobPipeline } from './pool-job.ts';
import type { CompiledPoolOptions } from './pool-options.ts';
import { queueTimeoutError, type Result, type ResultError } from './result.ts';
import type { ExecutorConfig, FromExecutor, ThreadOutcome } from '../workers/protocol.ts';
import { settledWithin } from './options.ts';

const MIB = 1024 * 1024;

/** Stable codes of the pool's own errors (Result.error.code for internal_error, or thrown). */
export const POOL_ERROR_CODES = Object.freeze({
  /** execute() after close(), or a job still unfinished when close()'s deadline passed. */
  POOL_CLOSED: 'POOL_CLOSED',
  /** The executor running the job died, and no retry was left to run it elsewhere. */
  EXECUTOR_DIED: 'EXECUTOR_DIED',
  /** The executor could not run the job (its thread died), and no retry was left. */
  EXECUTOR_FAILED: 'EXECUTOR_FAILED',
  /** Executors keep failing to start; queued jobs are answered instead of waiting forever. */
  EXECUTOR_UNAVAILABLE: 'EXECUTOR_UNAVAILABLE',
  /** A bug in the pool's own pipeline; the request itself was not judged. */
  PIPELINE_FAILED: 'PIPELINE_FAILED',
} as const);

/**
 * An executor idle this long has made its threads' next spare isolates (~1.6 ms of CPU each, more on
 * a busy machine): the next job may go to it again rather than round the executors.
 */
const SPARE_REFILL_MS = 3;
/** close(): how long an executor gets to exit after `shutdown` before it is killed. */
const SHUTDOWN_GRACE_MS = 2_000;
/** Replacement backoff after consecutive deaths: BASE × 2^(n−1), capped. */
const RESPAWN_BASE_MS = 25;
const RESPAWN_MAX_MS = 5_000;
/** Consecutive executors dying before ready after which waiting jobs are answered. */
const START_FAILURES_BEFORE_GIVING_UP = 5;
/** recycleAboveMb replaces an executor only once it has grown this much past its first size. */
const RECYCLE_GROWTH_MB = 64;

/** Counts for PoolStats. */
export interface SupervisorStats {
  executors: number;
  inFlight: number;
  queued: number;
  restarts: number;
}

/** The error of a job the pool's close() answered before it finished. */
export function closedError(): ResultError {
  return { name: 'InternalError', message: 'the pool closed before the job finished', code: POOL_ERROR_CODES.POOL_CLOSED };
}


export class Supervisor {
  #options: Readonly<CompiledPoolOptions>;
  #pipeline: JobPipeline;
  #config: ExecutorConfig;
  #capacity: number;
  /** Where the next search for an executor starts: ties between executors go round. */
  #rotation = 0;
  /** The executor the last job went to: the next one goes there too once its spares are back. */
  #lastUsed: Executor | undefined;
  #executors: Executor[] = [];
  /** Executors started ahead, idle, index -1: the next replacement takes the first. */
  #standby: Executor[] = [];
  /** Replaced executors finishing the jobs they hold; killed when they hold none. */
  #retiring = new Set<Executor>();
  #queue = new JobQueue();
  #quarantine = new JobQueue();
  /** While quarantined jobs wait, this executor takes no new jobs so that it drains. */
  #reserved: Executor | undefined;
  #queued = 0;
  #inFlight = 0;
  #restarts = 0;
  #consecutiveDeaths = 0;
  #startFailures = 0;
  #sampler: NodeJS.Timeout;
  /** Date.now() at the last sample (0: none yet). */
  #lastSampleAt = 0;
  /** Set once shutdown() has begun: waiting for the jobs in hand, no routine recycling. */
  #draining = false;
  #respawns = new Set<NodeJS.Timeout>();
  /** Pending starts of standby executors after one died: nothing waits on them (never referenced). */
  #standbyRespawns = new Set<NodeJS.Timeout>();
  /** Set once shutdown() has drained: from then on nothing is retried or replaced. */
  #stopping = false;
  #drained: Deferred<void> | undefined;

  /** Spawns the executors; `ready()` tells when they all are. */
  constructor(options: Readonly<CompiledPoolOptions>, pipeline: JobPipeline) {
    this.#options = options;
    this.#pipeline = pipeline;
    this.#capacity = options.threadsPerExecutor * 2;
    this.#config = {
      threadModule: options.threadModule,
      threads: options.threadsPerExecutor,
      capacity: this.#capacity,
      sparesPerThread: options.sparesPerThread,
      graceMs: options.executorGraceMs,
    };
    for (let index = 0; index < options.executors; index++) this.#spawn(index);
    for (let count = 0; count < options.standbyExecutors; count++) this.#spawnStandby();
    this.#sampler = setInterval(() => this.#sample(), SAMPLE_MS).unref();
  }

  /** Resolves when every first executor is ready; rejects when one dies before. */
  async ready(): Promise<void> {
    await Promise.all(this.#executors.map((executor) => executor.started.promise));
  }

  /** Takes a new job: it waits in the FIFO until an executor has room. */
  submit(job: Job): void {
    this.#queued++;
    this.#queue.push(job);
    if (job.queueTimeoutMs !== undefined) {
      const leftMs = job.queueTimeoutMs - msSinceAccepted(job);
      // Past it already (accepted long before, as a queue worker's job is): answered, not run.
      if (leftMs < 0) return this.#queueDeadline(job);
      job.queueDeadline = setTimeout(() => this.#queueDeadline(job), Math.ceil(leftMs) + 1);
    }
    // A job now waits on any pending replacement: it must keep the process alive until then.
    for (const timer of this.#respawns) timer.ref();
    this.#pump();
  }

  /** The job's signal aborted: answered at once while it waits, through its executor while it runs. */
  cancel(job: Job): void {
    if (job.place === 'queued') {
      this.#settle(job, this.#pipeline.withoutRun('cancelled', job, cancelledError()));
      this.#dropAnswered();
    } else if (job.place === 'executor' && !job.cancelRequested) {
      job.cancelRequested = true;
      job.executor?.process.send({ type: 'cancel', id: job.key });
    }
  }

  /** The job's queueTimeoutMs passed: answered `timeout` (limit queue) if it still waits for an executor. */
  #queueDeadline(job: Job): void {
    job.queueDeadline = undefined;
    if (job.place !== 'queued' || job.queueTimeoutMs === undefined) return;
    this.#settle(job, this.#pipeline.withoutRun('timeout', job, queueTimeoutError(Math.round(msSinceAccepted(job)), job.queueTimeoutMs)));
    this.#dropAnswered();
  }

  /**
   * Entries of jobs answered while they waited, past as many again as those still waiting (and 64),
   * are dropped at once: a caller that submits and cancels without end holds no more than twice maxQueued.
   */
  #dropAnswered(): void {
    if (this.#queue.length + this.#quarantine.length > 2 * this.#queued + 64) {
      this.#queue.compact();
      this.#quarantine.compact();
    }
  }

  /** Jobs waiting for an executor. */
  get queued(): number {
    return this.#queued;
  }

  stats(): SupervisorStats {
    let ready = 0;
    for (const executor of this.#executors) if (executor.state === 'ready') ready++;
    return { executors: ready, inFlight: this.#inFlight, queued: this.#queued, restarts: this.#restarts };
  }

  // ── dispatch ──────────────────────────────────────────────────────────────────────────────────

  #pump(): void {
    // Quarantined jobs first, each onto an executor with nothing else in flight.
    for (let job = this.#quarantine.peek(); job !== undefined; job = this.#quarantine.peek()) {
      const idle = this.#executors.find((executor) => executor.state === 'ready' && executor.jobs.size === 0);
      if (idle === undefined) {
        this.#reserveForQuarantine();
        break;
      }
      this.#quarantine.shift();
      if (this.#reserved === idle) this.#reserved = undefined;
      idle.exclusive = true;
      this.#dispatch(idle, job);
    }
    const reserved = this.#quarantine.peek() === undefined ? undefined : this.#reserved;
    const open = (executor: Executor) =>
      executor.state === 'ready' && !executor.exclusive && executor !== reserved && executor.jobs.size < this.#capacity;
    for (let job = this.#queue.peek(); job !== undefined; job = this.#queue.peek()) {
      const target = this.#warmExecutor(open) ?? this.#leastLoaded(open);
      if (target === undefined) return;
      this.#queue.shift();
      this.#dispatch(target, job);
    }
  }

  /**
   * The executor the last job went to, once it is idle with its spares made again: its process and
   * threads are still in the CPU's caches. Sent round the executors instead, each paced job found a
   * process idle twice as long: 0.25 ms slower.
   */
  #warmExecutor(open: (executor: Executor) => boolean): Executor | undefined {
    const warm = this.#lastUsed;
    if (warm === undefined || !open(warm) || warm.jobs.size > 0) return undefined;
    return performance.now() - warm.idleSince >= SPARE_REFILL_MS ? warm : undefined;
  }

  /**
   * Least loaded; ties go round the executors, so that jobs arriving back to back alternate and each
   * thread gets the time between its jobs to make its next spare isolate.
   */
  #leastLoaded(open: (executor: Executor) => boolean): Executor | undefined {
    let target: Executor | undefined;
    let targetAt = 0;
    const count = this.#executors.length;
    for (let step = 0; step < count; step++) {
      const at = (this.#rotation + step) % count;
      const executor = this.#executors[at]!;
      if (!open(executor)) continue;
      if (target === undefined || executor.jobs.size < target.jobs.size) {
        target = executor;
        targetAt = at;
      }
    }
    if (target !== undefined) this.#rotation = (targetAt + 1) % count;
    return target;
  }

  #reserveForQuarantine(): void {
    if (this.#reserved?.state === 'ready') return;
    let least: Executor | undefined;
    for (const executor of this.#executors) {
      if (executor.state !== 'ready' || executor.exclusive) continue;
      if (least === undefined || executor.jobs.size < least.jobs.size) least = executor;
    }
    this.#reserved = least;
  }

  #dispatch(executor: Executor, job: Job): void {
    clearTimeout(job.queueDeadline);
    this.#queued--;
    this.#inFlight++;
    job.place = 'executor';
    job.executor = executor;
    if (executor.jobs.size === 0) {
      executor.process.setReferenced(true);
      executor.idleMark = undefined;
    }
    executor.jobs.set(job.key, job);
    if (!executor.exclusive) this.#lastUsed = executor;
    if (executor.running < this.#options.threadsPerExecutor) {
      executor.running++;
      job.runningSince = Date.now();
      job.stalledMs = 0;
    } else {
      job.runningSince = 0;
    }
    executor.process.send({ type: 'run', task: job.task });
  }

  /** Takes an answered job off its executor, mirroring the executor starting its next waiting one. */
  #detach(job: Job): void {
    const executor = job.executor;
    if (executor === undefined) return;
    executor.jobs.delete(job.key);
    job.executor = undefined;
    this.#inFlight--;
    if (job.runningSince !== 0) {
      executor.running--;
      for (const next of executor.jobs.values()) {
        if (next.runningSince !== 0) continue;
        next.runningSince = Date.now();
        next.stalledMs = 0;
        executor.running++;
        break;
      }
    }
    if (executor.jobs.size === 0) {
      executor.idleSince = performance.now();
      executor.exclusive = false;
      if (executor.state !== 'dead') executor.process.setReferenced(false);
    }
  }

  #settle(job: Job, result: Result): void {
    if (job.place === 'done') return;
    clearTimeout(job.queueDeadline);
    if (job.place === 'queued') this.#queued--;
    job.place = 'done';
    if (job.onAbort !== undefined) job.signal?.removeEventListener('abort', job.onAbort);
    job.resolve(result);
    if (this.#drained !== undefined && this.#queued === 0 && this.#inFlight === 0) this.#drained.resolve();
  }

  // ── executor messages ─────────────────────────────────────────────────────────────────────────

  #onMessage(executor: Executor, message: FromExecutor): void {
    // Answers from an executor the pool already gave up on are void: its jobs were answered.
    if (executor.state === 'dead') return;
    switch (message.type) {
      case 'ready':
        executor.state = 'ready';
        this.#startFailures = 0;
        executor.process.setReferenced(executor.jobs.size > 0);
        executor.started.resolve();
        this.#pump();
        return;
      case 'done': {
        const job = executor.jobs.get(message.id);
        if (job === undefined) return;
        this.#detach(job);
        this.#consecutiveDeaths = 0;
        const recycleAfter = this.#options.recycleAfterJobs;
        if (message.outcome.isolateStillRunning === true) this.#retire(executor, 'an isolate would not stop');
        else if (this.#leftOverCeiling(executor, message.outcome, job)) this.#retire(executor, 'a job left it over its memory ceiling');
        else if (++executor.jobsDone === recycleAfter && recycleAfter > 0) this.#retire(executor, `recycled after ${recycleAfter} jobs`, true);
        this.#settle(job, this.#pipeline.fromOutcome(message.outcome, job, executor.process.pid));
        this.#reapRetired(executor);
        this.#pump();
        return;
      }
      case 'failed': {
        const job = executor.jobs.get(message.id);
        if (job === undefined) return;
        const worker = { pid: executor.process.pid, ...(job.runningSince === 0 ? {} : { wallTimeMs: Date.now() - job.runningSince }) };
        this.#detach(job);
        this.#reapRetired(executor);
        if (message.reason.startsWith('ERR_WORKER_OUT_OF_MEMORY')) {
          // The thread's own heap gave out while it ran only this job.
          this.#settle(job, this.#pipeline.withoutRun('memory_limit', job, memoryError('the thread running it ran out of memory'), worker));
        } else {
          this.#retryOrFail(job, { quarantine: true }, {
            name: 'InternalError',
            message: `the executor could not run the job: ${message.reason}`,
            code: POOL_ERROR_CODES.EXECUTOR_FAILED,
          }, worker);
        }
        this.#pump();
        return;
      }
      case 'retire':
        // A thread it terminated never exited: replaced at once, ended once its other jobs are done.
        this.#retire(executor, 'a terminated thread never exited');
        this.#reapRetired(executor);
        return;
    }
  }

  /** `worker`: the executor's pid and, when the job had a thread there, the time it ran. */
  #retryOrFail(job: Job, how: { quarantine: boolean }, lastError: ResultError, worker: { pid: number; wallTimeMs?: number }): void {
    if (job.cancelRequested) {
      this.#settle(job, this.#pipeline.withoutRun('cancelled', job, cancelledError(), worker));
      return;
    }
    if (job.runs >= this.#options.maxAttempts || this.#stopping) {
      this.#settle(job, this.#pipeline.withoutRun('internal_error', job, lastError, worker));
      return;
    }
    job.runs++;
    job.attempt++;
    job.place = 'queued';
    this.#queued++;
    if (how.quarantine) this.#quarantine.push(job);
    else this.#queue.unshift(job);
  }

  // ── life and death of executors ───────────────────────────────────────────────────────────────

  /** An executor for slot `index`: a standby one when there is one (another is started behind it), else a new one. */
  #spawn(index: number): void {
    const standby = this.#standby.shift();
    if (standby === undefined) {
      this.#executors[index] = this.#newExecutor(index);
      return;
    }
    standby.index = index;
    this.#executors[index] = standby;
    this.#options.logger?.info({ event: 'executor_promoted', executor: index, executorPid: standby.process.pid, ready: standby.state === 'ready' }, 'standby executor took its place');
    this.#spawnStandby();
    this.#pump();
  }

  #spawnStandby(): void {
    if (this.#draining || this.#stopping) return;
    this.#standby.push(this.#newExecutor(-1));
  }

  #newExecutor(index: number): Executor {
    const started = Promise.withResolvers<void>();
    // Only createPool awaits this; a replacement that fails to start is handled by its death.
    started.promise.catch(() => {});
    let executor!: Executor;
    const process = new ExecutorProcess(this.#options.executorPath, this.#config, (message) =>
      this.#onMessage(executor, message),
    );
    executor = {
      index,
      process,
      state: 'starting',
      jobs: new Map(),
      running: 0,
      exclusive: false,
      spawnedAt: Date.now(),
      idleMark: undefined,
      idleSince: 0,
      jobsDone: 0,
      residentMb: undefined,
      baselineMb: undefined,
      started,
    };
    void executor.process.exited.then((exit) => this.#onExit(executor, exit));
    this.#options.logger?.info(
      { event: 'executor_spawned', executor: index, executorPid: executor.process.pid, ...(index < 0 ? { standby: true } : {}) },
      'executor spawned',
    );
    return executor;
  }

  #onExit(executor: Executor, exit: ExecutorExit): void {
    if (executor.state !== 'dead') {
      const death: Death =
        (executor.state === 'starting' && exit.signal === null) || exit.code === EXECUTOR_EXIT_UNUSABLE
          ? { kind: 'start_failed', exit }
          : exit.outOfMemory
            ? { kind: 'oom' }
            : { kind: 'crash', exit };
      this.#bury(executor, death);
    }
    this.#options.logger?.info(
      { event: 'executor_exited', executor: executor.index, executorPid: executor.process.pid, exitCode: exit.code, signal: exit.signal, outOfMemory: exit.outOfMemory },
      'executor exited',
    );
    if (this.#stopping) return;
    const standbyAt = this.#standby.indexOf(executor);
    if (standbyAt < 0 && this.#executors[executor.index] !== executor) return;
    if (standbyAt >= 0) this.#standby.splice(standbyAt, 1);
    const deaths = this.#consecutiveDeaths;
    const delay = deaths === 0 ? 0 : Math.min(RESPAWN_BASE_MS * 2 ** (deaths - 1), RESPAWN_MAX_MS);
    if (standbyAt >= 0) {
      const timer = setTimeout(() => {
        this.#standbyRespawns.delete(timer);
        this.#spawnStandby();
      }, delay).unref();
      this.#standbyRespawns.add(timer);
      return;
    }
    const timer = setTimeout(() => {
      this.#respawns.delete(timer);
      if (this.#stopping) return;
      this.#restarts++;
      this.#spawn(executor.index);
      this.#options.logger?.info({ event: 'executor_replaced', executor: executor.index, delayMs: delay }, 'executor replaced');
    }, delay);
    // With nothing waiting, a pending replacement must not hold an idle caller's process open.
    if (this.#queued === 0) timer.unref();
    this.#respawns.add(timer);
  }

  /**
   * An isolate of this executor keeps a core busy after its job was answered, until the process
   * ends. New jobs go to a replacement started now; this one finishes what it holds, then dies.
   */
  #retire(executor: Executor, why: string, routine = false): void {
    if (this.#executors[executor.index] !== executor || this.#stopping) return;
    // A routine recycle while close() drains would start an executor only to stop it.
    if (routine && this.#draining) return;
    this.#retiring.add(executor);
    if (this.#reserved === executor) this.#reserved = undefined;
    const fields = { event: 'executor_retired', executor: executor.index, executorPid: executor.process.pid, jobs: executor.jobs.size };
    // A recycle is routine: not a warning, and not counted among the replacements of failed executors.
    if (routine) this.#options.logger?.info(fields, `executor retired: ${why}`);
    else {
      this.#options.logger?.warn(fields, `executor retired: ${why}`);
      this.#restarts++;
    }
    this.#spawn(executor.index);
  }

  /**
   * A job that ended at its heap limit, or near it, may leave its executor's resident memory over
   * the ceiling after its isolate is gone (the allocator keeps what it got). The sampler would then
   * kill the executor under the next job and, were that job alone, blame it. So the executor's
   * memory is read at once after such a job (rare; /proc, microseconds), and the executor retired
   * if it is over: it takes no new job and ends once the ones it holds are done.
   */
  #leftOverCeiling(executor: Executor, outcome: ThreadOutcome, job: Job): boolean {
    if (outcome.status !== 'memory_limit' && outcome.heapUsedBytes < (job.limits.memoryMb * MIB) / 2) return false;
    const residentMb = executor.process.residentMb();
    return residentMb !== undefined && residentMb > this.#options.executorMemoryMb;
  }

  /**
   * Memory the executor keeps has passed recycleAboveMb (see there): replaced before the ceiling.
   * Only once it has answered a job and grown by RECYCLE_GROWTH_MB from its own first size: a mark
   * near or below a fresh executor's size (a small executorMemoryMb) would otherwise replace
   * executors after every job. (While the pool drains for close(), #retire declines routine recycles.)
   */
  #overRecycleMark(executor: Executor): boolean {
    const mark = this.#options.recycleAboveMb;
    const resident = executor.residentMb;
    if (mark === 0 || executor.jobsDone === 0 || resident === undefined || resident <= mark) return false;
    return executor.baselineMb !== undefined && resident > executor.baselineMb + RECYCLE_GROWTH_MB;
  }

  #reapRetired(executor: Executor): void {
    if (executor.jobs.size === 0 && this.#retiring.has(executor)) this.#kill(executor, { kind: 'retired' });
  }

  /** Kills an executor on the pool's own judgement and answers its jobs now. */
  #kill(executor: Executor, death: Death): void {
    if (executor.state === 'dead') return;
    this.#bury(executor, death);
    executor.process.kill();
  }

  /** Marks an executor dead and answers (or re-queues) every job it held. */
  #bury(executor: Executor, death: Death): void {
    const wasReady = executor.state === 'ready';
    executor.state = 'dead';
    this.#retiring.delete(executor);
    if (this.#reserved === executor) this.#reserved = undefined;
    executor.started.reject(new Error(`executor ${executor.index} died before it was ready (${describeDeath(death)})`));
    if (death.kind !== 'shutdown' && death.kind !== 'retired') {
      this.#consecutiveDeaths++;
      if (!wasReady || death.kind === 'start_failed') this.#startFailures++;
      this.#options.logger?.warn(
        { event: 'executor_died', executor: executor.index, executorPid: executor.process.pid, cause: describeDeath(death), jobs: executor.jobs.size },
        'executor died',
      );
    }
    const jobs = [...executor.jobs.values()];
    const alone = jobs.length === 1;
    const pid = executor.process.pid;
    const now = Date.now();
    for (const job of jobs) {
      const wallTimeMs = job.runningSince === 0 ? 0 : now - job.runningSince;
      this.#detach(job);
      if (death.kind === 'deadline' && death.culprits.has(job)) {
        const [status, error] = job.cancelRequested ? (['cancelled', cancelledError()] as const) : (['timeout', timeoutError(job)] as const);
        this.#settle(job, this.#pipeline.withoutRun(status, job, error, { pid, wallTimeMs }));
      } else if (alone && (death.kind === 'memory' || death.kind === 'oom')) {
        const why = death.kind === 'memory' ? `grew its executor past ${this.#options.executorMemoryMb} MiB resident` : 'exhausted memory and crashed its executor';
        this.#settle(job, this.#pipeline.withoutRun('memory_limit', job, memoryError(`the job ${why}`), { pid, wallTimeMs }));
      } else {
        // Innocent bystanders of a known culprit go back to the front; anyone else in quarantine.
        this.#retryOrFail(job, { quarantine: death.kind !== 'deadline' }, {
          name: 'InternalError',
          message: `the executor running the job died (${describeDeath(death)})`,
          code: POOL_ERROR_CODES.EXECUTOR_DIED,
        }, { pid, wallTimeMs });
      }
    }
    if (this.#startFailures >= START_FAILURES_BEFORE_GIVING_UP && !this.#executors.some((each) => each.state === 'ready')) {
      this.#answerWaitingJobs('internal_error', {
        name: 'InternalError',
        message: `executors keep failing to start (${this.#startFailures} in a row)`,
        code: POOL_ERROR_CODES.EXECUTOR_UNAVAILABLE,
      });
    }
    this.#pump();
  }

  #answerWaitingJobs(status: 'internal_error', error: ResultError): void {
    for (const queue of [this.#quarantine, this.#queue]) {
      for (const job of queue.drain()) this.#settle(job, this.#pipeline.withoutRun(status, job, error));
    }
  }

  /** Every SAMPLE_MS: each live executor judged from outside (src/pool-health.ts). */
  #sample(): void {
    const now = Date.now();
    // This timer came late: the pool's event loop was held (the caller's own work, a long GC), and
    // answers that came meanwhile are still unread. That time is not held against running jobs.
    const stalledMs = this.#lastSampleAt === 0 ? 0 : now - this.#lastSampleAt - SAMPLE_MS;
    this.#lastSampleAt = now;
    const executors =
      this.#retiring.size === 0 && this.#standby.length === 0 ? this.#executors : [...this.#executors, ...this.#retiring, ...this.#standby];
    if (stalledMs > STALL_TOLERANCE_MS) {
      for (const executor of executors) for (const job of executor.jobs.values()) if (job.runningSince !== 0) job.stalledMs += stalledMs;
    }
    for (const executor of executors) {
      if (executor.state === 'dead') continue;
      const retiring = this.#retiring.has(executor);
      const death = judgeExecutor(executor, now, this.#options, !retiring);
      if (death !== undefined) this.#kill(executor, death);
      else if (!retiring && executor.state === 'ready' && this.#overRecycleMark(executor)) {
        this.#retire(executor, `resident memory ${Math.round(executor.residentMb ?? 0)} MiB over ${this.#options.recycleAboveMb} MiB`, true);
        this.#reapRetired(executor);
      }
    }
  }

  /**
   * Lets accepted jobs finish for up to `deadlineMs` (retries and replacements included; past a
   * timer's range, such as Infinity, for as long as they take), answers what is left
   * internal_error POOL_CLOSED, then stops every executor and waits for it to exit.
   */
  async shutdown(deadlineMs: number): Promise<void> {
    this.#draining = true;
    if (this.#queued + this.#inFlight > 0 && deadlineMs > 0) {
      this.#drained = Promise.withResolvers<void>();
      await settledWithin(this.#drained.promise, deadlineMs);
    }
    this.#stopping = true;
    this.#answerWaitingJobs('internal_error', closedError());
    const executors = [...this.#executors, ...this.#retiring, ...this.#standby];
    this.#standby = [];
    const now = Date.now();
    for (const executor of executors) {
      for (const job of [...executor.jobs.values()]) {
        const ran = job.runningSince === 0 ? {} : { wallTimeMs: now - job.runningSince };
        this.#detach(job);
        this.#settle(job, this.#pipeline.withoutRun('internal_error', job, closedError(), { pid: executor.process.pid, ...ran }));
      }
    }
    clearInterval(this.#sampler);
    for (const timer of [...this.#respawns, ...this.#standbyRespawns]) clearTimeout(timer);
    this.#respawns.clear();
    this.#standbyRespawns.clear();
    await Promise.all(executors.map((executor) => this.#stop(executor)));
  }

  async #stop(executor: Executor): Promise<void> {
    executor.process.setReferenced(true);
    if (executor.state !== 'dead') {
      this.#bury(executor, { kind: 'shutdown' });
      executor.process.shutdown();
      let timer: NodeJS.Timeout | undefined;
      const gone = await Promise.race([
        executor.process.exited.then(() => true),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(resolve, SHUTDOWN_GRACE_MS, false);
        }),
      ]);
      clearTimeout(timer);
      if (!gone) executor.process.kill();
    }
    await executor.process.exited;
  }
}

function memoryError(message: string): ResultError {
  return { name: 'MemoryLimitError', message };
}

function timeoutError(job: Job): ResultError {
  return {
    name: 'TimeoutError',
    message: `Script ran past its ${job.limits.timeoutMs} ms wall-clock limit and its executor was killed`,
    limit: 'wall',
  };
}
