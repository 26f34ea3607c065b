// The threads that take a job's preparation off the event loop of the process taking it (see
// src/prepare-threads.ts): type stripping, which amaro's parser can make take exponential time,
// the pre-screen and form of large code, which acorn's parser can make take seconds, and reading a
// queued job's data whose text is longer than any valid job's unescaped (see readData). Each task
// tells the pool when it starts ({ started: key }): its time bound runs from then.
import { parentPort } from 'node:worker_threads';
import { detectCodeForm } from './code-form.ts';
import { prescreen, type CompiledPrescreenOptions, type PrescreenReport } from './prescreen.ts';
import { stripTypes, warmTypeScript, type StripTypesResult } from './typescript.ts';
import type { CodeForm } from '../workers/protocol.ts';

export interface StripTask {
  source: string;
  /** Posted back ({ started }) once the thread starts on it: the time bound runs from then, not from the queue. */
  key: number;
}

export interface ScreenTask {
  code: string;
  /** As StripTask's. */
  key: number;
  /** Undefined: not screened (screening off, or the operator's own tool code); the form only. */
  options: CompiledPrescreenOptions | undefined;
}

export interface ReadDataTask {
  /** A job's data as Redis holds it: JSON text. */
  text: string;
  /** The most characters the data may take with its escapes undone (see readData). */
  maxChars: number;
  /** As StripTask's. */
  key: number;
}

export type ReadDataOutcome =
  /** Within `maxChars`: the data written again without escapes, for the worker to parse. */
  | { ok: true; text: string }
  | { ok: false; unreadable: true }
  /** `chars` with its escapes undone, more than `maxChars`. */
  | { ok: false; chars: number };

export interface ScreenOutcome {
  report?: PrescreenReport;
  /** How the code runs: from the screen's own parse when it parsed, else from detectCodeForm. */
  form: CodeForm;
}

export function strip({ source, key }: StripTask): StripTypesResult {
  // A new thread (the first strip, or one after a strip ran out of time and its thread was ended),
  // or one whose amaro was dropped, loads it first: off the job's clock, which starts below.
  warmTypeScript();
  // piscina hands a thread's own messages to the pool's 'message' listeners.
  parentPort?.postMessage({ started: key });
  return stripTypes(source);
}

export function screen({ code, options, key }: ScreenTask): ScreenOutcome {
  parentPort?.postMessage({ started: key });
  return screenAndForm(code, options);
}

/**
 * A job's data parsed here rather than on the worker's event loop, and measured as the worker
 * would take it: its code by its length, everything else as JSON written without escapes (as
 * the size limits measure input). Escapes let a producer write a byte in up to 6 characters, so
 * the worker reads text up to 6 times a valid job's size; but text that long with few escapes
 * holds millions of keys, which took seconds of the event loop to parse and check before the job
 * was refused. Data within `maxChars` goes back written plainly (a valid job's size at most).
 */
export function readData({ text, maxChars, key }: ReadDataTask): ReadDataOutcome {
  parentPort?.postMessage({ started: key });
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return { ok: false, unreadable: true };
  }
  let chars: number;
  let plain: string;
  try {
    const code = typeof data === 'object' && data !== null && !Array.isArray(data) ? (data as { code?: unknown }).code : undefined;
    if (typeof code === 'string') {
      // Spreading keeps an own "__proto__" key as the own key JSON.parse made it.
      const { code: _code, ...rest } = data as Record<string, unknown>;
      chars = code.length + JSON.stringify(rest).length;
    } else {
      chars = JSON.stringify(data).length;
    }
    if (chars > maxChars) return { ok: false, chars };
    plain = JSON.stringify(data);
  } catch {
    // Nested deeper than JSON.stringify's stack: no valid job is (its input stops at 1,000 levels).
    return { ok: false, unreadable: true };
  }
  return { ok: true, text: plain };
}

/** The pre-screen's report (when screening) and the code's form, taken from its parse when it made one. */
export function screenAndForm(code: string, options: CompiledPrescreenOptions | undefined): ScreenOutcome {
  if (options === undefined) return { form: detectCodeForm(code) };
  const report = prescreen(code, options);
  const form = report.parsed ? (report.sourceType === 'module' && report.hasDefaultExport === true ? 'module' : 'script') : detectCodeForm(code);
  return { report, form };
}
