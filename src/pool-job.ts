// The per-job pipeline around an executor, in the caller's process: a request becomes either a
// ThreadTask ready to dispatch or a Result without a run; a ThreadOutcome becomes a Result.
// Synchronous and pure apart from reading the compiled options; this is the hot path of
// pool.execute(), so nothing here logs, allocates channels, or parses with zod past the request.
import { Buffer } from 'node:buffer';
import { compileLimits, type Limits, type SizeLimits } from './limits.ts';
import type { CompiledPoolOptions } from './pool-options.ts';
import { requestPrescreen } from './prescreen.ts';
import { parseRequest, validationReasons, type JsonValue, type Request } from './request.ts';
import {
  resultWithoutRun,
  type Metrics,
  type OutputReport,
  type RejectionReason,
  type Result,
  type ResultError,
  type Status,
  type Warning,
} from './result.ts';
import type { ScreenOutcome } from './prepare-thread.ts';
import { MAX_STRIP_MS, screenCode, stripTypesWithin, type BoundedStripResult } from './prepare-threads.ts';
import { ScreenCache, stripCache } from './code-cache.ts';
import type { CodeForm, ThreadOutcome, ThreadTask } from '../workers/protocol.ts';

/** What the pool keeps for a job between dispatch and its Result. */
export interface PreparedJob {
  task: ThreadTask;
  limits: Limits;
  warnings: Warning[];
  labels: Record<string, string> | undefined;
  /** The request's: not handed to an executor within this (from acceptedAt), it ends `timeout`. */
  queueTimeoutMs: number | undefined;
}

export type Preparation = { ok: true; job: PreparedJob } | { ok: false; result: Result };

/**
 * A preparation still on a thread (TypeScript, large code), with what is known of its job already:
 * a job cancelled or closed meanwhile is answered with its own limits and labels.
 */
export interface PendingPreparation extends Promise<Preparation> {
  readonly known: { limits: Limits; labels: Record<string, string> | undefined };
}

function pendingWith(
  preparation: Preparation | Promise<Preparation>,
  limits: Limits,
  labels: Record<string, string> | undefined,
): Preparation | PendingPreparation {
  return preparation instanceof Promise ? Object.assign(preparation, { known: { limits, labels } }) : preparation;
}

/** Identity of a job while it is turned into a Result. */
export interface JobContext {
  id: string;
  limits: Limits;
  warnings: Warning[];
  labels: Record<string, string> | undefined;
  acceptedAt: number;
  attempt: number;
}

export interface JobPipeline {
  /**
   * At once, except for TypeScript and large code, prepared on a thread (a promise then, which
   * rejects when `signal` aborts before a thread took the work: nothing of it is done).
   */
  prepare(request: unknown, id: string, signal?: AbortSignal): Preparation | PendingPreparation;
  /** prepare() for what parseRequest already accepted (its own output, unchanged): no second parse. */
  prepareValidated(request: Request, id: string, signal?: AbortSignal): Preparation | PendingPreparation;
  fromOutcome(outcome: ThreadOutcome, job: JobContext, executorPid: number): Result;
  /** The Result of a job the pool had no room for (maxQueued): `rejected`, rule `pool_full`. */
  full(id: string): Result;
  /** A Result for a job that did not finish in an isolate: cancelled, killed, failed, closed. */
  withoutRun(
    status: Exclude<Status, 'ok' | 'rejected'>,
    job: JobContext,
    error: ResultError,
    worker?: { pid: number; wallTimeMs?: number },
  ): Result;
}

const UTF8_MAX_BYTES_PER_UNIT = 3;
/** Tools' prepared code kept at most: a registry's tools are few; one that makes code per call is not helped. */
const MAX_TOOL_CODES = 1024;

/** A tool's code as registered, and as prepared to run (types stripped, form told). */
interface ToolSource {
  language: 'javascript' | 'typescript';
  code: string;
}
interface PreparedTool {
  code: string;
  form: CodeForm;
}

/** Milliseconds since the job was accepted (acceptedAt is epoch ms, read with sub-millisecond precision). */
export function msSinceAccepted(job: Pick<JobContext, 'acceptedAt'>): number {
  return performance.timeOrigin + performance.now() - job.acceptedAt;
}

/** The error of a job cancelled by its caller's signal. */
export function cancelledError(): ResultError {
  return { name: 'CancelledError', message: 'The job was cancelled' };
}

