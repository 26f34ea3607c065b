// Pure host-side helpers of workers/isolate.ts (same thread, no isolated-vm): checking what the
// harness hands over, capping output on UTF-8 boundaries, and describing errors with sandbox frames
// only. Everything here works on strings and numbers copied out of the isolate.
import type { Limits } from '../src/limits.ts';
import type { ErrorPhase, ResultError } from '../src/result.ts';
import { ENTRY_FILENAME, HARNESS_FILENAME, MAX_ERROR_MESSAGE_BYTES, MAX_ERROR_NAME_BYTES, MAX_ERROR_STACK_BYTES } from './isolate-harness.ts';

export interface OutputSnapshot {
  stdoutHead: string;
  stdoutTail: string;
  stdoutTotalBytes: number;
  stderrHead: string;
  stderrTail: string;
  stderrTotalBytes: number;
}

export type ThreadError = ResultError & { phase?: ErrorPhase };

export interface HarnessOutcome extends OutputSnapshot {
  status: 'ok' | 'error';
  valueJson?: string;
  truncatedValue: boolean;
  error?: ThreadError;
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null;
const str = (value: unknown): string => (typeof value === 'string' ? value : '');
const count = (value: unknown): number => (typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : 0);
const PHASES: readonly unknown[] = ['compile', 'runtime', 'result'];

/**
 * Checks the shape of what the harness settled or collected. The harness is trusted code, but it
 * shares a realm with the snippet: whatever arrives is re-read field by field, never passed on.
 * Returns an OutputSnapshot-only object when there is no status (a `collect`).
 */
export function readHarnessOutcome(value: unknown): HarnessOutcome | undefined {
  if (!isRecord(value)) return undefined;
  const outcome: HarnessOutcome = {
    status: value.status === 'error' ? 'error' : 'ok',
    truncatedValue: value.truncatedValue === true,
    stdoutHead: str(value.stdoutHead),
    stdoutTail: str(value.stdoutTail),
    stdoutTotalBytes: count(value.stdoutTotalBytes),
    stderrHead: str(value.stderrHead),
    stderrTail: str(value.stderrTail),
    stderrTotalBytes: count(value.stderrTotalBytes),
  };
  if (typeof value.valueJson === 'string') outcome.valueJson = value.valueJson;
  if (value.status === 'error') {
    const error = isRecord(value.error) ? value.error : {};
    const phase = PHASES.includes(error.phase) ? (error.phase as ErrorPhase) : 'runtime';
    outcome.error = describeParts(str(error.name), str(error.message), str(error.stack), phase);
  }
  return outcome;
}

/** Longest prefix of `text` within `maxBytes` of UTF-8, never splitting a character. */
export function utf8Head(text: string, maxBytes: number): string {
  if (text.length * 3 <= maxBytes) return text;
  // Every UTF-16 unit is at least one byte: the head lies within the first maxBytes units, and only
  // those are encoded (a copied-out error message may be hundreds of MB). A pair cut in two is dropped.
  if (text.length > maxBytes) text = dropLoneEnd(text.slice(0, Math.max(0, maxBytes)));
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= maxBytes) return text;
  let end = Math.max(0, maxBytes);
  while (end > 0 && ((bytes[end] ?? 0) & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end).toString('utf8');
}

/** Longest suffix of `text` within `maxBytes` of UTF-8, never splitting a character. */
export function utf8Tail(text: string, maxBytes: number): string {
  if (text.length * 3 <= maxBytes) return text;
  // As utf8Head, from the end.
  if (text.length > maxBytes) text = dropLoneStart(text.slice(text.length - Math.max(0, maxBytes)));
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= maxBytes) return text;
  let start = bytes.length - Math.max(0, maxBytes);
  while (start < bytes.length && ((bytes[start] ?? 0) & 0xc0) === 0x80) start++;
  return bytes.subarray(start).toString('utf8');
}

/** `text` without a high surrogate at its end, left there by a cut through a pair. */
function dropLoneEnd(text: string): string {
  const last = text.charCodeAt(text.length - 1);
  return last >= 0xd800 && last <= 0xdbff ? text.slice(0, -1) : text;
}

/** `text` without a low surrogate at its start, left there by a cut through a pair. */
function dropLoneStart(text: string): string {
  const first = text.charCodeAt(0);
  return first >= 0xdc00 && first <= 0xdfff ? text.slice(1) : text;
}

function capStream(head: string, tail: string, total: number, cap: number): { text: string; totalBytes: number } {
  const headCap = Math.floor(cap / 2);
  const keptHead = utf8Head(head, headCap);
  const headBytes = Buffer.byteLength(keptHead, 'utf8');
  const keptTail = utf8Tail(tail, cap - headBytes);
  return { text: keptHead + keptTail, totalBytes: Math.max(total, headBytes + Buffer.byteLength(keptTail, 'utf8')) };
}

/** stdout/stderr for the outcome: head + tail, re-capped here so no path can exceed the cap. */
export function capOutput(output: OutputSnapshot, maxOutputBytes: number) {
  const stdout = capStream(output.stdoutHead, output.stdoutTail, output.stdoutTotalBytes, maxOutputBytes);
  const stderr = capStream(output.stderrHead, output.stderrTail, output.stderrTotalBytes, maxOutputBytes);
  return {
    stdout: stdout.text,
    stderr: stderr.text,
    stdoutTotalBytes: stdout.totalBytes,
    stderrTotalBytes: stderr.totalBytes,
  };
}

