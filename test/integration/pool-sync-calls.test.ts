// Jobs whose limits let their thread call the isolate synchronously (cpuTimeMs at or above
// timeoutMs, as the defaults are; see runJob in workers/isolate.ts), through real executors, beside
// the same jobs with asynchronous calls: the guest's stack, output the job's callbacks deliver after
// a synchronous call returned, and what a limit or a cancel does to a call that holds its thread.
// Thread-level tests (isolate-*.test.ts) run their isolates on vitest's own thread, which nothing
// could free from a call that never returns, so they take the asynchronous calls.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool, type Pool } from '../../src/pool.ts';
import { isAlive } from '../helpers/process.ts';

const DEEP = 'function r(n) { return n === 0 ? 0 : 1 + r(n - 1) }';
/** cpuTimeMs below timeoutMs: the thread's poll must watch CPU, so the calls stay asynchronous. */
const ASYNC_LIMITS = { timeoutMs: 5_000, cpuTimeMs: 4_000 };
const BOTH = [undefined, ASYNC_LIMITS];

describe('synchronous isolate calls', () => {
  let pool: Pool;
  beforeAll(async () => {
    pool = await createPool({ executors: 1, threadsPerExecutor: 1 });
  });
  afterAll(async () => {
    await pool.close();
  });

  it('recursion runs, overflow is a RangeError, a result nested too deep an error, as with asynchronous calls', async () => {
    for (const limits of BOTH) {
      expect(await pool.execute({ code: `${DEEP} r(5000)`, limits })).toMatchObject({ status: 'ok', value: 5_000 });
      expect(await pool.execute({ code: `${DEEP}\nexport default (n) => r(n)`, input: 5_000, limits })).toMatchObject({
        status: 'ok',
        value: 5_000,
      });
      expect(await pool.execute({ code: 'function r() { return r() + 1 } r()', limits })).toMatchObject({
        status: 'error',
        error: { name: 'RangeError', phase: 'runtime' },
      });
      const allowed = await pool.execute({ code: `JSON.parse('${'['.repeat(1000)}${']'.repeat(1000)}')`, limits });
      expect(allowed.status).toBe('ok');
      const nested = await pool.execute({ code: `JSON.parse('${'['.repeat(3000)}${']'.repeat(3000)}')`, limits });
      expect(nested).toMatchObject({ status: 'error', error: { phase: 'result' } });
    }
  });

  it('output printed by microtasks after the result settled is kept, in both forms', async () => {
    for (const limits of BOTH) {
      const script = await pool.execute({ code: 'Promise.resolve().then(() => console.log("late")); "first"', limits });
      expect(script).toMatchObject({ status: 'ok', value: 'first', stdout: 'late\n' });
      const module = await pool.execute({ code: 'export default () => { Promise.resolve().then(() => console.error("late")); return 1 }', limits });
      expect(module).toMatchObject({ status: 'ok', value: 1, stderr: 'late\n' });
      // The result a promise: it settles after the call, and the output after that.
      const chained = 'Promise.resolve().then(() => 0).then(() => console.log("later")); Promise.resolve(2)';
      expect(await pool.execute({ code: chained, limits })).toMatchObject({ status: 'ok', value: 2, stdout: 'later\n' });
      const modulePromise = 'export default () => { Promise.resolve().then(() => 0).then(() => console.log("later")); return Promise.resolve(3) }';
      expect(await pool.execute({ code: modulePromise, limits })).toMatchObject({ status: 'ok', value: 3, stdout: 'later\n' });
      expect(await pool.execute({ code: '"next"', limits })).toMatchObject({ status: 'ok', value: 'next', stdout: '', stderr: '' });
    }
  });

  it('a job stopped by its memory limit keeps what it printed before', async () => {
    for (const limits of BOTH) {
      const code = 'console.log("before"); console.error("err-before"); const a = []; for (let i = 0; ; i++) a.push({ i })';
      const result = await pool.execute({ code, limits: { ...limits, memoryMb: 16 } });
      expect(result).toMatchObject({ status: 'memory_limit', stdout: 'before\n', stderr: 'err-before\n' });
      // The isolate's clock went with it; the CPU it burnt is still counted (it read 0 before).
      expect(result.metrics.cpuTimeMs).toBeGreaterThan(0);
      expect(result.metrics.cpuTimeMs).toBeLessThanOrEqual(result.metrics.wallTimeMs + 5);
    }
  });

  it('a module that throws at its top level keeps the tail of all it printed', async () => {
    const code = `const t0 = Date.now(); let i = 0;
      while (Date.now() - t0 < 400) console.log('line ' + i++ + '.'.repeat(100));
      console.log('last line'); throw new Error('boom');
      export default 1;`;
    for (const limits of BOTH) {
      const result = await pool.execute({ code, limits });
      expect(result).toMatchObject({ status: 'error', error: { message: 'boom' } });
      // Printed after the tail was last handed over: read afresh from the isolate, not lost.
      expect(result.stdout.endsWith('.\nlast line\n')).toBe(true);
      expect(result.output.stdout.totalBytes).toBeGreaterThan(64 * 1024);
    }
  });

  it('a job lost to its memory limit keeps the tail last handed over: during synchronous calls the handovers back off', async () => {
    // Prints the time since it began for ~1 s, then fills its heap. The tail is whatever the
    // harness handed over last: every 0.1 s while the thread is free to read it (asynchronous calls,
    // timer ticks); while a synchronous call holds the thread, at 0, 0.1, 0.3, 0.7 s, then 1.5 s.
    const print = "for (let k = 0; k < 50; k++) console.log('ms ' + (Date.now() - t0));";
    const fill = 'const a = []; for (;;) a.push({ n: a.length });';
    const plain = `const t0 = Date.now(); while (Date.now() - t0 < 1000) { ${print} } ${fill}`;
    const jobs = [
      { name: 'sync script', code: plain, limits: undefined, backsOff: true },
      { name: 'sync module', code: `${plain}\nexport default 1;`, limits: undefined, backsOff: true },
      { name: 'async script', code: plain, limits: ASYNC_LIMITS, backsOff: false },
      // Synchronous calls first (a little printing), then timer ticks: asynchronous calls.
      {
        name: 'sync, then timers',
        code: `const t0 = Date.now(); ${print} const step = () => { ${print} if (Date.now() - t0 < 1000) setTimeout(step, 0); else { ${fill} } }; new Promise(() => setTimeout(step, 0))`,
        limits: undefined,
        backsOff: false,
      },
    ];
    for (const job of jobs) {
      const result = await pool.execute({ code: job.code, limits: { ...job.limits, memoryMb: 16 } });
      expect(result.status, job.name).toBe('memory_limit');
      const last = Number(/ms (\d+)\n$/.exec(result.stdout)?.[1]);
      if (job.backsOff) {
        expect(last, job.name).toBeGreaterThanOrEqual(650);
        expect(last, job.name).toBeLessThan(850);
      } else {
        expect(last, job.name).toBeGreaterThanOrEqual(850);
      }
    }
  });

  it('the wall limit stops a synchronous loop with its output so far, and the thread serves on', async () => {
    const first = await pool.execute({ code: '1' });
    const spin = await pool.execute({ code: 'console.log("before"); for (;;) {}', limits: { timeoutMs: 300 } });
    expect(spin).toMatchObject({ status: 'timeout', error: { limit: 'wall' }, stdout: 'before\n' });
    const next = await pool.execute({ code: '2' });
    expect(next).toMatchObject({ status: 'ok', value: 2 });
    expect(next.metrics.worker.pid).toBe(first.metrics.worker.pid);
  });

  it('a cancel ends a synchronous loop by replacing its thread; with its deadline far, the executor is retired', { timeout: 30_000 }, async () => {
    const first = await pool.execute({ code: '1' });
    const controller = new AbortController();
    const started = performance.now();
    const running = pool.execute({ code: 'for (;;) {}', limits: { timeoutMs: 20_000, cpuTimeMs: 20_000 } }, { signal: controller.signal });
    setTimeout(() => controller.abort(), 200);
    const cancelled = await running;
    expect(cancelled).toMatchObject({ status: 'cancelled' });
    // Its thread was busy until terminated: that time is its CPU figure, not 0.
    expect(cancelled.metrics.cpuTimeMs).toBeGreaterThan(100);
    // Answered at the cancel grace, not at the job's own limit.
    expect(performance.now() - started).toBeLessThan(10_000);
    // Nothing stops the terminated thread's call before that limit: its executor is replaced at
    // once, and ends, thread and all, once it holds no job.
    const next = await pool.execute({ code: '2' });
    expect(next).toMatchObject({ status: 'ok', value: 2 });
    expect(next.metrics.worker.pid).not.toBe(first.metrics.worker.pid);
    const oldPid = first.metrics.worker.pid;
    await expect.poll(() => isAlive(oldPid), { timeout: 10_000, interval: 100 }).toBe(false);
  });

  it('a cancelled synchronous loop whose deadline is near keeps its executor', { timeout: 30_000 }, async () => {
    const first = await pool.execute({ code: '1' });
    const controller = new AbortController();
    const running = pool.execute({ code: 'for (;;) {}', limits: { timeoutMs: 1_000 } }, { signal: controller.signal });
    setTimeout(() => controller.abort(), 200);
    expect(await running).toMatchObject({ status: 'cancelled' });
    const next = await pool.execute({ code: '2' });
    expect(next).toMatchObject({ status: 'ok', value: 2 });
    expect(next.metrics.worker.pid).toBe(first.metrics.worker.pid);
  });
});