function tooLarge(text: string, max: number): number | undefined {
  // Every UTF-16 unit is at most 3 UTF-8 bytes: most texts are cleared without counting.
  if (text.length * UTF8_MAX_BYTES_PER_UNIT <= max) return undefined;
  const bytes = Buffer.byteLength(text, 'utf8');
  return bytes > max ? bytes : undefined;
}

export type SizeCheck = { ok: true; inputJson: string | undefined } | { ok: false; reason: RejectionReason };

/**
 * The size limits on what the caller sent: code in UTF-8 bytes, input as JSON text (returned, so it
 * is made once). The pool and the queue client both check a request with this, before anything runs
 * or reaches Redis.
 */
export function checkSizes(request: Pick<Request, 'code' | 'input'>, sizeLimits: Readonly<SizeLimits>): SizeCheck {
  if (request.code !== undefined) {
    const bytes = tooLarge(request.code, sizeLimits.maxCodeBytes);
    if (bytes !== undefined) {
      const message = `code is ${bytes} bytes, more than the ${sizeLimits.maxCodeBytes} allowed`;
      return { ok: false, reason: { rule: 'code_too_large', field: 'code', message } };
    }
  }
  if (request.input === undefined) return { ok: true, inputJson: undefined };
  let inputJson: string;
  try {
    inputJson = JSON.stringify(request.input);
  } catch {
    // An embedded caller's toJSON can still return a cycle; stringifying it is where that shows.
    const message = 'input is not serialisable as JSON (it is cyclic or nested too deeply)';
    return { ok: false, reason: { rule: 'validation', field: 'input', message } };
  }
  const bytes = tooLarge(inputJson, sizeLimits.maxInputBytes);
  if (bytes !== undefined) {
    const message = `input is ${bytes} bytes as JSON, more than the ${sizeLimits.maxInputBytes} allowed`;
    return { ok: false, reason: { rule: 'input_too_large', field: 'input', message } };
  }
  return { ok: true, inputJson };
}

/**
 * Builds the pipeline once per pool: everything that depends only on the options is computed here.
 * `dropWork`, once aborted (the pool's close() giving up on the jobs still being prepared), drops
 * every job's thread work that no thread has taken yet, as a job's own signal drops its own.
 */
