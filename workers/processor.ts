// The job processor: runs in the worker process (workers/main.ts hands it to the BullMQ Worker).
// job.data → re-validate → queue deadline → pool.execute (stopped by a cancel) → Result; one log
// line per job, written once BullMQ has recorded how the attempt ended (see `recorded`).
// User code never runs here: the pool's supervised executor processes run it, so this event loop
// stays free to renew job locks.
import type { Job } from 'bullmq';
import { setTimeout as pause } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Limits } from '../src/limits.ts';
import {
  cancelledResult,
  codeHash,
  limitsOf,
  queueTimeoutResult,
  rejectedResult,
  tenantOf,
  type QueueKeys,
} from '../src/queue.ts';
import { parseRequest, type ParseRequestResult, type Request } from '../src/request.ts';
import { MAX_READ_DATA_MS, readDataOnThread } from '../src/prepare-threads.ts';
import type { Result } from '../src/result.ts';

/** What the processor needs of the engine: `createPool()`'s execute, which always resolves with a Result. */
export interface Executor {
  execute(request: unknown, options?: ExecuteOptions): Promise<Result>;
  /** When there (createPool's pool), the request the processor validated is not validated again. */
  executeValidated?(request: Request, options?: ExecuteOptions): Promise<Result>;
}

type ExecuteOptions = { signal?: AbortSignal; id?: string; acceptedAt?: number; attempt?: number };

/** Thrown to make BullMQ retry: the infrastructure failed and tries remain. */
export class InfrastructureError extends Error {
  override name = 'InfrastructureError';
}

/** Observes every finished job (metrics). */
export type JobObserver = (result: Result, job: { tenantId: string }) => void;

export interface ProcessorOptions {
  pool: Executor;
  /** Commands connection: cancel marks. */
  redis: Redis;
  keys: QueueKeys;
  /** The Redis key of a job's hash: where an unreadable attempt counter is reset (see below). */
  jobKey?: (id: string) => string;
  logger: Logger;
  /** The worker's ceilings and defaults, for Results of jobs that never reach the pool. */
  ceilings?: Readonly<Limits>;
  defaults?: Readonly<Limits>;
  observe?: JobObserver;
}

/** A job a full pool turned away, as untilTaken offers it again. */
interface PoolWait {
  id: string;
  tenantId: string;
  request: Request;
  acceptedAt: number;
  stop: AbortController;
  execute: () => Promise<Result>;
}

export interface Processor {
  (job: Job, token?: string, signal?: AbortSignal): Promise<Result>;
  /** Jobs running now, by id. */
  readonly active: ReadonlyMap<string, Job>;
  /**
   * Stops the given running jobs and gives them back to the queue (shutdown past its grace):
   * another worker takes them, their attempts untouched.
   */
  handBack(ids: Iterable<string>, cancelJob: (id: string) => void): void;
  /**
   * The worker is shutting down: jobs waiting for a full pool, which have run nothing, go back to
   * the queue at once, now and for any that comes to wait from here on, rather than at the grace's end.
   */
  drain(): void;
  /** A cancel for a job this worker is not running (yet): a run of it that starts soon is stopped. */
  noteCancel(id: string): void;
  /**
   * Writes the job's `job finished` line: call it from the BullMQ Worker's `completed` and `failed`
   * events, once Redis has taken the attempt's end. An attempt whose end Redis refused (the lock
   * was lost: the job runs again) gets no line, so that no line claims a Result nobody received.
   */
  recorded(job: Job): void;
}

/** job.data of a job whose stored data is not JSON (see SandpoolWorker in main.ts). */
export const UNREADABLE_DATA: Readonly<Record<string, never>> = Object.freeze({});

/** job.data of a job whose stored data was too long to parse (see SandpoolWorker in main.ts): why. */
export class UnreadData {
  readonly message: string;
  constructor(message: string) {
    this.message = message;
    Object.freeze(this);
  }
}

/** job.data of a job whose stored data is read on a thread when it runs (see SandpoolWorker in main.ts). */
export class DeferredData {
  readonly text: string;
  /** The most characters it may take with its escapes undone. */
  readonly maxChars: number;
  constructor(text: string, maxChars: number) {
    this.text = text;
    this.maxChars = maxChars;
    Object.freeze(this);
  }
}

