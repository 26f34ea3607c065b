// The threads that take a job's preparation off the event loop of the process taking it (see
// src/prepare-threads.ts): type stripping, which amaro's parser can make take exponential time,
// and the pre-screen of large code, linear but up to a second and more for the largest.
import type { MessagePort } from 'node:worker_threads';
import { prescreen, type CompiledPrescreenOptions, type PrescreenReport } from './prescreen.ts';
import { stripTypes, type StripTypesResult } from './typescript.ts';

export interface StripTask {
  source: string;
  /** Told once the thread starts on this task: the time bound runs from then, not from the queue. */
  started: MessagePort;
}

export interface ScreenTask {
  code: string;
  options: CompiledPrescreenOptions;
}

export function strip({ source, started }: StripTask): StripTypesResult {
  started.postMessage(0);
  started.close();
  return stripTypes(source);
}

export function screen({ code, options }: ScreenTask): PrescreenReport {
  return prescreen(code, options);
}
