// Runs on a piscina worker thread inside an executor child process (workers/executor.ts names
// this file as its pool's task module): piscina calls the default export once per task.
// One IsolateRunner per thread keeps that thread's spare isolates; the runner never throws for
// anything a snippet did, so a rejection from here is always an infrastructure failure.
import { isMainThread, workerData } from 'node:worker_threads';
import { z } from 'zod';
import { IsolateRunner } from './isolate.ts';
import type { ThreadData, ThreadOutcome, ThreadTask } from './protocol.ts';

if (isMainThread) {
  throw new Error('workers/thread.ts is a piscina task module: load it in a worker thread (tests use workers/isolate.ts)');
}

const count = z.number().int().nonnegative();
const ThreadDataSchema = z.object({
  cancelBoard: z.instanceof(SharedArrayBuffer),
  sentBoard: z.instanceof(SharedArrayBuffer),
  sparesPerThread: count.max(64),
});

// The task is the thread's edge: the executor validated the request, this checks the message.
// By hand rather than with zod: on a thread idle between jobs a zod parse of the task took ~0.13 ms,
// a third of the hop into the thread; these checks are the same, field by field.
type LimitField = keyof ThreadTask['limits'];
const LIMIT_MINIMUMS: ReadonlyArray<readonly [LimitField, number]> = [
  ['timeoutMs', 1],
  ['cpuTimeMs', 1],
  ['memoryMb', 8],
  ['maxOutputBytes', 0],
  ['maxResultBytes', 1],
];

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null;

/** The task rebuilt from its known fields only, or what is wrong with the message. */
function readTask(message: unknown): ThreadTask | string {
  if (!isRecord(message)) return 'expected an object';
  const { id, code, form, inputJson, limits, cancelSlot } = message;
  if (typeof id !== 'string') return 'id: expected a string';
  if (typeof code !== 'string') return 'code: expected a string';
  if (form !== 'script' && form !== 'module') return "form: expected 'script' or 'module'";
  if (inputJson !== undefined && typeof inputJson !== 'string') return 'inputJson: expected a string or nothing';
  if (!Number.isSafeInteger(cancelSlot)) return 'cancelSlot: expected an integer';
  if (!isRecord(limits)) return 'limits: expected an object';
  for (const [field, min] of LIMIT_MINIMUMS) {
    const value = limits[field];
    if (!Number.isSafeInteger(value) || (value as number) < min) return `limits.${field}: expected an integer >= ${min}`;
  }
  return {
    id,
    code,
    form,
    inputJson,
    limits: {
      timeoutMs: limits.timeoutMs as number,
      cpuTimeMs: limits.cpuTimeMs as number,
      memoryMb: limits.memoryMb as number,
      maxOutputBytes: limits.maxOutputBytes as number,
      maxResultBytes: limits.maxResultBytes as number,
    },
    cancelSlot: cancelSlot as number,
  };
}

function readThreadData(data: unknown): ThreadData {
  const parsed = ThreadDataSchema.safeParse(data);
  if (!parsed.success) {
    throw new Error(`workers/thread.ts: bad workerData: ${z.prettifyError(parsed.error)}`, { cause: parsed.error });
  }
  return parsed.data;
}

const data = readThreadData(workerData);
const runner = new IsolateRunner({
  cancelBoard: new Int32Array(data.cancelBoard),
  sentBoard: new Int32Array(data.sentBoard),
  sparesPerThread: data.sparesPerThread,
  // This thread is an executor's: it can be terminated, and the executor ended (see executor.ts).
  syncCalls: true,
});

export default async function runTask(message: unknown): Promise<ThreadOutcome> {
  const task = readTask(message);
  if (typeof task === 'string') throw new Error(`workers/thread.ts: bad task: ${task}`);
  return runner.run(task);
}
