// createClient(): submit / execute / getResult / cancel over BullMQ. Runs in the caller's process;
// the only bullmq import on the client side. Requests are validated here, before Redis sees them.
import { randomUUID } from 'node:crypto';
import { Job, Queue, QueueEvents } from 'bullmq';
import type { Redis } from 'ioredis';
import { DEFAULT_LIMITS, type Limits, type SizeLimits } from './limits.ts';
import { TENANT_ID_PATTERN, parseRequest, type Request, type RequestInput, type RequestIssue } from './request.ts';
import { requestPrescreen, type PrescreenOptions, type PrescreenReport } from './prescreen.ts';
import { MAX_STRIP_MS, screenCode, stripTypesWithin, type BoundedStripResult } from './prepare-threads.ts';
import { ScreenCache, stripCache, type CodeCache, type TimedStrip } from './code-cache.ts';
import { checkSizes } from './pool-job.ts';
import { defineRemoveWaiting, type WaitingRemoval } from './queue-cancel.ts';
import { CLIENT_DEFAULTS, compileClientOptions, type CompiledClientOptions } from './client-options.ts';
import { MAX_TIMER_MS, refuseUnknownCallOptions } from './options.ts';
import { resultWithoutRun, type RejectionReason, type Result } from './result.ts';
import {
  createAdmission,
  submitTransactions,
  type Admission,
  type BullConnection,
  type CountedTransaction,
  type SubmitTransactions,
} from './queue-admission.ts';
import {
  CANCEL_MARK_TTL_SECONDS,
  boundedBy,
  checkDatabase,
  DEFAULT_PREFIX,
  DEFAULT_QUEUE,
  JOB_NAME,
  BULLMQ_KEY_TYPES,
  MAX_CANCEL_ID_CHARS,
  QueueError,
  bullConnection,
  cancelledResult,
  createRedis,
  withRedisCause,
  idempotentJobId,
  internalErrorResult,
  limitsOf,
  queueKeys,
  rejectedResult,
  thisWorker,
  type Connection,
  type QueueKeys,
} from './queue.ts';


/** When to read the job directly while waiting, in case an event was missed (ms after submit). */
const FALLBACK_READS_MS = [1_000, 3_000, 7_000, 15_000];
/** Entries of the events stream read past the last one seen, for the one that ended a listener. */
const RELISTEN_SCAN_ENTRIES = 1_000;
/** Pages of RELISTEN_SCAN_ENTRIES read at most to find that entry. */
const RELISTEN_SCAN_PAGES = 20;
/** The pause before a listener is replaced; doubled, up to the most, while no such entry is found. */
const RELISTEN_DELAY_MS = 100;
const RELISTEN_MAX_DELAY_MS = 5_000;

/** Whether BullMQ's listener can read an events-stream entry (it parses these two as JSON). */
function readableEvent(fields: string[]): boolean {
  // As BullMQ reads an entry: a field given twice has its last value.
  const get = (name: string) => {
    let value: string | undefined;
    for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === name) value = fields[i + 1];
    return value;
  };
  const event = get('event');
  if (event !== 'completed' && event !== 'progress') return true;
  const json = get(event === 'completed' ? 'returnvalue' : 'data');
  try {
    // A missing field is JSON.parse(undefined): a SyntaxError to BullMQ too.
    JSON.parse(json as string);
    return true;
  } catch {
    return false;
  }
}
const FALLBACK_READ_EVERY_MS = 15_000;

