// The thread that strips types (src/typescript.ts, stripTypesWithin): amaro runs here, off the
// caller's event loop, where its time can be bounded by ending the thread.
import type { MessagePort } from 'node:worker_threads';
import { stripTypes, type StripTypesResult } from './typescript.ts';

export interface StripTask {
  source: string;
  /** Told once the thread starts on this task: the time bound runs from then, not from the queue. */
  started: MessagePort;
}

export default function strip({ source, started }: StripTask): StripTypesResult {
  started.postMessage(0);
  started.close();
  return stripTypes(source);
}