export function createJobPipeline(options: Readonly<CompiledPoolOptions>, dropWork?: AbortSignal): JobPipeline {
  const { ceilings, defaults, ceilingMode, sizeLimits, hostName, tools } = options;
  const defaultLimits = compileLimits(undefined, ceilings, defaults).limits;
  const noRun: Metrics['worker'] = Object.freeze({ host: hostName, pid: 0, thread: 0 });
  // Keyed by the tool's own source string, whose hash V8 keeps: no per-call copy of the source.
  const toolCode = { javascript: new Map<string, PreparedTool>(), typescript: new Map<string, PreparedTool>() };
  // Snippets sent again are answered from here, under the pool's own screen settings only.
  const screenCache = new ScreenCache(options.prescreenBase.mode === 'off' ? undefined : options.prescreenBase);
  // TypeScript sent again is taken stripped from here, with no hop to a thread.
  const strips = stripCache();

  function rejectedResult(
    id: string,
    limits: Limits,
    reasons: RejectionReason[],
    labels?: Record<string, string>,
    warnings?: Warning[],
  ): Result {
    const result = resultWithoutRun('rejected', limits, { ...noRun }, warnings ? { reasons, warnings } : { reasons });
    result.id = id;
    if (labels) result.labels = labels;
    return result;
  }

  function rejected(...args: Parameters<typeof rejectedResult>): Preparation {
    return { ok: false, result: rejectedResult(...args) };
  }

  function prepare(raw: unknown, id: string, signal?: AbortSignal): Preparation | PendingPreparation {
    const parsed = parseRequest(raw);
    if (!parsed.ok) return rejected(id, defaultLimits, validationReasons(parsed.issues));
    return prepareValidated(parsed.request, id, signal);
  }

  function prepareValidated(request: Request, id: string, signal?: AbortSignal): Preparation | PendingPreparation {
    const labels = request.labels;

    const sizes = checkSizes(request, sizeLimits);
    if (!sizes.ok) return rejected(id, defaultLimits, [sizes.reason], labels);
    const inputJson = sizes.inputJson;

    // Tool resolution comes before the limits: a tool's own limits are defaults under the request's.
    let code = request.code ?? '';
    let language = request.language;
    let requestedLimits = request.limits;
    if (request.tool !== undefined) {
      if (tools === undefined) {
        const message = `no tool named '${request.tool}' (this pool has no tools registered)`;
        return rejected(id, defaultLimits, [{ rule: 'unknown_tool', field: 'tool', message }], labels);
      }
      const resolved = tools.resolve(request);
      if (!resolved.ok) return rejected(id, defaultLimits, resolved.reasons, labels);
      code = resolved.tool.code;
      language = resolved.tool.language;
      // The request's own limits win where it sets them: an explicit undefined sets nothing.
      requestedLimits = { ...resolved.tool.limits };
      for (const [key, value] of Object.entries(request.limits ?? {})) {
        if (value !== undefined) requestedLimits[key as keyof Limits] = value;
      }
    }

    // zod's partial output may hold explicit undefineds; compileLimits reads those as "not asked".
    const compiled = compileLimits(requestedLimits as Partial<Limits> | undefined, ceilings, defaults);
    const limits = compiled.limits;
    if (ceilingMode === 'reject' && compiled.violations.length > 0) {
      return rejected(
        id,
        limits,
        compiled.violations.map((violation) => ({
          rule: 'limit_above_ceiling',
          field: `limits.${violation.field}`,
          message: `limits.${violation.field}: asked for ${violation.requested}, the ceiling is ${violation.ceiling}`,
        })),
        labels,
      );
    }

    if (request.tool !== undefined) {
      // A tool's code is the same every call: stripped and its form told once, then taken from here.
      const known = toolCode[language].get(code);
      if (known !== undefined) return taskOf(request, id, known.code, limits, inputJson, { form: known.form });
    }
    if (language !== 'typescript') return pendingWith(screened(request, id, code, limits, inputJson, { language, code }, signal), limits, labels);
    const budgetMs = Math.min(limits.timeoutMs, MAX_STRIP_MS);
    const afterStrip = (stripped: BoundedStripResult): Preparation | Promise<Preparation> => {
      if (stripped.ok) return screened(request, id, stripped.code, limits, inputJson, { language, code }, signal);
      let error: ResultError;
      let status: 'timeout' | 'error' = 'error';
      if ('overran' in stripped) {
        // The job's own time limit, when it was the bound; else the source is beyond reason.
        if (budgetMs === limits.timeoutMs) {
          status = 'timeout';
          error = { name: 'TimeoutError', message: `type-stripping the TypeScript ran past the wall-clock time limit of ${limits.timeoutMs} ms`, limit: 'wall', phase: 'compile' };
        } else {
          error = { name: 'SyntaxError', message: `TypeScript source too complex to compile: type-stripping ran past ${MAX_STRIP_MS} ms`, phase: 'compile' };
        }
      } else {
        error = { name: stripped.error.name, message: stripped.error.message, phase: 'compile' };
      }
      const result = resultWithoutRun(status, limits, { ...noRun }, { error });
      result.id = id;
      if (labels) result.labels = labels;
      return { ok: false, result };
    };
    const stripped = stripTypesWithin(code, budgetMs, strips.forTenant(request.tenantId), [signal, dropWork]);
    return pendingWith(stripped instanceof Promise ? stripped.then(afterStrip) : afterStrip(stripped), limits, labels);
  }

  /**
   * The JavaScript's pre-screen (when on; large code on a thread) and the task. `source` names the
   * code as it came (language and text): a tool's is remembered under it, once prepared.
   */
  function screened(
    request: Request,
    id: string,
    code: string,
    limits: Limits,
    inputJson: string | undefined,
    source: ToolSource,
    signal: AbortSignal | undefined,
  ): Preparation | Promise<Preparation> {
    // Tool code is the operator's own and is not screened.
    const isTool = request.tool !== undefined;
    const screen =
      isTool || options.prescreenBase.mode === 'off'
        ? undefined
        : requestPrescreen(options.prescreenBase, options.prescreen, request.prescreen);
    const done = (outcome: ScreenOutcome) => {
      const cache = toolCode[source.language];
      if (isTool && cache.size < MAX_TOOL_CODES) cache.set(source.code, { code, form: outcome.form });
      return taskOf(request, id, code, limits, inputJson, outcome);
    };
    const outcome = screenCode(code, screen, isTool ? undefined : screenCache.forTenant(request.tenantId), [signal, dropWork]);
    return outcome instanceof Promise ? outcome.then(done) : done(outcome);
  }

  /** The task, or the rejection the pre-screen's report makes. */
  function taskOf(
    request: Request,
    id: string,
    code: string,
    limits: Limits,
    inputJson: string | undefined,
    { report, form }: ScreenOutcome,
  ): Preparation {
    const labels = request.labels;
    const warnings = report?.warnings ?? [];
    if (report && report.blocked.length > 0) return rejected(id, limits, report.blocked, labels, warnings);
    const task: ThreadTask = { id, code, form, inputJson, limits, cancelSlot: -1 };
    return { ok: true, job: { task, limits, warnings, labels, queueTimeoutMs: request.queueTimeoutMs } };
  }

  function outputReport(text: string, totalBytes: number): OutputReport {
    // Pure ASCII that was not cut is the common case: the byte count is the length.
    if (totalBytes === text.length) return { totalBytes, omittedBytes: 0 };
    return { totalBytes, omittedBytes: Math.max(0, totalBytes - Buffer.byteLength(text, 'utf8')) };
  }

  function parseValue(valueJson: string): JsonValue {
    try {
      return JSON.parse(valueJson) as JsonValue;
    } catch {
      // A value cut at maxResultBytes may no longer be JSON: the cut text is what the caller gets.
      return valueJson;
    }
  }

  function fromOutcome(outcome: ThreadOutcome, job: JobContext, executorPid: number): Result {
    // startedAt is read on the executor's thread, acceptedAt here: each process's time origin is
    // its own (they differed by ~0.35 ms here once), so the wait is kept within what this process
    // saw pass besides the run itself.
    const sinceAccepted = msSinceAccepted(job);
    const waited = Math.min(outcome.startedAt - job.acceptedAt, sinceAccepted - outcome.wallTimeMs);
    const stdout = outputReport(outcome.stdout, outcome.stdoutTotalBytes);
    const stderr = outputReport(outcome.stderr, outcome.stderrTotalBytes);
    const result: Result = {
      id: job.id,
      status: outcome.status,
      stdout: outcome.stdout,
      stderr: outcome.stderr,
      truncated: { stdout: stdout.omittedBytes > 0, stderr: stderr.omittedBytes > 0, value: outcome.truncatedValue },
      output: { stdout, stderr },
      limits: { ...job.limits },
      warnings: job.warnings,
      metrics: {
        queueWaitMs: Math.max(0, Math.round(waited * 1000) / 1000),
        setupMs: outcome.setupMs,
        wallTimeMs: outcome.wallTimeMs,
        cpuTimeMs: outcome.cpuTimeMs,
        heapUsedBytes: outcome.heapUsedBytes,
        stdoutBytes: outcome.stdoutTotalBytes,
        stderrBytes: outcome.stderrTotalBytes,
        attempt: job.attempt,
        worker: { host: hostName, pid: executorPid, thread: outcome.thread },
      },
    };
    if (outcome.valueJson !== undefined) result.value = parseValue(outcome.valueJson);
    if (outcome.error !== undefined) result.error = outcome.error;
    if (job.labels) result.labels = job.labels;
    return result;
  }

  function withoutRun(
    status: Exclude<Status, 'ok' | 'rejected'>,
    job: JobContext,
    error: ResultError,
    worker?: { pid: number; wallTimeMs?: number },
  ): Result {
    const result = resultWithoutRun(status, job.limits, { host: hostName, pid: worker?.pid ?? 0, thread: 0 }, {
      error,
      warnings: job.warnings,
      attempt: job.attempt,
    });
    result.id = job.id;
    if (worker?.wallTimeMs !== undefined) {
      result.metrics.wallTimeMs = worker.wallTimeMs;
      // It ran in an executor that died under it, clock and all: the time it ran is the figure.
      result.metrics.cpuTimeMs = worker.wallTimeMs;
    }
    // The rest of its time since it was accepted it waited (for an executor, or for its retry).
    result.metrics.queueWaitMs = Math.max(0, Math.round((msSinceAccepted(job) - (worker?.wallTimeMs ?? 0)) * 1000) / 1000);
    if (job.labels) result.labels = job.labels;
    return result;
  }

  function full(id: string): Result {
    const message = `the pool holds ${options.maxQueued} waiting jobs (maxQueued); nothing of this one ran, and it may be sent again`;
    return rejectedResult(id, defaultLimits, [{ rule: 'pool_full', message }]);
  }

  return { prepare, prepareValidated, fromOutcome, full, withoutRun };
}
