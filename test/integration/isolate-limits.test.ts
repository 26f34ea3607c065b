// Every limit the isolate runner owns, each enforced at thread level (in-process, real
// isolated-vm): wall time (sync, async, microtasks), CPU time, memory, cancellation.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { IsolateRunner } from '../../workers/isolate.ts';
import type { ThreadOutcome } from '../../workers/protocol.ts';
import { task, valueOf } from './isolate-helpers.ts';

const board = new Int32Array(new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT * 4));
let runner: IsolateRunner;
beforeAll(async () => {
  runner = new IsolateRunner({ sparesPerThread: 1, cancelBoard: board });
  await runner.ready();
});
afterAll(() => runner.close());

/** After any limit, the runner keeps serving ordinary jobs. */
async function expectStillServing(): Promise<void> {
  const next = await runner.run(task('6 * 7'));
  expect(next.status).toBe('ok');
  expect(valueOf(next)).toBe(42);
}

function expectWallTimeout(outcome: ThreadOutcome): void {
  expect(outcome.status).toBe('timeout');
  expect(outcome.error).toMatchObject({ name: 'TimeoutError', limit: 'wall' });
  expect(outcome.valueJson).toBeUndefined();
}

describe('wall-clock limit', () => {
  test('a synchronous endless loop', async () => {
    const outcome = await runner.run(task('console.log("before"); while (true) {}', { limits: { timeoutMs: 100 } }));
    expectWallTimeout(outcome);
    expect(outcome.stdout).toBe('before\n'); // the isolate survived isolated-vm's timeout: output collected
    await expectStillServing();
  });

  test('a promise that never settles', async () => {
    const outcome = await runner.run(task('console.log("waiting"); new Promise(() => {})', { limits: { timeoutMs: 100 } }));
    expectWallTimeout(outcome);
    expect(outcome.stdout).toBe('waiting\n');
    await expectStillServing();
  });

  test('an awaited chain that never ends', async () => {
    const code = '(async () => { for (;;) await null; })()';
    expectWallTimeout(await runner.run(task(code, { limits: { timeoutMs: 100 } })));
    await expectStillServing();
  });

  test('a microtask flood after the result', async () => {
    const code = 'function flood() { Promise.resolve().then(flood); } flood(); "done"';
    expectWallTimeout(await runner.run(task(code, { limits: { timeoutMs: 100 } })));
    await expectStillServing();
  });

  test('a loop with a microtask flood queued behind it', async () => {
    // isolated-vm's timeout ends the loop; the queued flood then runs in whatever call comes next.
    const code = 'Promise.resolve().then(function f() { Promise.resolve().then(f); }); for (;;) {}';
    expectWallTimeout(await runner.run(task(code, { limits: { timeoutMs: 100 } })));
    await expectStillServing();
  });

  test('a module whose top-level await never settles', async () => {
    const code = 'export default await new Promise(() => {});';
    expectWallTimeout(await runner.run(task(code, { form: 'module', limits: { timeoutMs: 100 } })));
    await expectStillServing();
  });

  test('a module default export that loops', async () => {
    const code = 'export default () => { while (true) {} };';
    expectWallTimeout(await runner.run(task(code, { form: 'module', limits: { timeoutMs: 100 } })));
    await expectStillServing();
  });
});

describe('CPU-time limit', () => {
  test('a busy loop stops at the CPU limit before the wall limit', async () => {
    const outcome = await runner.run(task('console.log("spinning"); while (true) {}', { limits: { cpuTimeMs: 50, timeoutMs: 10_000 } }));
    expect(outcome.status).toBe('timeout');
    expect(outcome.error).toMatchObject({ name: 'TimeoutError', limit: 'cpu' });
    expect(outcome.stdout).toBe('spinning\n');
    expect(outcome.cpuTimeMs).toBeGreaterThanOrEqual(50);
    await expectStillServing();
  });

  test('CPU burnt in microtasks counts too', async () => {
    const code = '(async () => { for (;;) { await null; for (let i = 0; i < 1e4; i++); } })()';
    const outcome = await runner.run(task(code, { limits: { cpuTimeMs: 50, timeoutMs: 10_000 } }));
    expect(outcome.error?.limit).toBe('cpu');
    await expectStillServing();
  });
});

describe('memory limit', () => {
  test('a growing heap ends as memory_limit', async () => {
    const code = 'const keep = []; for (;;) keep.push(new Array(1e5).fill(1));';
    const outcome = await runner.run(task(code, { limits: { memoryMb: 16 } }));
    expect(outcome.status).toBe('memory_limit');
    expect(outcome.error).toMatchObject({ name: 'MemoryLimitError' });
    await expectStillServing();
  });
});

describe('cancellation', () => {
  test('a running job stops when its board slot is set', async () => {
    board[1] = 0;
    const running = runner.run(task('console.log("started"); while (true) {}', { cancelSlot: 1, limits: { timeoutMs: 10_000, cpuTimeMs: 10_000 } }));
    setTimeout(() => Atomics.store(board, 1, 1), 50);
    const outcome = await running;
    expect(outcome.status).toBe('cancelled');
    expect(outcome.error?.name).toBe('CancelledError');
    expect(outcome.stdout).toBe('started\n'); // handed over before the loop: kept though the isolate was killed
    expect(Atomics.load(board, 1)).toBe(1); // the runner resets nothing: the executor owns the board
    Atomics.store(board, 1, 0);
    await expectStillServing();
  });

  test('a job waiting on a promise is cancelled too, with its output', async () => {
    const running = runner.run(task('console.log("parked"); new Promise(() => {})', { cancelSlot: 2, limits: { timeoutMs: 10_000 } }));
    setTimeout(() => Atomics.store(board, 2, 1), 50);
    const outcome = await running;
    expect(outcome.status).toBe('cancelled');
    expect(outcome.stdout).toBe('parked\n');
    Atomics.store(board, 2, 0);
  });

  test('a job cancelled before it starts never runs', async () => {
    Atomics.store(board, 3, 1);
    const before = runner.stats();
    const outcome = await runner.run(task('console.log("ran")', { cancelSlot: 3 }));
    expect(outcome.status).toBe('cancelled');
    expect(outcome.stdout).toBe('');
    const after = runner.stats();
    expect(after.sparesTaken + after.inlineMade).toBe(before.sparesTaken + before.inlineMade);
    Atomics.store(board, 3, 0);
  });

  test('a slot outside the board is never read as cancelled', async () => {
    const outcome = await runner.run(task('1', { cancelSlot: 99 }));
    expect(outcome.status).toBe('ok');
  });
});
