// The threads that take a job's preparation off the event loop of the process taking it (see
// src/prepare-threads.ts): type stripping, which amaro's parser can make take exponential time,
// and the pre-screen and form of large code, which acorn's parser can make take seconds. Each task
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

/** The pre-screen's report (when screening) and the code's form, taken from its parse when it made one. */
export function screenAndForm(code: string, options: CompiledPrescreenOptions | undefined): ScreenOutcome {
  if (options === undefined) return { form: detectCodeForm(code) };
  const report = prescreen(code, options);
  const form = report.parsed ? (report.sourceType === 'module' && report.hasDefaultExport === true ? 'module' : 'script') : detectCodeForm(code);
  return { report, form };
}
