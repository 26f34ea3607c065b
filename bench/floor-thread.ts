// The floor's thread (see bench/floor-executor.ts): one spare isolate and context, made after each
// job once its answer is posted; a job that finds none makes its own.
import ivm from 'isolated-vm';
import { parentPort } from 'node:worker_threads';
import { DEFAULT_LIMITS } from '../src/limits.ts';

interface Prepared {
  isolate: ivm.Isolate;
  context: ivm.Context;
}

async function prepare(): Promise<Prepared> {
  const isolate = new ivm.Isolate({ memoryLimit: DEFAULT_LIMITS.memoryMb });
  return { isolate, context: await isolate.createContext() };
}

const port = parentPort;
if (port === null) throw new Error('bench/floor-thread.ts runs in a worker thread');
let spare: Prepared | undefined = await prepare();

port.on('message', async (message: { id: number; code: string }) => {
  const prepared = spare ?? (await prepare());
  spare = undefined;
  try {
    const script = await prepared.isolate.compileScript(message.code);
    const value: unknown = await script.run(prepared.context, { timeout: DEFAULT_LIMITS.timeoutMs, copy: true });
    port.postMessage({ id: message.id, value });
  } catch (error) {
    port.postMessage({ id: message.id, error: String(error) });
  }
  setImmediate(async () => {
    prepared.isolate.dispose();
    spare ??= await prepare();
  });
});
port.postMessage({ ready: true });
