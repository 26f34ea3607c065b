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
  sparesPerThread: count.max(64),
});

// The task is the thread's edge: the executor validated the request, this checks the message.
const ThreadTaskSchema = z.object({
  id: z.string(),
  code: z.string(),
  form: z.enum(['script', 'module']),
  inputJson: z.string().optional(),
  limits: z.object({
    timeoutMs: count.min(1),
    cpuTimeMs: count.min(1),
    memoryMb: count.min(8),
    maxOutputBytes: count,
    maxResultBytes: count.min(1),
  }),
  cancelSlot: z.number().int(),
});

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
  sparesPerThread: data.sparesPerThread,
});

export default async function runTask(message: unknown): Promise<ThreadOutcome> {
  const parsed = ThreadTaskSchema.safeParse(message);
  if (!parsed.success) {
    throw new Error(`workers/thread.ts: bad task: ${z.prettifyError(parsed.error)}`, { cause: parsed.error });
  }
  const task: ThreadTask = { ...parsed.data, inputJson: parsed.data.inputJson };
  return runner.run(task);
}
