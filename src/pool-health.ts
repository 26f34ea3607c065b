// Runs in the caller's process, under the supervisor, every SAMPLE_MS: judges each executor from
// outside — started in time, resident memory under its ceiling, no job past the pool's deadline, no
// CPU burnt while it holds no job. Reads /proc through ExecutorProcess; decides, never kills.
import type { ExecutorProcess, ExecutorExit } from './pool-executor.ts';
import type { CompiledPoolOptions } from './pool-options.ts';
import type { Job } from './pool-queue.ts';

/** How often executors' RSS and the pool's deadlines are checked. */
export const SAMPLE_MS = 100;
/** A sample later than SAMPLE_MS by more than this was held up by the pool's own event loop. */
export const STALL_TOLERANCE_MS = 50;
/**
 * The most a job's deadline moves for the pool's own stalls. A loop that is slow but yields reads
 * answers in its gaps, so its lateness is only partly time answers sat unread; uncapped, it held
 * off the backstop against a wedged executor for minutes.
 */
export const MAX_STALL_CREDIT_MS = 10_000;
/** An executor not ready this long after its spawn is killed (a cold start loads isolated-vm). */
const READY_TIMEOUT_MS = 30_000;
// An executor with no job that burns more than a quarter of a core over the window is wedged: a ghost
// on a machine shared with busier processes may get little more, while an idle executor's own work
// (refilling spare isolates, GC) stays far below it.
const IDLE_SPIN_WINDOW_MS = 2_000;
const IDLE_SPIN_CPU_SHARE = 0.25;
/** A young executor is still loading isolated-vm and preparing spares: not judged before this. */
const IDLE_SPIN_AFTER_SPAWN_MS = 5_000;

/** Why an executor ended: what its jobs are answered by, and what the logs say. */
export type Death =
  | { kind: 'memory'; residentMb: number }
  | { kind: 'oom' }
  | { kind: 'deadline'; culprits: ReadonlySet<Job> }
  | { kind: 'idle_spin' }
  | { kind: 'start_timeout' }
  | { kind: 'crash'; exit: ExecutorExit }
  /** Exited by itself before `ready`: its last stderr line says why (bad flags, missing files). */
  | { kind: 'start_failed'; exit: ExecutorExit }
  | { kind: 'retired' }
  | { kind: 'shutdown' };

/** The supervisor's record of one executor process. */
/**
 * What Promise.withResolvers() returns, named here: the lib type (ES2024) in a published
 * declaration would make a consumer compiling against an older lib fail to type-check.
 */
export interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T | PromiseLike<T>): void;
  reject(reason?: unknown): void;
}

export interface Executor {
  index: number;
  process: ExecutorProcess;
  state: 'starting' | 'ready' | 'dead';
  jobs: Map<string, Job>;
  running: number;
  /** Running a quarantined job: nothing else may join it. */
  exclusive: boolean;
  spawnedAt: number;
  idleMark: { at: number; cpuSeconds: number } | undefined;
  /** performance.now() when it last answered its last job in hand (0: never ran one). */
  idleSince: number;
  /** Jobs it answered (see recycleAfterJobs). */
  jobsDone: number;
  /** Its resident memory at the last sample, in MiB (undefined: not read, or not on Linux). */
  residentMb: number | undefined;
  /** Its resident memory at its first sample once ready: what it weighs before any job's leftovers. */
  baselineMb: number | undefined;
  started: Deferred<void>;
}

/**
 * What should become of a live executor now, judged from outside: a Death to kill it for, or
 * undefined. `judgeIdleCpu`: whether CPU burnt with no job counts against it (a retiring executor
 * is already on its way out).
 */
export function judgeExecutor(
  executor: Executor,
  now: number,
  options: Pick<CompiledPoolOptions, 'executorMemoryMb' | 'poolGraceMs'>,
  judgeIdleCpu: boolean,
): Death | undefined {
  if (executor.state === 'starting' && now - executor.spawnedAt > READY_TIMEOUT_MS) return { kind: 'start_timeout' };
  const residentMb = executor.process.residentMb();
  executor.residentMb = residentMb;
  if (executor.state === 'ready' && executor.baselineMb === undefined) executor.baselineMb = residentMb;
  if (residentMb !== undefined && residentMb > options.executorMemoryMb) return { kind: 'memory', residentMb };
  if (executor.jobs.size > 0) {
    let culprits: Set<Job> | undefined;
    for (const job of executor.jobs.values()) {
      const credit = Math.min(job.stalledMs, MAX_STALL_CREDIT_MS);
      if (job.runningSince !== 0 && now > job.runningSince + credit + job.limits.timeoutMs + options.poolGraceMs) {
        (culprits ??= new Set()).add(job);
      }
    }
    return culprits === undefined ? undefined : { kind: 'deadline', culprits };
  }
  if (executor.state === 'ready' && judgeIdleCpu) return judgeIdleSpin(executor, now);
  return undefined;
}

/** An isolate that keeps running after its job was answered shows up as CPU burnt while idle. */
function judgeIdleSpin(executor: Executor, now: number): Death | undefined {
  if (now - executor.spawnedAt < IDLE_SPIN_AFTER_SPAWN_MS) return undefined;
  const mark = executor.idleMark;
  if (mark !== undefined && now - mark.at < IDLE_SPIN_WINDOW_MS) return undefined;
  const cpuSeconds = executor.process.cpuSeconds();
  if (cpuSeconds === undefined) return undefined;
  if (mark !== undefined && (cpuSeconds - mark.cpuSeconds) * 1000 > (now - mark.at) * IDLE_SPIN_CPU_SHARE) {
    return { kind: 'idle_spin' };
  }
  executor.idleMark = { at: now, cpuSeconds };
  return undefined;
}

export function describeDeath(death: Death): string {
  switch (death.kind) {
    case 'memory':
      return `resident memory ${Math.round(death.residentMb)} MiB over the ceiling`;
    case 'oom':
      return 'V8 fatal out-of-memory';
    case 'deadline':
      return 'a job overran its deadline';
    case 'idle_spin':
      return 'burning CPU with no job';
    case 'start_timeout':
      return 'not ready in time';
    case 'crash':
      return death.exit.signal !== null ? `signal ${death.exit.signal}` : `exit code ${String(death.exit.code)}`;
    case 'start_failed':
      return `it could not start (exit code ${String(death.exit.code)}): ${death.exit.lastWords}`;
    case 'retired':
      return 'retired: an isolate would not stop';
    case 'shutdown':
      return 'shut down';
  }
}
