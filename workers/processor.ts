// The job processor: runs in the worker process (workers/main.ts hands it to the BullMQ Worker).
// job.data → re-validate → cancel mark / queue deadline → pool.execute → Result; one log line per job.
// User code never runs here: the pool's supervised executor processes run it, so this event loop
// stays free to renew job locks.
import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Limits } from '../src/limits.ts';
import {
  codeHash,
  limitsOf,
  queueTimeoutResult,
  rejectedResult,
  tenantOf,
  type QueueKeys,
} from '../src/queue.ts';
import { parseRequest } from '../src/request.ts';
import type { Result } from '../src/result.ts';

/** What the processor needs of the engine: `createPool()`'s execute, which always resolves with a Result. */
export interface Executor {
  execute(
    request: unknown,
    options?: { signal?: AbortSignal; id?: string; acceptedAt?: number; attempt?: number },
  ): Promise<Result>;
}

/** Thrown to make BullMQ retry: the infrastructure failed and tries remain. */
export class InfrastructureError extends Error {
  override name = 'InfrastructureError';
}

/** Observes every finished job (metrics). */
export type JobObserver = (result: Result, job: { tenantId: string }) => void;

export interface ProcessorOptions {
  pool: Executor;
  /** Commands connection: cancel marks and the tenants' waiting sets. */
  redis: Redis;
  keys: QueueKeys;
  logger: Logger;
  /** The worker's ceilings and defaults, for Results of jobs that never reach the pool. */
  ceilings?: Readonly<Limits>;
  defaults?: Readonly<Limits>;
  observe?: JobObserver;
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
}

export function createProcessor(options: ProcessorOptions): Processor {
  const { pool, redis, keys, logger, ceilings, defaults, observe } = options;
  const active = new Map<string, Job>();
  const handingBack = new Set<string>();

  const processor = async (job: Job, token?: string, signal?: AbortSignal): Promise<Result> => {
    const id = job.id ?? '';
    active.set(id, job);
    const attempt = job.attemptsMade + 1;
    const parsed = parseRequest(job.data);
    const tenantId = parsed.ok ? parsed.request.tenantId : tenantOf(job.data);
    let result: Result;
    // The job leaves its tenant's waiting count and its cancel mark is read in one round trip that
    // runs beside the job rather than before it: a mark found (cancelled while it was being taken)
    // stops the run; a cancel after that arrives through the cancel channel as `signal`.
    const stop = new AbortController();
    const forward = () => stop.abort(signal?.reason);
    if (signal?.aborted) forward();
    else signal?.addEventListener('abort', forward, { once: true });
    let mark: Result | undefined;
    const bookkeeping = redis
      .multi()
      .zrem(keys.tenantQueued(tenantId), id)
      .get(keys.cancelled(id))
      .exec()
      .then(
        (replies) => {
          const value = replies?.[1]?.[1];
          if (typeof value !== 'string') return;
          mark = readMark(value);
          stop.abort('cancelled');
        },
        (error: unknown) => {
          // Only bookkeeping: the tenant's count ages out, a cancel still arrives on the channel.
          logger.warn({ jobId: id, err: (error as Error)?.message }, 'job bookkeeping failed');
        },
      );
    try {
      if (!parsed.ok) {
        // A producer that is not sandpool's client sent something malformed: a Result, not a retry.
        result = rejectedResult(parsed.issues, limitsOf(job.data, ceilings, defaults));
      } else {
        const request = parsed.request;
        const waitedMs = Date.now() - job.timestamp;
        if (request.queueTimeoutMs !== undefined && waitedMs > request.queueTimeoutMs) {
          result = queueTimeoutResult(limitsOf(request, ceilings, defaults), waitedMs, request.queueTimeoutMs);
        } else {
          result = await pool.execute(request, {
            signal: stop.signal,
            id,
            // Queue wait covers the time in Redis, from the producer's add.
            acceptedAt: job.timestamp,
            attempt,
          });
        }
      }
      // A job faster than the round trip does not wait for it, unless it ended cancelled and the
      // mark may be why.
      if (result.status === 'cancelled') await bookkeeping;
      if (mark && result.status === 'cancelled') result = mark;
    } catch (cause) {
      active.delete(id);
      // Redis or the pool itself failed (pool.execute resolves for everything a snippet does).
      throw new InfrastructureError(`job ${id}: ${(cause as Error)?.message ?? cause}`, { cause });
    }
    active.delete(id);
    signal?.removeEventListener('abort', forward);

    // Only a run the shutdown actually stopped goes back; one that finished anyway keeps its Result.
    if (handingBack.delete(id) && result.status === 'cancelled' && token !== undefined) {
      // Shutdown past its grace: the run was stopped for us, not by the caller. Back to the queue.
      await job.moveToWait(token);
      logger.info({ jobId: id, tenantId }, 'job handed back');
      throw handedBack();
    }

    result = { ...result, id };
    const tries = job.opts.attempts ?? 1;
    const retry = result.status === 'internal_error' && attempt < tries;
    // Written on the next turn of the event loop: BullMQ sends the job's completion to Redis first,
    // so the caller's round trip does not include the log write (a synchronous write to a pipe).
    const finished = result;
    setImmediate(() => logLine(logger, job, tenantId, finished, retry));
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
  });
}

/** The one line per job: who, which code (hash only), what happened, what it cost. */
function logLine(logger: Logger, job: Job, tenantId: string, result: Result, retrying: boolean): void {
  const data = job.data as { code?: unknown; tool?: unknown } | undefined;
  const code = typeof data?.code === 'string' ? data.code : undefined;
  const m = result.metrics;
  logger.info(
    {
      jobId: job.id,
      tenantId,
      codeHash: codeHash(code),
      ...(typeof data?.tool === 'string' ? { tool: data.tool } : {}),
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