/** Deferred data read on a thread: the data, or why it was not read (UnreadData, UNREADABLE_DATA). */
async function readDeferred({ text, maxChars }: DeferredData, logger: Logger): Promise<unknown> {
  let read: Awaited<ReturnType<typeof readDataOnThread>>;
  try {
    read = await readDataOnThread(text, maxChars);
  } catch (error) {
    // The thread itself failed (its heap, say): a Result all the same, not a retry that fails again.
    logger.warn({ err: (error as Error)?.message }, "reading a job's data on a thread failed");
    return new UnreadData(`the job's data (${text.length} characters of JSON) could not be read`);
  }
  if (read.ok) return JSON.parse(read.text);
  if ('overran' in read) return new UnreadData(`the job's data (${text.length} characters of JSON) took longer than ${MAX_READ_DATA_MS / 1000} s to read`);
  if ('unreadable' in read) return UNREADABLE_DATA;
  return new UnreadData(
    `the job's data is ${read.chars} characters of JSON with its escapes undone (${text.length} as written), more than the ${maxChars} this worker reads`,
  );
}

/** The validation issue of data that could not be read, or undefined for data that was. */
function unreadIssue(data: unknown): { field: string; message: string } | undefined {
  if (data === UNREADABLE_DATA) return { field: '(root)', message: "the job's data in Redis is not JSON" };
  if (data instanceof UnreadData) return { field: '(root)', message: data.message };
  return undefined;
}

/** A job still running this long after it started reads its cancel mark, */
const MARK_CHECK_MS = 5;
/** and again this often while it runs. */
const MARK_RECHECK_MS = 1_000;
/** How long a cancel for a job not running here is remembered, and how many at most. */
const PENDING_CANCEL_MS = 60_000;
const PENDING_CANCEL_MAX = 10_000;
/**
 * Ids longer than this are not remembered (anyone who can publish on the channel could otherwise
 * park 10,000 huge strings here); a cancel of such a job still stops it while it runs here.
 */
const PENDING_CANCEL_ID_CHARS = 512;
/** More attempts than this were never made: a larger count was written by hand. */
const MAX_ATTEMPTS_MADE = 999_999_999;
/** A job a full pool turned away is offered again after this, doubling up to POOL_FULL_MAX_PAUSE_MS. */
const POOL_FULL_FIRST_PAUSE_MS = 25;
const POOL_FULL_MAX_PAUSE_MS = 1_000;
/** A producer's job timestamp before this (2001-01-01) is not believed; nor one in the future. */
const EARLIEST_TIMESTAMP_MS = 978_307_200_000;

/**
 * Cancels that came over the channel for jobs this worker was not running. Every worker hears
 * every cancel, so this is bounded in time and size; it only has to bridge the moment between
 * BullMQ taking a job and the processor starting it.
 */
class PendingCancels {
  readonly #until = new Map<string, number>();

