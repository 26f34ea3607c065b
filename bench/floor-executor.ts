// The bench's floor for sandpool's shape (bench/engine.ts forks it): a child process holding one
// worker thread (bench/floor-thread.ts) that runs each snippet in an isolate made in advance, and
// nothing else — no validation, pre-screen, harness, console, limits beyond isolated-vm's own
// timeout, supervision or metrics. A job's trip caller → process → thread → isolate and back is
// what sandpool's own trip costs at the least on this machine.
import { Worker } from 'node:worker_threads';

if (typeof process.send !== 'function') {
  process.stderr.write('bench/floor-executor.ts is forked by bench/engine.ts (it needs an IPC channel)\n');
  process.exit(64);
}
const send = process.send.bind(process);
const thread = new Worker(new URL('./floor-thread.ts', import.meta.url));
thread.on('message', (message: unknown) => send(message));
thread.on('error', (error) => {
  process.stderr.write(`floor thread failed: ${error.message}\n`);
  process.exit(1);
});
process.on('message', (message: unknown) => thread.postMessage(message));
process.on('disconnect', () => process.exit(0));
