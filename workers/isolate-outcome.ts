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
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= maxBytes) return text;
  let end = Math.max(0, maxBytes);
  while (end > 0 && ((bytes[end] ?? 0) & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end).toString('utf8');
}

/** Longest suffix of `text` within `maxBytes` of UTF-8, never splitting a character. */
export function utf8Tail(text: string, maxBytes: number): string {
  if (text.length * 3 <= maxBytes) return text;
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= maxBytes) return text;
  let start = bytes.length - Math.max(0, maxBytes);
  while (start < bytes.length && ((bytes[start] ?? 0) & 0xc0) === 0x80) start++;
  return bytes.subarray(start).toString('utf8');
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

/** isolated-vm's suffix on a compile error whose location it does not know. */
const UNKNOWN_LOCATION = / \[<isolated-vm>:\d+:\d+\]$/;

function describeParts(name: string, message: string, stack: string, phase: ErrorPhase): ThreadError {
  const error: ThreadError = {
    name: utf8Head(name, MAX_ERROR_NAME_BYTES) || 'Error',
    message: utf8Head(message.replace(UNKNOWN_LOCATION, ''), MAX_ERROR_MESSAGE_BYTES),
    phase,
  };
  const sandboxed = stack ? sandboxStack(error.name, error.message, utf8Head(stack, MAX_ERROR_STACK_BYTES)) : undefined;
  if (sandboxed) error.stack = sandboxed;
  return error;
}

/**
 * Describes an error that isolated-vm copied out of the isolate (compile errors, module evaluation
 * errors, unhandled rejections): a host Error built from the guest's strings, or a plain copy.
 */
export function describeHostCopy(thrown: unknown, phase: ErrorPhase): ThreadError {
  // isolated-vm's stand-in for a thrown object that is not an Error (its content is not copied).
  if (thrown instanceof Error && thrown.message.startsWith('An object was thrown from supplied code within isolated-vm')) {
    return { name: 'NonError', message: 'thrown value: an object that is not an Error', phase };
  }
  if (thrown instanceof Error) return describeParts(thrown.name, thrown.message, thrown.stack ?? '', phase);
  let text: string;
  try {
    text = typeof thrown === 'string' ? thrown : (JSON.stringify(thrown) ?? String(thrown));
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