const FRAME = /^ {4}at /;
const TOP_LEVEL_FRAME = /^ {4}at eval \((snippet\.m?js:\d+:\d+)\)$/;

/**
 * The stack of a snippet error, rebuilt: `name: message`, then only the frames inside the isolate
 * up to the last snippet frame. isolated-vm appends `<isolated-vm boundary>` and host frames to the
 * errors it copies out; everything from that line on is dropped, as are the harness's own frames.
 */
export function sandboxStack(name: string, message: string, rawStack: string): string | undefined {
  const frames: string[] = [];
  for (const line of rawStack.split('\n')) {
    if (line.includes('<isolated-vm boundary>')) break;
    if (!FRAME.test(line) || line.includes(HARNESS_FILENAME) || line.includes(ENTRY_FILENAME)) continue;
    frames.push(line.replace(TOP_LEVEL_FRAME, '    at $1'));
  }
  const last = frames.findLastIndex((frame) => frame.includes('snippet.js:') || frame.includes('snippet.mjs:'));
  if (last === -1) return undefined;
  return `${name}: ${message}\n${frames.slice(0, last + 1).join('\n')}`;
}

/** A copied-out error with a longer message is described without its stack (see describeHostCopy). */
const MAX_STACKED_MESSAGE_CHARS = 1024 * 1024;

/** isolated-vm's suffix on a compile error whose location it does not know. */
const UNKNOWN_LOCATION = / \[<isolated-vm>:\d+:\d+\]$/;

function describeParts(name: string, message: string, stack: string, phase: ErrorPhase): ThreadError {
  const error: ThreadError = {
    name: utf8Head(name, MAX_ERROR_NAME_BYTES) || 'Error',
    // The suffix ends a message short enough to keep whole; a longer one is cut before it anyway,
    // and a regex anchored at the end of hundreds of MB would scan all of them.
    message: utf8Head(message.length <= 2 * MAX_ERROR_MESSAGE_BYTES ? message.replace(UNKNOWN_LOCATION, '') : message, MAX_ERROR_MESSAGE_BYTES),
    phase,
  };
  const sandboxed = stack ? sandboxStack(error.name, error.message, utf8Head(stack, MAX_ERROR_STACK_BYTES)) : undefined;
  if (sandboxed) error.stack = sandboxed;
  return error;
}

/** Past this size a thrown BigInt is not printed in decimal (~2,500 digits, more than a message keeps). */
const MAX_PRINTED_BIGINT_BITS = 8192;

/**
 * Describes an error that isolated-vm copied out of the isolate (compile errors, module evaluation
 * errors, unhandled rejections): a host Error built from the guest's strings, or a plain copy.
 */
export function describeHostCopy(thrown: unknown, phase: ErrorPhase): ThreadError {
  // isolated-vm's stand-in for a thrown object that is not an Error (its content is not copied).
  if (thrown instanceof Error && thrown.message.startsWith('An object was thrown from supplied code within isolated-vm')) {
    return { name: 'NonError', message: 'thrown value: an object that is not an Error', phase };
  }
  if (thrown instanceof Error) {
    const message = thrown.message;
    // V8 builds a host error's stack from its message on each read: seconds apiece for a message
    // of hundreds of MB (a module's top-level throw). Past this its frames are not read.
    const stack = message.length > MAX_STACKED_MESSAGE_CHARS ? '' : (thrown.stack ?? '');
    return describeParts(thrown.name, message, stack, phase);
  }
  let text: string;
  try {
    // A BigInt as the script form writes it (JSON.stringify throws on one). Its decimal text costs
    // time quadratic in its size, on this thread and outside the job's limits (2^28 bits: minutes),
    // so a BigInt too large for an error message is only described.
    if (typeof thrown === 'bigint' && BigInt.asIntN(MAX_PRINTED_BIGINT_BITS, thrown) !== thrown) {
      return describeParts('NonError', `thrown value: a BigInt of more than ${MAX_PRINTED_BIGINT_BITS} bits`, '', phase);
    }
    text = typeof thrown === 'string' ? thrown : typeof thrown === 'bigint' ? `${thrown}n` : (JSON.stringify(thrown) ?? String(thrown));
  } catch {
    text = String(thrown);
  }
  return describeParts('NonError', `thrown value: ${utf8Head(text, MAX_ERROR_MESSAGE_BYTES)}`, '', phase);
}

/** The error of a job stopped by a limit or a cancel. */
export function limitError(reason: 'wall' | 'cpu' | 'cancel' | 'memory', limits: Limits): ThreadError {
  switch (reason) {
    case 'wall':
      return { name: 'TimeoutError', message: `wall-clock time limit of ${limits.timeoutMs} ms exceeded`, limit: 'wall' };
    case 'cpu':
      return { name: 'TimeoutError', message: `CPU time limit of ${limits.cpuTimeMs} ms exceeded`, limit: 'cpu' };
    case 'memory':
      return { name: 'MemoryLimitError', message: `isolate heap limit of ${limits.memoryMb} MB exceeded` };
    case 'cancel':
      return { name: 'CancelledError', message: 'The job was cancelled' };
  }
}
