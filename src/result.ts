// Result: the one shape every path returns — pool.execute, client.execute, a BullMQ job's return
// value — whatever happened. A failed snippet is a Result; only a failed system throws.
import type { Limits } from './limits.ts';
import type { JsonValue } from './request.ts';

export const STATUSES = Object.freeze([
  'ok',
  'error',
  'timeout',
  'memory_limit',
  'rejected',
  'cancelled',
  'internal_error',
] as const);
export type Status = (typeof STATUSES)[number];

/** Where a snippet failed. */
export type ErrorPhase = 'compile' | 'runtime' | 'result';
/** Which clock ran out, for `timeout`. */
export type TimeoutLimit = 'wall' | 'cpu' | 'queue';

export interface ResultError {
  name: string;
  /** Capped; never carries host paths. */
  message: string;
  /** Sandbox frames only. */
  stack?: string;
  phase?: ErrorPhase;
  limit?: TimeoutLimit;
  /** Stable code for system-side errors (see README: error codes). */
  code?: string;
}

export interface RejectionReason {
  /** Stable rule id: a pre-screen rule, `validation`, or a policy code. */
  rule: string;
  message: string;
  /** Bad field, for validation. */
  field?: string;
  line?: number;
  column?: number;
}

export interface Warning {
  rule: string;
  message: string;
  line?: number;
  column?: number;
}

export interface OutputReport {
  /** Bytes the snippet wrote to the stream, kept or not. */
  totalBytes: number;
  /** Bytes dropped from the middle to respect maxOutputBytes. */
  omittedBytes: number;
}

export interface Metrics {
  /** From acceptance (submit, or pool.execute) until an isolate started on it. */
  queueWaitMs: number;
  /** Making the isolate ready for this job (0 when a spare was ready) plus compiling the code. */
  setupMs: number;
  /** Running the code, async work included, until the result was read. */
  wallTimeMs: number;
  /** CPU time V8 counted for the isolate. */
  cpuTimeMs: number;
  /** Isolate heap in use when the job ended. */
  heapUsedBytes: number;
  stdoutBytes: number;
  stderrBytes: number;
  /** 1 on the first try; more when infrastructure failed and the job was run again. */
  attempt: number;
  worker: { host: string; pid: number; thread: number };
}

export interface Result {
  /** The job id in queue mode; a pool-generated id embedded. */
  id?: string;
  status: Status;
  /** Present for `ok`: a JSON-safe copy of the completion value / default export's return value. */
  value?: JsonValue;
  stdout: string;
  stderr: string;
  truncated: { stdout: boolean; stderr: boolean; value: boolean };
  output: { stdout: OutputReport; stderr: OutputReport };
  /** The limits actually applied, after defaults and ceilings. */
  limits: Limits;
  warnings: Warning[];
  error?: ResultError;
  rejection?: { reasons: RejectionReason[] };
  metrics: Metrics;
  labels?: Record<string, string>;
}

/** User outcomes: a completed job, never retried. */
export function isUserOutcome(status: Status): boolean {
  return status !== 'internal_error';
}

export const EMPTY_OUTPUT: Readonly<Result['output']> = Object.freeze({
  stdout: Object.freeze({ totalBytes: 0, omittedBytes: 0 }),
  stderr: Object.freeze({ totalBytes: 0, omittedBytes: 0 }),
});

export function emptyMetrics(worker: Metrics['worker'], attempt = 1): Metrics {
  return {
    queueWaitMs: 0,
    setupMs: 0,
    wallTimeMs: 0,
    cpuTimeMs: 0,
    heapUsedBytes: 0,
    stdoutBytes: 0,
    stderrBytes: 0,
    attempt,
    worker,
  };
}

/** The error of a job not started within its request's `queueTimeoutMs`. */
export function queueTimeoutError(waitedMs: number, queueTimeoutMs: number): ResultError {
  return {
    name: 'TimeoutError',
    message: `the job waited ${waitedMs} ms in the queue, more than its queueTimeoutMs of ${queueTimeoutMs} ms`,
    limit: 'queue',
  };
}

/** A Result for a job that never ran (rejected, cancelled before start, failed infrastructure). */
export function resultWithoutRun(
  status: Exclude<Status, 'ok'>,
  limits: Limits,
  worker: Metrics['worker'],
  detail: { error?: ResultError; reasons?: RejectionReason[]; warnings?: Warning[]; attempt?: number },
): Result {
  const result: Result = {
    status,
    stdout: '',
    stderr: '',
    truncated: { stdout: false, stderr: false, value: false },
    output: { stdout: { ...EMPTY_OUTPUT.stdout }, stderr: { ...EMPTY_OUTPUT.stderr } },
    limits: { ...limits },
    warnings: detail.warnings ?? [],
    metrics: emptyMetrics(worker, detail.attempt),
  };
  if (detail.error) result.error = detail.error;
  if (detail.reasons) result.rejection = { reasons: detail.reasons };
  return result;
}
