// Timers at thread level (in-process, real isolated-vm): setTimeout and friends exist inside the
// isolate only, run in virtual time driven by the harness, and stay bounded by the job's limits.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { IsolateRunner } from '../../workers/isolate.ts';
import { task, valueOf } from './isolate-helpers.ts';

let runner: IsolateRunner;
beforeAll(async () => {
  runner = new IsolateRunner({ sparesPerThread: 1 });
  await runner.ready();
});
afterAll(() => runner.close());

describe('virtual-time timers', () => {
  test('a long sleep resumes without waiting', async () => {
    const code = '(async () => { const t0 = Date.now(); await new Promise((r) => setTimeout(r, 60_000)); return Date.now() - t0 < 60_000; })()';
    const outcome = await runner.run(task(code, { limits: { timeoutMs: 1_000 } }));
    expect(outcome.status).toBe('ok');
    expect(valueOf(outcome)).toBe(true);
  });

  test('timers fire in due order, ties in creation order, with their arguments', async () => {
    const code = `const order = [];
      setTimeout((x) => order.push(x), 20, 'b');
      setTimeout((x) => order.push(x), 10, 'a');
      setTimeout((x) => order.push(x), 20, 'c');
      Promise.resolve().then(() => order.push('micro'));
      new Promise((r) => setTimeout(() => r(order), 30))`;
    expect(valueOf(await runner.run(task(code)))).toEqual(['micro', 'a', 'b', 'c']);
  });

  test('microtasks of one timer run before the next timer', async () => {
    const code = `const order = [];
      setTimeout(() => { order.push('t1'); Promise.resolve().then(() => order.push('t1 micro')); }, 1);
      setTimeout(() => order.push('t2'), 1);
      new Promise((r) => setTimeout(() => r(order), 2))`;
    expect(valueOf(await runner.run(task(code)))).toEqual(['t1', 't1 micro', 't2']);
  });

  test('intervals repeat until cleared, and cleared timers never fire', async () => {
    const code = `let n = 0;
      const never = setTimeout(() => { throw new Error('cleared timer fired'); }, 5);
      clearTimeout(never);
      new Promise((r) => { const id = setInterval(() => { if (++n === 5) { clearInterval(id); r(n); } }, 100); })`;
    expect(valueOf(await runner.run(task(code)))).toBe(5);
  });

  test('queueMicrotask runs before the job ends', async () => {
    const outcome = await runner.run(task('queueMicrotask(() => console.log("micro")); "sync"'));
    expect(outcome.stdout).toBe('micro\n');
    expect(valueOf(outcome)).toBe('sync');
  });

  test('module snippets can wait on timers at top level and in the default export', async () => {
    const code = 'await new Promise((r) => setTimeout(r, 50));\nexport default async () => { await new Promise((r) => setTimeout(r, 50)); return "module"; };';
    expect(valueOf(await runner.run(task(code, { form: 'module' })))).toBe('module');
  });

  test('a timer callback that throws ends the job with its error', async () => {
    const outcome = await runner.run(task('setTimeout(() => { throw new RangeError("in timer"); }, 5); new Promise(() => {})'));
    expect(outcome.status).toBe('error');
    expect(outcome.error).toMatchObject({ name: 'RangeError', message: 'in timer', phase: 'runtime' });
  });

  test('code strings are refused', async () => {
    const outcome = await runner.run(task('setTimeout("globalThis.ran = true", 1)'));
    expect(outcome.status).toBe('error');
    expect(outcome.error?.name).toBe('TypeError');
  });

  test('timers still pending when the result is ready never run', async () => {
    const outcome = await runner.run(task('setTimeout(() => console.log("late"), 10); "ready"'));
    expect(valueOf(outcome)).toBe('ready');
    expect(outcome.stdout).toBe('');
  });
});

describe('limits', () => {
  test('an interval that is never cleared ends at the wall limit', async () => {
    const outcome = await runner.run(task('setInterval(() => {}, 1); new Promise(() => {})', { limits: { timeoutMs: 200 } }));
    expect(outcome.status).toBe('timeout');
    expect(outcome.error?.limit).toBe('wall');
    expect(valueOf(await runner.run(task('"still serving"')))).toBe('still serving');
  });

  test('a timer that spins ends at the CPU limit', async () => {
    const outcome = await runner.run(task('setTimeout(() => { for (;;) {} }, 1); new Promise(() => {})', { limits: { cpuTimeMs: 50, timeoutMs: 10_000 } }));
    expect(outcome.status).toBe('timeout');
    expect(outcome.error?.limit).toBe('cpu');
  });

  test("empty timers without end are charged this thread's CPU for their ticks, and end at the CPU limit", async () => {
    // The runner runs on this thread (the isolate on isolated-vm's own): what this thread spends is
    // the ticks' host side, which the isolate's clock does not see. Uncharged, it came to 1.5-4x the limit.
    const before = process.threadCpuUsage();
    const outcome = await runner.run(task('setInterval(() => {}, 1); new Promise(() => {})', { limits: { cpuTimeMs: 300, timeoutMs: 20_000 } }));
    const used = process.threadCpuUsage(before);
    expect(outcome.status).toBe('timeout');
    expect(outcome.error?.limit).toBe('cpu');
    expect(outcome.cpuTimeMs).toBeGreaterThanOrEqual(300);
    // The host's share is within the limit (the poll that notices it comes every 5 ms).
    expect((used.user + used.system) / 1000).toBeLessThan(300 + 100);
    expect(valueOf(await runner.run(task('"still serving"')))).toBe('still serving');
  });

  test('timers scheduled without end keep within the wall limit', async () => {
    const code = 'function again() { setTimeout(again, 0); setTimeout(again, 0); } again(); new Promise(() => {})';
    const outcome = await runner.run(task(code, { limits: { timeoutMs: 200 } }));
    expect(['timeout', 'memory_limit']).toContain(outcome.status);
  });
});