export interface ClientOptions {
  /** Redis URL (`redis://`, `rediss://`, user:password for AUTH/ACL) or ioredis options. */
  connection: Connection;
  /** @default 'sandpool' */
  queue?: string;
  /** Key prefix; a hash tag such as `{sandpool}` keeps every key on one Redis Cluster slot. @default 'bull' */
  prefix?: string;
  /** Jobs waiting in the queue (any tenant, any producer) past which submit fails with QUEUE_FULL. @default 100000 */
  maxQueued?: number;
  /** Jobs of one tenant waiting, submitted through a client, past which submit fails with TENANT_QUEUE_FULL. @default 10000 */
  maxQueuedPerTenant?: number;
  /** queueTimeoutMs for requests that set none; unset means no queue deadline. */
  queueTimeoutMs?: number;
  /** Tries when the infrastructure fails (user outcomes are never retried). @default 3 */
  attempts?: number;
  /** First retry delay, doubled each time. @default 1000 */
  backoffMs?: number;
  /**
   * Finished jobs (and so their Results) are kept this long / this many. Retention is the workers'
   * setting (`createWorker`'s keepCompleted/keepFailed, `SANDPOOL_KEEP_*`). BullMQ applies a job's
   * own retention to the whole set of finished jobs when it finishes, not to that job alone, so a
   * sandpool worker obeys it only where it keeps at least as much as the worker's own (a longer age
   * and a larger count); otherwise the worker's applies. Give these to keep more.
   * @default unset: the worker's retention applies
   */
  keepCompleted?: { ageSeconds: number; count: number };
  keepFailed?: { ageSeconds: number; count: number };
  /**
   * Cap on the queue's events stream, written to the queue when the client connects. The workers
   * set it (`SANDPOOL_EVENTS_MAX_LEN`); give it here only to set it from the client instead.
   * @default unset: the client leaves the queue's setting alone
   */
  eventsMaxLen?: number;
  /** Any Redis call fails with REDIS_UNAVAILABLE after this. @default 5000 */
  redisTimeoutMs?: number;
  /** Code and input bigger than this are rejected here, before Redis. */
  sizeLimits?: SizeLimits;
  /**
   * Pre-screening before a job is queued (the worker screens again, with its own settings, and is
   * the authority). Keep it no stricter than the workers'.
   * @default the pre-screen's defaults (enforce)
   */
  prescreen?: PrescreenOptions;
}

export interface ExecuteOptions {
  /** How long to wait for the Result. @default the job's queue and run budgets plus 30 s */
  waitMs?: number;
  /** Aborting cancels the job; the call then resolves with its `cancelled` Result. */
  signal?: AbortSignal;
}

export interface TenantOptions {
  /** Only the submitting tenant sees or cancels a job. @default 'default' */
  tenantId?: string;
}

export interface Client {
  /** Submits and waits: always a Result for anything the snippet did; throws QueueError for a failed system. */
  execute(request: RequestInput, options?: ExecuteOptions): Promise<Result>;
  /** Submits; resolves with the job id. Throws QueueError INVALID_REQUEST, QUEUE_FULL, ... */
  submit(request: RequestInput): Promise<string>;
  /** Submits many at once (one validation pass, one bound check, one round trip to add). */
  submitBatch(requests: readonly RequestInput[]): Promise<string[]>;
  /** The job's Result once it finished; undefined while it runs, or when it is unknown to this tenant. */
  getResult(id: string, options?: TenantOptions): Promise<Result | undefined>;
  /** A waiting job is removed; a running one is stopped wherever it runs. False when there was nothing to cancel. */
  cancel(id: string, options?: TenantOptions): Promise<boolean>;
  close(): Promise<void>;
}

type Compiled = CompiledClientOptions;

type Checked = { ok: true; request: Request } | { ok: false; issues: RequestIssue[]; reasons?: RejectionReason[] };

/** A request refused by a rule (size, pre-screen): its reasons, and the same as issues for submit's error. */
function rejection(reasons: RejectionReason[]): Checked {
  const at = (r: RejectionReason) => (r.line !== undefined ? ` (line ${r.line}, column ${r.column ?? 0})` : '');
  return { ok: false, reasons, issues: reasons.map((r) => ({ field: r.field ?? 'code', message: `${r.rule}: ${r.message}${at(r)}` })) };
}

type Outcome = { result: Result };
interface Waiter {
  limits: Readonly<Limits>;
  settle(outcome: Outcome): void;
  fail(error: Error): void;
}

class SandpoolClient implements Client {
  readonly #options: Compiled;
  readonly #queue: Queue;
  readonly #redis: Redis;
  readonly #keys: QueueKeys;
  readonly #admission: Admission;
  readonly #connection: Connection;
  #events: Promise<QueueEvents> | undefined;
  #eventsReady = false;
  /** Listeners replaced in a row without finding the entry that ended them (see #relisten). */
  #relistenMisses = 0;
  readonly #waiters = new Map<string, Set<Waiter>>();
  #closed = false;

  readonly #transactions: SubmitTransactions;
  /** Removes a job only while it waits (see queue-cancel.ts). */
  readonly #removeWaiting: (id: string) => Promise<WaitingRemoval>;
  /** Code submitted again is screened once (the producer's check; the worker screens again). */
  readonly #screenCache: ScreenCache;
  /** TypeScript submitted again is stripped once. */
  readonly #strips: CodeCache<TimedStrip>;
  /** Aborted by close(): thread work no thread took yet is dropped, and no call waits for the rest. */
  readonly #dropWork = new AbortController();