  note(id: string): void {
    if (id.length > PENDING_CANCEL_ID_CHARS) return;
    const now = Date.now();
    for (const [oldest, until] of this.#until) {
      if (until > now && this.#until.size < PENDING_CANCEL_MAX) break;
      this.#until.delete(oldest);
    }
    this.#until.delete(id);
    this.#until.set(id, now + PENDING_CANCEL_MS);
  }

  take(id: string): boolean {
    const until = this.#until.get(id);
    if (until === undefined) return false;
    this.#until.delete(id);
    return until > Date.now();
  }
}

export function createProcessor(options: ProcessorOptions): Processor {
  const { pool, redis, keys, jobKey, logger, ceilings, defaults, observe } = options;
  const active = new Map<string, Job>();
  const handingBack = new Set<string>();
  /** Jobs waiting for a full pool, with what stops each. */
  const waitingForPool = new Map<string, AbortController>();
  let draining = false;
  const handBackWaiting = (id: string, stop: AbortController) => {
    handingBack.add(id);
    stop.abort('shutdown');
  };

  /**
   * A pool given to the worker and shared with other callers may be full (the worker's own has
   * room for its concurrency, save thread work of cancelled jobs running out): nothing of the job
   * ran. It waits here, its lock kept and renewed, and is offered again (after POOL_FULL_FIRST_PAUSE_MS,
   * doubling to POOL_FULL_MAX_PAUSE_MS) until the pool takes it, a cancel or the shutdown stops it
   * (the pool then answers cancelled), or its queue deadline passes.
   */
  async function untilTaken(first: Result, waiting: PoolWait): Promise<Result> {
    const { id, tenantId, request, acceptedAt, stop, execute } = waiting;
    logger.warn({ jobId: loggedJobId(id), tenantId }, 'job waiting: the pool is full');
    waitingForPool.set(id, stop);
    if (draining) handBackWaiting(id, stop);
    let result = first;
    try {
      for (let pauseMs = POOL_FULL_FIRST_PAUSE_MS; rejectedFor(result, 'pool_full'); pauseMs = Math.min(2 * pauseMs, POOL_FULL_MAX_PAUSE_MS)) {
        const queueLeftMs = request.queueTimeoutMs === undefined ? Infinity : request.queueTimeoutMs - (Date.now() - acceptedAt) + 1;
        await pause(Math.max(0, Math.min(pauseMs, queueLeftMs)), undefined, { signal: stop.signal }).catch(() => undefined);
        const waitedMs = Date.now() - acceptedAt;
        if (stop.signal.aborted) {
          // Stopped: the pool answers cancelled; an engine that still answers full is not asked again.
          result = await execute();
          if (rejectedFor(result, 'pool_full')) result = cancelledResult(limitsOf(request, ceilings, defaults));
        } else if (request.queueTimeoutMs !== undefined && waitedMs > request.queueTimeoutMs) {
          result = queueTimeoutResult(limitsOf(request, ceilings, defaults), waitedMs, request.queueTimeoutMs);
        } else {
          result = await execute();
        }
      }
      return result;
    } finally {
      waitingForPool.delete(id);
    }
  }
  const pendingCancels = new PendingCancels();
  /** Each attempt's line, from the processor's return to BullMQ's event; dropped with the job. */
  const unrecorded = new WeakMap<Job, () => void>();

  const processor = async (job: Job, token?: string, signal?: AbortSignal): Promise<Result> => {
    const id = job.id ?? '';
    active.set(id, job);
    let made = job.attemptsMade;
    if (!Number.isSafeInteger(made) || made < 0 || made > MAX_ATTEMPTS_MADE) {
      // Written by hand: BullMQ's own count of this attempt (HINCRBY) would fail half-way through
      // moving the job to completed or failed, leaving it in no list at all: lost. Reset first.
      made = 0;
      // Redis away: the completion fails as well, and the job comes back through its stall.
      if (jobKey !== undefined) await redis.hset(jobKey(id), 'atm', '0').catch(() => undefined);
    }
    const attempt = made + 1;
    // Read now, off the event loop; the job's lock is renewed meanwhile.
    if (job.data instanceof DeferredData) job.data = await readDeferred(job.data, logger);
    const unread = unreadIssue(job.data);
    const parsed: ParseRequestResult = unread ? { ok: false, issues: [unread] } : parseRequest(job.data);
    const tenantId = parsed.ok ? parsed.request.tenantId : tenantOf(job.data);
    let result: Result;
    // A cancel that raced the take: the client marks the job, publishes its id and fails to
    // remove it, because this worker holds it. The id arrives on the channel after the run began
    // (as `signal`) or before (noted in `pendingCancels`). A subscriber that was reconnecting
    // misses both (and a worker drops channel messages under a flood): a job still running after
    // MARK_CHECK_MS reads its mark, and again every MARK_RECHECK_MS while it runs. Nothing else
    // about the job goes to Redis from here: a round trip per job was a sixth of the queue's
    // own latency (tenants' counts are kept by the client's admission, see queue-admission.ts).
    const stop = new AbortController();
    const forward = () => stop.abort(signal?.reason);
    if (signal?.aborted) forward();
    else signal?.addEventListener('abort', forward, { once: true });
    let mark: Result | undefined;
    if (pendingCancels.take(id)) {
      // Only a cancel whose mark is there: a new job admitted under the id of a cancelled one
      // (an idempotency key submitted again) had its mark deleted, and a note anyone on the channel
      // can forge is no cancel by itself. Redis unreachable: cancelled, as the note says.
      const value = await redis.get(keys.cancelled(id)).catch(() => 'unreadable');
      if (value !== null) {
        mark = value === 'unreadable' ? undefined : readMark(value);
        stop.abort('cancelled');
      }
    }
    let markRead: Promise<void> | undefined;
    let ran = false;
    let markFailed = false;
    const readMarkNow = () => {
      markRead = redis.get(keys.cancelled(id)).then(
        (value) => {
          if (typeof value === 'string') {
            mark = readMark(value);
            stop.abort('cancelled');
          } else if (!ran) {
            markTimer = setTimeout(readMarkNow, MARK_RECHECK_MS);
          }
        },
        (error: unknown) => {
          // A cancel still arrives on the channel; the next read may succeed. Said once per job.
          if (!markFailed) logger.warn({ jobId: loggedJobId(id), err: (error as Error)?.message }, 'reading the cancel mark failed');
          markFailed = true;
          if (!ran) markTimer = setTimeout(readMarkNow, MARK_RECHECK_MS);
        },
      );
    };
    let markTimer = setTimeout(readMarkNow, MARK_CHECK_MS);
    try {
      if (!parsed.ok) {
        // A producer that is not sandpool's client sent something malformed: a Result, not a retry.
        result = rejectedResult(parsed.issues, limitsOf(job.data, ceilings, defaults));
      } else {
        const request = parsed.request;
        const acceptedAt = acceptedAtOf(job);
        const waitedMs = Date.now() - acceptedAt;
        if (request.queueTimeoutMs !== undefined && waitedMs > request.queueTimeoutMs) {
          result = queueTimeoutResult(limitsOf(request, ceilings, defaults), waitedMs, request.queueTimeoutMs);
        } else {
          // Queue wait covers the time in Redis, from the producer's add.
          const run = { signal: stop.signal, id, acceptedAt, attempt };
          const execute = () => (pool.executeValidated ? pool.executeValidated(request, run) : pool.execute(request, run));
          result = await execute();
          if (rejectedFor(result, 'pool_full')) result = await untilTaken(result, { id, tenantId, request, acceptedAt, stop, execute });
        }
      }
      ran = true;
      clearTimeout(markTimer);
      // A job that ended cancelled while its mark was being read may have ended for that mark.
      if (result.status === 'cancelled') await markRead;
      // The mark's Result (the canceller's) speaks only for a run the pool never started: one that
      // ran keeps the pool's own, with its output so far, its metrics and where it ran.
      if (mark && result.status === 'cancelled' && !(result.metrics.wallTimeMs > 0)) result = mark;
    } catch (cause) {
      ran = true;
      clearTimeout(markTimer);
      active.delete(id);
      handingBack.delete(id);
      // Redis or the pool itself failed (pool.execute resolves for everything a snippet does).
      throw new InfrastructureError(`job ${id}: ${(cause as Error)?.message ?? cause}`, { cause });
    }
    active.delete(id);
    signal?.removeEventListener('abort', forward);

    // Only a run the shutdown actually stopped goes back; one that finished anyway keeps its Result.
    if (handingBack.delete(id) && result.status === 'cancelled' && token !== undefined) {
      // Shutdown past its grace: the run was stopped for us, not by the caller. Back to the queue.
      await job.moveToWait(token);
      logger.info({ jobId: loggedJobId(id), tenantId }, 'job handed back');
      throw handedBack();
    }

    // The pool's Results carry the id already; the processor's own ones (deadline, mark) may not.
    if (result.id !== id) result = { ...result, id };
    const tries = job.opts.attempts ?? 1;
    const retry = result.status === 'internal_error' && attempt < tries;
    // Written once BullMQ has recorded the attempt's end (recorded()), which is also after the
    // caller's round trip: the log write (a synchronous write to a pipe) is not on it.
    const finished = result;
    // Only a tool that exists: an unknown name is whatever the producer wrote.
    const tool = parsed.ok && !rejectedFor(result, 'unknown_tool') ? parsed.request.tool : undefined;
    unrecorded.set(job, () => logLine(logger, job, tenantId, tool, finished, retry));
    if (retry) {
      throw new InfrastructureError(result.error?.message ?? 'the engine failed');
    }
    observe?.(result, { tenantId });
    return result;
  };

  return Object.assign(processor, {
    active,
    handBack(ids: Iterable<string>, cancelJob: (id: string) => void) {
      for (const id of ids) {
        handingBack.add(id);
        cancelJob(id);
      }
    },
    drain() {
      draining = true;
      for (const [id, stop] of waitingForPool) handBackWaiting(id, stop);
    },
    noteCancel(id: string) {
      pendingCancels.note(id);
    },
    recorded(job: Job) {
      const line = unrecorded.get(job);
      unrecorded.delete(job);
      // On the next turn: BullMQ goes on to fetch the next job first (the write is synchronous).
      if (line !== undefined) setImmediate(line);
    },
  });
}

/**
 * When the job was added, from the producer's own timestamp (BullMQ's `timestamp`, epoch ms): a
 * raw producer may send anything there, and one that is not a time now or in the past is read as
 * now, so that it can neither fail the job nor pour years of queue wait into the metrics.
 */
function acceptedAtOf(job: Job): number {
  const now = Date.now();
  const stamp: unknown = job.timestamp;
  return typeof stamp === 'number' && Number.isFinite(stamp) && stamp >= EARLIEST_TIMESTAMP_MS ? Math.min(stamp, now) : now;
}

/** The one line per job: who, which code (hash only), which tool (a validated name), what happened, what it cost. */
function logLine(logger: Logger, job: Job, tenantId: string, tool: string | undefined, result: Result, retrying: boolean): void {
  const data = job.data as { code?: unknown } | undefined;
  const code = typeof data?.code === 'string' ? data.code : undefined;
  const m = result.metrics;
  logger.info(
    {
      jobId: loggedJobId(job.id),
      tenantId,
      codeHash: codeHash(code),
      ...(tool !== undefined ? { tool } : {}),
      status: result.status,
      ...(result.error?.limit ? { limit: result.error.limit } : {}),
      ...(result.rejection ? { rules: result.rejection.reasons.map((r) => r.rule) } : {}),
      attempt: m.attempt,
      retrying,
      queueWaitMs: m.queueWaitMs,
      setupMs: m.setupMs,
      wallTimeMs: m.wallTimeMs,
      cpuTimeMs: m.cpuTimeMs,
      heapUsedBytes: m.heapUsedBytes,
      stdoutBytes: m.stdoutBytes,
      stderrBytes: m.stderrBytes,
    },
    'job finished',
  );
}

/** A cancel mark's Result; a mark that is not one still cancels, with the pool's own Result. */
function readMark(text: string): Result | undefined {
  try {
    const result = (JSON.parse(text) as { result?: unknown } | null)?.result;
    return typeof result === 'object' && result !== null && (result as Result).status === 'cancelled' ? (result as Result) : undefined;
  } catch {
    return undefined;
  }
}

/** BullMQ recognises a moved-to-wait job by this error name (its WaitingError), whatever the class. */
function handedBack(): Error {
  const error = new Error('job handed back to the queue at shutdown');
  error.name = 'WaitingError';
  return error;
}

/** Whether the Result is a rejection for `rule`. */
function rejectedFor(result: Result, rule: string): boolean {
  return result.status === 'rejected' && (result.rejection?.reasons ?? []).some((reason) => reason.rule === rule);
}

/** Longest job id logged as it is: a producer picks its own ids, of any length (20 KB seen). */
const MAX_LOGGED_JOB_ID_CHARS = 128;

/** A job id fit for a log line: as it is, or cut with its length said. */
export function loggedJobId(id: string | undefined): string | undefined {
  if (id === undefined || id.length <= MAX_LOGGED_JOB_ID_CHARS) return id;
  return `${id.slice(0, 64)}…(${id.length} characters)`;
}

/** Longest error message logged as it is: BullMQ's name the job id, which a producer picks. */
const MAX_LOGGED_MESSAGE_CHARS = 512;

/** An error message fit for a log line: as it is, or cut with its length said. */
export function loggedMessage(message: string): string {
  if (message.length <= MAX_LOGGED_MESSAGE_CHARS) return message;
  return `${message.slice(0, MAX_LOGGED_MESSAGE_CHARS)}…(${message.length} characters)`;
}

/**
 * The audit line of a job BullMQ failed for good (its attempts spent, or stalled past the limit),
 * which no processor run wrote: its caller gets `internal_error`. The same fields as a finished
 * job's, so that every job ends in one line with its tenant, code hash and status.
 */
export function logTerminalFailure(logger: Logger, job: Job, error: Error): void {
  const attempts = job.opts.attempts ?? 1;
  const stalledOut = /stalled more than allowable limit/.test(error.message);
  if (!stalledOut && job.attemptsMade < attempts) return;
  const data = job.data as { code?: unknown; tool?: unknown } | undefined;
  logger.info(
    {
      jobId: loggedJobId(job.id),
      tenantId: tenantOf(job.data),
      codeHash: codeHash(typeof data?.code === 'string' ? data.code : undefined),
      status: 'internal_error',
      attempt: job.attemptsMade,
      retrying: false,
      cause: stalledOut ? 'stalled past the limit' : 'attempts spent',
    },
    'job finished',
  );
}