  constructor(options: Compiled, connection: Connection, queue: Queue, redis: Redis, bull: BullConnection) {
    this.#options = options;
    this.#connection = connection;
    this.#queue = queue;
    this.#redis = redis;
    this.#keys = queueKeys(options.prefix, options.queue);
    this.#admission = createAdmission([redis, bull], redis, (type) => queue.toKey(type), this.#keys, options);
    this.#transactions = submitTransactions(redis, bull);
    this.#removeWaiting = defineRemoveWaiting(redis, bull, (type) => queue.toKey(type));
    this.#screenCache = new ScreenCache(options.prescreenBase);
    this.#strips = stripCache();
  }

  async execute(input: RequestInput, options: ExecuteOptions = {}): Promise<Result> {
    this.#assertOpen();
    // The calling program's options, checked before anything reaches Redis.
    checkExecuteOptions(options);
    let checked = this.#check(input);
    if (checked instanceof Promise) {
      // Types being stripped on a thread (up to 2 s): a cancel answers at once, not after the strip,
      // and close() ends the call at once too.
      const ended = await untilAborted(untilAborted(checked, this.#dropWork.signal), options.signal);
      this.#assertOpen();
      if (ended === 'aborted') return cancelledResult(limitsOf(input));
      checked = ended;
    }
    if (!checked.ok) {
      if (!checked.reasons) return rejectedResult(checked.issues, limitsOf(input));
      return resultWithoutRun('rejected', limitsOf(input), thisWorker(), {
        reasons: checked.reasons,
      });
    }
    const request = checked.request;
    const limits = limitsOf(request);
    // Given up before it was even submitted: nothing reaches Redis.
    if (options.signal?.aborted) return cancelledResult(limits);
    const id = this.#jobIdFor(request);
    // Listening already (every call after the first): no bound to arm.
    if (!this.#eventsReady) await this.#bounded(this.#startEvents(), 'start listening for results');

    const waitMs = options.waitMs ?? this.#defaultWaitMs(request, limits);
    const { promise, resolve, reject } = Promise.withResolvers<Outcome>();
    // close() may reject it before it is awaited below (while the job is admitted): never unhandled.
    promise.catch(() => {});
    const waiter: Waiter = { limits, settle: resolve, fail: reject };
    this.#addWaiter(id, waiter);
    let timer: NodeJS.Timeout | undefined;
    let readTimer: NodeJS.Timeout | undefined;
    const onAbort = () => {
      // The caller gave up: stop the job; its `cancelled` Result still arrives through the wait.
      this.cancel(id, { tenantId: request.tenantId }).catch(() => {
        // Redis unreachable: the wait's own bound ends the call.
      });
    };
    try {
      const fresh = await this.#admit([{ id, request }]);
      if (options.signal?.aborted) onAbort();
      options.signal?.addEventListener('abort', onAbort, { once: true });

      // Infinity: no deadline of the client's own.
      const timedOut = new Promise<'timeout'>((resolveTimeout) => {
        if (Number.isFinite(waitMs)) timer = setTimeout(() => resolveTimeout('timeout'), waitMs);
      });
      // Events can be missed (a reconnect, a trimmed stream): read the job now and then as well.
      let reads = 0;
      const scheduleRead = () => {
        const delay = FALLBACK_READS_MS[reads] ?? FALLBACK_READ_EVERY_MS;
        reads++;
        readTimer = setTimeout(() => {
          this.#readOutcome(id, request.tenantId, limits)
            .then((outcome) => (outcome ? resolve(outcome) : scheduleRead()))
            .catch(() => scheduleRead());
        }, delay);
      };
      // An idempotent repeat may have finished long ago: no event will come, read it at once.
      if (!fresh.has(id)) {
        const done = await this.#bounded(this.#readOutcome(id, request.tenantId, limits), 'read a job');
        if (done) return withId(done.result, id);
      }
      scheduleRead();
      const first = await Promise.race([promise, timedOut]);
      if (first !== 'timeout') return withId(first.result, id);
      const last = await this.#readOutcome(id, request.tenantId, limits).catch(() => undefined);
      if (last) return withId(last.result, id);
      throw new QueueError('WAIT_TIMEOUT', `job ${id} did not finish within ${waitMs} ms; it may still run (getResult)`, {
        jobId: id,
      });
    } finally {
      clearTimeout(timer);
      clearTimeout(readTimer);
      options.signal?.removeEventListener('abort', onAbort);
      this.#removeWaiter(id, waiter);
    }
  }

  async submit(input: RequestInput): Promise<string> {
    const [id] = await this.submitBatch([input]);
    return id as string;
  }

  async submitBatch(inputs: readonly RequestInput[]): Promise<string[]> {
    this.#assertOpen();
    if (!Array.isArray(inputs)) throw new TypeError('submitBatch(): expected an array of requests');
    const jobs: { id: string; request: Request }[] = [];
    const issues: RequestIssue[] = [];
    for (const [index, input] of inputs.entries()) {
      let checked = this.#check(input);
      if (checked instanceof Promise) {
        checked = await checked;
        this.#assertOpen();
      }
      if (checked.ok) jobs.push({ id: this.#jobIdFor(checked.request), request: checked.request });
      else {
        const at = inputs.length > 1 ? `[${index}].` : '';
        for (const issue of checked.issues) issues.push({ field: `${at}${issue.field}`, message: issue.message });
      }
    }
    if (issues.length > 0) {
      throw new QueueError('INVALID_REQUEST', `invalid request: ${issues.map((i) => `${i.field}: ${i.message}`).join('; ')}`, {
        issues,
      });
    }
    await this.#admit(jobs);
    return jobs.map((job) => job.id);
  }

  async getResult(id: string, options: TenantOptions = {}): Promise<Result | undefined> {
    this.#assertOpen();
    const tenantId = checkJobAccess('getResult', id, options);
    if (!mayBeJobId(id)) return undefined;
    const outcome = await this.#bounded(this.#readOutcome(id, tenantId, undefined), 'read a job');
    return outcome ? withId(outcome.result, id) : undefined;
  }

  async cancel(id: string, options: TenantOptions = {}): Promise<boolean> {
    this.#assertOpen();
    const tenantId = checkJobAccess('cancel', id, options);
    if (!mayBeJobId(id)) return false;
    return this.#bounded(this.#cancel(id, tenantId), 'cancel a job');
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#dropWork.abort();
    const closing = new QueueError('CLIENT_CLOSED', 'the client was closed while waiting');
    for (const waiters of this.#waiters.values()) {
      for (const waiter of waiters) waiter.fail(closing);
    }
    this.#waiters.clear();
    const events = this.#events;
    await Promise.allSettled([
      this.#queue.close(),
      events?.then((e) => e.close()),
      this.#redis.quit().catch(() => this.#redis.disconnect()),
    ]);
  }

  #assertOpen(): void {
    if (this.#closed) throw new QueueError('CLIENT_CLOSED', 'the client is closed');
  }

  /** At once, except for TypeScript to screen, whose types are stripped on a thread (a promise then). */
  #check(input: unknown): Checked | Promise<Checked> {
    const parsed = parseRequest(input);
    if (!parsed.ok) return parsed;
    const request = parsed.request;
    // The pool's own size check, so that the worker's pool would not reject what this sends.
    const sizes = checkSizes(request, this.#options.sizeLimits);
    if (!sizes.ok) return rejection([sizes.reason]);
    if (request.queueTimeoutMs === undefined && this.#options.queueTimeoutMs !== undefined) {
      request.queueTimeoutMs = this.#options.queueTimeoutMs;
    }
    // Screened as the worker will screen it: TypeScript after type stripping (which keeps
    // positions). Code that does not strip, or not within the bound, is left to the worker,
    // whose Result reports it.
    if (request.code === undefined || this.#options.prescreenBase.mode === 'off') return { ok: true, request };
    if (request.language !== 'typescript') return this.#screen(request, request.code);
    const budgetMs = Math.min(limitsOf(request).timeoutMs, MAX_STRIP_MS);
    // What does not strip (in time, or at all) is left to the worker, whose Result reports it.
    const afterStrip = (stripped: BoundedStripResult) => (stripped.ok ? this.#screen(request, stripped.code) : { ok: true as const, request });
    const stripped = stripTypesWithin(request.code, budgetMs, this.#strips.forTenant(request.tenantId), [this.#dropWork.signal]);
    return stripped instanceof Promise ? stripped.then(afterStrip, () => ({ ok: true, request })) : afterStrip(stripped);
  }

  /** The pre-screen, at once, or on a thread for large code. */
  #screen(request: Request, code: string): Checked | Promise<Checked> {
    const settings = requestPrescreen(this.#options.prescreenBase, this.#options.prescreen, request.prescreen);
    const outcome = screenCode(code, settings, this.#screenCache.forTenant(request.tenantId), [this.#dropWork.signal]);
    if (!(outcome instanceof Promise)) return screenedCheck(request, outcome.report);
    return outcome.then(
      ({ report }) => screenedCheck(request, report),
      () => ({ ok: true, request }), // the screen's thread failed: the worker screens it anyway
    );
  }

  #jobIdFor(request: Request): string {
    return request.idempotencyKey === undefined ? randomUUID() : idempotentJobId(request.tenantId, request.idempotencyKey);
  }

  #defaultWaitMs(request: Request, limits: Readonly<Limits>): number {
    const queueMs = request.queueTimeoutMs ?? 60_000;
    const runMs = Math.max(limits.timeoutMs, DEFAULT_LIMITS.timeoutMs) * this.#options.attempts;
    const backoffMs = this.#options.backoffMs * 2 ** this.#options.attempts;
    return queueMs + runMs + backoffMs + CLIENT_DEFAULTS.waitSlackMs;
  }

  /**
   * Adds the jobs that pass admission; resolves with the ids that were new (not idempotent
   * repeats). Check and adds go in one MULTI: one round trip, and atomic (see queue-admission.ts).
   */
  async #admit(jobs: readonly { id: string; request: Request }[]): Promise<Set<string>> {
    if (jobs.length === 0) return new Set();
    const entries = jobs.map((job) => ({ id: job.id, tenantId: job.request.tenantId }));
    const o = this.#options;
    // Retention only when this client overrides the workers': a job's own wins over the worker's.
    const retention = {
      ...(o.keepCompleted ? { removeOnComplete: { age: o.keepCompleted.ageSeconds, count: o.keepCompleted.count } } : {}),
      ...(o.keepFailed ? { removeOnFail: { age: o.keepFailed.ageSeconds, count: o.keepFailed.count } } : {}),
    };
    const opts = (id: string) => ({
      jobId: id,
      attempts: o.attempts,
      backoff: { type: 'exponential', delay: o.backoffMs },
      ...retention,
    });
    const build = (transaction: CountedTransaction) => {
      this.#admission.check(transaction, entries);
      for (const job of jobs) {
        // Job.addJob queues BullMQ's own add script on the transaction (synchronously; the promise
        // it returns only reports the transaction object back).
        new Job(this.#queue, JOB_NAME, job.request, opts(job.id), job.id).addJob(transaction as never).catch(() => {
          // The reply is read from exec() below; a command that could not be queued is counted.
        });
      }
      return transaction;
    };
    let transaction = build(this.#transactions.make());
    if (transaction.queued() !== 1 + jobs.length) {
      // Never sent: a MULTI goes out with exec().
      transaction = build(this.#transactions.fallback());
    }
    const replies = await this.#bounded(
      transaction.exec().then((replies) => {
        if (!replies) throw new Error('the transaction was aborted');
        const [checkError, checkReply] = replies[0] ?? [];
        if (checkError) throw checkError;
        return replies;
      }),
      'add jobs',
    );
    const admitted = this.#admission.outcome(replies[0]?.[1], entries);
    if ('refused' in admitted) {
      // Fails fast all the same: the holds expire by themselves should Redis not answer now.
      await this.#bounded(this.#admission.releaseHolds(entries), 'release refused job ids').catch(() => {});
      throw admitted.refused;
    }
    const freshIds = admitted.fresh;
    const failed = replies.slice(1, 1 + jobs.length).find(([error, reply]) => error || (typeof reply === 'number' && reply < 0));
    if (failed) {
      this.#admission.release(entries.filter((entry) => freshIds.has(entry.id)));
      const reason = failed[0]?.message ?? `BullMQ error code ${String(failed[1])}`;
      throw new QueueError('REDIS_UNAVAILABLE', `Redis failed to add a job: ${reason}`, { cause: failed[0] ?? undefined });
    }
    return freshIds;
  }

  async #cancel(id: string, tenantId: string): Promise<boolean> {
    const job = await Job.fromId<unknown>(this.#queue, id);
    if (!isJob(job) || ownerOf(job.data) !== tenantId) return false;
    const state = await job.getState();
    if (state === 'completed' || state === 'failed') return false;
    const limits = limitsOf(job.data);
    const result = cancelledResult(limits);
    // A job that never ran waited all its time (the producer's add is BullMQ's timestamp).
    if (Number.isFinite(job.timestamp)) result.metrics.queueWaitMs = Math.max(0, Date.now() - job.timestamp);
    // The mark first: a worker that takes the job from now on ends it as cancelled. Then the
    // broadcast, for the worker already running it.
    await this.#redis
      .multi()
      .set(this.#keys.cancelled(id), JSON.stringify({ tenantId, result }), 'EX', CANCEL_MARK_TTL_SECONDS)
      .zrem(this.#keys.tenantQueued(tenantId), id)
      .publish(this.#keys.cancelChannel, id)
      .exec();
    // A running job is stopped by its worker (the channel, or its mark), and one that finishes
    // first keeps its Result. A waiting job is removed, unless a worker took it since the state was
    // read: the check and the removal are one script, as a finished job holds no lock and BullMQ's
    // own removal would delete the Result it finished with.
    if (state === 'active' || (await this.#removeWaiting(id)) === 'not-waiting') return true;
    this.#settle(id, { result: withId(result, id) });
    return true;
  }

  /** The job's final Result, if it has one (completed, failed after its retries, or cancelled). */
  async #readOutcome(id: string, tenantId: string, knownLimits: Readonly<Limits> | undefined): Promise<Outcome | undefined> {
    const job = await Job.fromId<unknown, Result>(this.#queue, id);
    if (!isJob(job)) {
      const mark = await this.#redis.get(this.#keys.cancelled(id));
      if (mark === null) return undefined;
      let parsed: { tenantId?: unknown; result?: Result } | undefined;
      try {
        parsed = JSON.parse(mark) as { tenantId?: unknown; result?: Result };
      } catch {
        return undefined; // not a mark this client wrote
      }
      return parsed?.tenantId === tenantId && parsed.result !== undefined ? { result: parsed.result } : undefined;
    }
    if (ownerOf(job.data) !== tenantId || job.finishedOn === undefined) return undefined;
    const state = await job.getState();
    if (state === 'completed') return { result: job.returnvalue };
    if (state === 'failed') {
      return { result: internalErrorResult(job.failedReason, knownLimits ?? limitsOf(job.data), job.attemptsMade) };
    }
    return undefined;
  }

  #startEvents(): Promise<QueueEvents> {
    this.#events ??= (async () => {
      // Read events from the server's "now": nothing finishing after this call is missed, whatever
      // the time between here and the first blocking read.
      const [seconds, micros] = await this.#redis.time();
      const events = this.#listen(`${Number(seconds) * 1000 + Math.floor(Number(micros) / 1000)}-0`);
      await events.waitUntilReady();
      this.#eventsReady = true;
      return events;
    })();
    const starting = this.#events;
    // A failed start is retried by the next call rather than remembered.
    starting.catch(() => {
      if (this.#events === starting) this.#events = undefined;
    });
    return starting;
  }

  /** A listener for the queue's events after `fromId`; one whose loop ends is replaced (#relisten). */
  #listen(fromId: string): QueueEvents {
    const events = new QueueEvents(this.#options.queue, {
      connection: bullConnection(this.#connection),
      prefix: this.#options.prefix,
      lastEventId: fromId,
      autorun: false,
    });
    let lastId = fromId;
    events.on('error', () => {
      // Reconnects are ioredis's; waits are bounded and read the job directly meanwhile.
    });
    events.on('completed', ({ jobId, returnvalue }, id) => {
      lastId = id;
      this.#settle(jobId, { result: returnvalue as unknown as Result });
    });
    events.on('failed', ({ jobId, failedReason }, id) => {
      lastId = id;
      const waiters = this.#waiters.get(jobId);
      if (!waiters) return;
      for (const waiter of waiters) {
        waiter.settle({ result: internalErrorResult(failedReason, waiter.limits, this.#options.attempts) });
      }
    });
    // BullMQ's loop rides out lost connections; it ends only on an entry it cannot read (a
    // completed event whose return value is not JSON, written into the stream by hand). Every wait
    // then fell back to reading its job, a second or more after it finished, until the client closed.
    events.run().catch(() => {
      void this.#relisten(events, lastId);
    });
    return events;
  }

  async #relisten(dead: QueueEvents, lastId: string): Promise<void> {
    await dead.close().catch(() => undefined);
    if (this.#closed) return;
    // Past the entry that stopped it: the first after lastId that BullMQ cannot read, a page at a
    // time (lastId moves only with completed and failed events; others may be many in between).
    let from: string | undefined;
    try {
      let after = lastId;
      for (let page = 0; page < RELISTEN_SCAN_PAGES && from === undefined; page++) {
        const entries = await this.#redis.xrange(this.#queue.toKey('events'), after, '+', 'COUNT', RELISTEN_SCAN_ENTRIES);
        const fresh = entries.filter(([id]) => id !== after);
        from = fresh.find(([, fields]) => !readableEvent(fields))?.[0];
        if (fresh.length === 0) break;
        after = fresh[fresh.length - 1]?.[0] ?? after;
      }
    } catch {
      // Redis away: from lastId, after a pause.
    }
    // None found (Redis away, or the loop ended for another reason): from lastId again, each time
    // after a longer pause, so that a loop that keeps ending does not spin.
    this.#relistenMisses = from === undefined ? this.#relistenMisses + 1 : 0;
    const delayMs = Math.min(RELISTEN_DELAY_MS * 2 ** this.#relistenMisses, RELISTEN_MAX_DELAY_MS);
    await new Promise((resolve) => setTimeout(resolve, delayMs));
    if (this.#closed) return;
    this.#events = Promise.resolve(this.#listen(from ?? lastId));
  }

  #addWaiter(id: string, waiter: Waiter): void {
    let set = this.#waiters.get(id);
    if (!set) this.#waiters.set(id, (set = new Set()));
    set.add(waiter);
  }

  #removeWaiter(id: string, waiter: Waiter): void {
    const set = this.#waiters.get(id);
    set?.delete(waiter);
    if (set?.size === 0) this.#waiters.delete(id);
  }

  #settle(id: string, outcome: Outcome): void {
    for (const waiter of this.#waiters.get(id) ?? []) waiter.settle(outcome);
  }

  /** Every Redis call ends within redisTimeoutMs: an unreachable Redis is an error, never a hang. */
  #bounded<T>(operation: Promise<T>, what: string): Promise<T> {
    return boundedBy(operation, this.#options.redisTimeoutMs, what).catch((error: unknown) => {
      // Closed under the call: that is what failed it, not Redis.
      if (this.#closed) throw new QueueError('CLIENT_CLOSED', 'the client is closed', { cause: error });
      throw error;
    });
  }
}

/** Keys BullMQ keeps beside its job hashes under `<prefix>:<queue>:`: never a job's id. */
const QUEUE_KEY_NAMES: ReadonlySet<string> = new Set(Object.keys(BULLMQ_KEY_TYPES));

/**
 * The tenant asking, after checking the call's arguments (the calling program's: a TypeError for
 * nonsense). Only the submitting tenant sees or cancels a job.
 */
function checkJobAccess(call: string, id: unknown, options: unknown): string {
  if (typeof id !== 'string') throw new TypeError(`${call}(): the job id must be a string, got ${typeof id}`);
  if (typeof options !== 'object' || options === null) throw new TypeError(`${call}(): options must be an object`);
  refuseUnknownCallOptions(call, options, TENANT_OPTION_KEYS);
  const tenantId = (options as TenantOptions).tenantId ?? 'default';
  if (typeof tenantId !== 'string' || !TENANT_ID_PATTERN.test(tenantId)) {
    throw new TypeError(`${call}(): options.tenantId must match ${TENANT_ID_PATTERN}`);
  }
  return tenantId;
}

/**
 * Whether `id` can name a job at all: ids with a colon, or equal to a key BullMQ keeps beside its
 * jobs, would read (or, cancelled, delete) that key: cancel('meta') deleted the queue's settings.
 */
function mayBeJobId(id: string): boolean {
  return id.length > 0 && id.length <= MAX_CANCEL_ID_CHARS && !id.includes(':') && !QUEUE_KEY_NAMES.has(id);
}

/** A job BullMQ wrote: a hash that merely sits where a job would (an unknown key) has no timestamp. */
function isJob<T extends Job>(job: T | undefined): job is T {
  return job !== undefined && typeof job.timestamp === 'number' && job.timestamp > 0;
}

/**
 * The tenant a job belongs to, for reading and cancelling it: its data's tenantId, `default` when
 * it names none, and no tenant at all when it names one that is not valid (a raw producer's).
 */
function ownerOf(data: unknown): string | undefined {
  const tenantId = typeof data === 'object' && data !== null ? (data as { tenantId?: unknown }).tenantId : undefined;
  if (tenantId === undefined) return 'default';
  return typeof tenantId === 'string' && TENANT_ID_PATTERN.test(tenantId) ? tenantId : undefined;
}

const EXECUTE_OPTION_KEYS: ReadonlySet<string> = new Set(['waitMs', 'signal']);
const TENANT_OPTION_KEYS: ReadonlySet<string> = new Set(['tenantId']);

function checkExecuteOptions(options: unknown): asserts options is ExecuteOptions {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`execute(): options must be an object, got ${options === null ? 'null' : typeof options}`);
  }
  refuseUnknownCallOptions('execute', options, EXECUTE_OPTION_KEYS);
  const { signal, waitMs } = options as ExecuteOptions;
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw new TypeError('execute(): options.signal must be an AbortSignal');
  if (waitMs !== undefined && !(waitMs === Number.POSITIVE_INFINITY || (Number.isInteger(waitMs) && waitMs >= 1 && waitMs <= MAX_TIMER_MS))) {
    throw new RangeError(`execute(): options.waitMs must be a whole number of ms from 1 to ${MAX_TIMER_MS}, or Infinity, got ${String(waitMs)}`);
  }
}

function withId(result: Result, id: string): Result {
  return result.id === id ? result : { ...result, id };
}

function screenedCheck(request: Request, report: PrescreenReport | undefined): Checked {
  return report && report.blocked.length > 0 ? rejection(report.blocked) : { ok: true, request };
}

/**
 * Connects to the queue. Fails with QueueError REDIS_UNAVAILABLE within `redisTimeoutMs` when Redis
 * cannot be reached.
 */
export async function createClient(options: ClientOptions): Promise<Client> {
  const compiled = compileClientOptions(options);
  // No offline queue: while Redis is away a command fails at once instead of waiting to be replayed
  // later (a submit that reported failure must not add its job afterwards).
  const failFast = { enableOfflineQueue: false, maxRetriesPerRequest: 1 };
  const redis = createRedis(compiled.connection, { ...failFast, lazyConnect: true });
  // Reported through the calls that fail; ioredis keeps reconnecting. A failed connect names the
  // last one, which says why (WRONGPASS, ECONNREFUSED) where the call only says "closed".
  let lastRedisError: Error | undefined;
  redis.on('error', (error: Error) => {
    lastRedisError = error;
  });
  const queue = new Queue(compiled.queue, {
    connection: bullConnection(compiled.connection, failFast),
    prefix: compiled.prefix,
    // BullMQ's Queue writes its events cap (10000 unless given) to the queue on connecting, last
    // writer wins: a client leaves the workers' setting alone unless it was given one itself.
    ...(compiled.eventsMaxLen === undefined
      ? { skipMetasUpdate: true }
      : { streams: { events: { maxLen: compiled.eventsMaxLen } } }),
  });
  queue.on('error', () => {
    // As above: every call is bounded and reports its own failure.
  });
  try {
    await boundedBy(Promise.all([redis.connect(), queue.waitUntilReady()]), compiled.redisTimeoutMs, 'connect');
    await boundedBy(checkDatabase(redis), compiled.redisTimeoutMs, 'select the database');
  } catch (error) {
    redis.disconnect();
    await queue.close().catch(() => {
      // Never connected: nothing to close cleanly.
    });
    throw withRedisCause(error, lastRedisError);
  }
  // The backend's Redis client (its documented escape hatch): the checks share the adds' MULTI.
  const bull = (await queue.getBackend().client) as unknown as BullConnection;
  return new SandpoolClient(compiled, compiled.connection, queue, redis, bull);
}

/** `promise`'s value, or 'aborted' as soon as `signal` is (at once if it already is). */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T | 'aborted'> {
  if (signal === undefined) return promise;
  if (signal.aborted) return Promise.resolve('aborted');
  return new Promise((resolve, reject) => {
    const onAbort = () => resolve('aborted');
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

export { QueueError, type QueueErrorCode } from './queue.ts';
