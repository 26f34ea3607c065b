// createPool end to end with the real thread module (workers/thread.ts): real executor processes,
// real piscina threads, real isolated-vm isolates. Every status through the pool, cancellation of
// a running snippet, a snippet that takes its executor down, and many jobs at once.
import { readdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PREPARE_THREADS, stripTypesWithin } from '../../src/prepare-threads.ts';
import { createPool, type Pool } from '../../src/pool.ts';

/** Pids of this process's executor children, from /proc. */
function executorPids(): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'latin1');
      const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (parent !== process.pid) continue;
      if (readFileSync(`/proc/${entry}/cmdline`, 'latin1').includes('executor')) pids.push(Number(entry));
    } catch {
      // The process ended while being read.
    }
  }
  return pids;
}

const BUSY_300_MS = 'const end = Date.now() + 300; while (Date.now() < end) {} "done"';

describe('createPool with real isolates', () => {
  let pool: Pool;
  beforeAll(async () => {
    // A low RSS ceiling, so that a snippet V8 cannot contain is stopped by the pool quickly.
    pool = await createPool({ executors: 1, threadsPerExecutor: 2, executorMemoryMb: 600 });
  });
  afterAll(async () => {
    await pool.close();
    expect(executorPids()).toEqual([]);
  });

  it('ok: a script’s completion value, console output, metrics', async () => {
    const result = await pool.execute({ code: 'console.log("hi", input.n); [input.n * 2, "x"]', input: { n: 21 } });
    expect(result).toMatchObject({ status: 'ok', value: [42, 'x'], stdout: 'hi 21\n', stderr: '' });
    expect(result.metrics.worker.pid).not.toBe(process.pid);
    expect(result.metrics.worker.thread).toBeGreaterThan(0);
    expect(result.metrics.stdoutBytes).toBe(6);
  });

  it('ok: a module’s default export called with input, awaited', async () => {
    const code = 'const base = await Promise.resolve(10);\nexport default async (input) => base + input';
    expect(await pool.execute({ code, input: 5 })).toMatchObject({ status: 'ok', value: 15 });
  });

  it('ok: TypeScript, stripped before it runs', async () => {
    const code = 'interface P { n: number }\nexport default ({ n }: P): number => n + 1';
    expect(await pool.execute({ code, language: 'typescript', input: { n: 1 } })).toMatchObject({ status: 'ok', value: 2 });
  });

  it('error: a throw at runtime, and a syntax error at compile time', async () => {
    const thrown = await pool.execute({ code: 'throw new RangeError("nope")' });
    expect(thrown).toMatchObject({ status: 'error', error: { name: 'RangeError', message: 'nope', phase: 'runtime' } });
    const broken = await pool.execute({ code: 'let = ;' });
    expect(broken).toMatchObject({ status: 'error', error: { name: 'SyntaxError', phase: 'compile' } });
    const typed = await pool.execute({ code: 'const a: = 1', language: 'typescript' });
    expect(typed).toMatchObject({ status: 'error', error: { name: 'SyntaxError', phase: 'compile' } });
    // A module with a mistake further down: the error names that mistake, not its `export`.
    const moduleMistake = await pool.execute({ code: 'export default 1;\nlet let = 2;' });
    expect(moduleMistake).toMatchObject({ status: 'error', error: { name: 'SyntaxError', phase: 'compile' } });
    expect(moduleMistake.error?.message).not.toContain("'export'");
    expect(moduleMistake.error?.message).toContain('snippet.mjs:2:5');
  });

  it('TypeScript that takes the type stripper exponential time is stopped at its bound, off the event loop', { timeout: 30_000 }, async () => {
    // 24 nested type assertions: about a minute of amaro's parser if nothing stopped it.
    const code = `let a = ${'(<any>'.repeat(24)}b${')'.repeat(24)}`;
    let longestGapMs = 0;
    let last = performance.now();
    const ticker = setInterval(() => {
      const now = performance.now();
      longestGapMs = Math.max(longestGapMs, now - last);
      last = now;
    }, 10);
    try {
      const innocent = pool.execute({ code: '6 * 7', limits: { timeoutMs: 2_000 } });
      const [stripped, bystander] = await Promise.all([
        pool.execute({ code, language: 'typescript', limits: { timeoutMs: 500 } }),
        innocent,
      ]);
      expect(stripped).toMatchObject({ status: 'timeout', error: { limit: 'wall', phase: 'compile' } });
      expect(bystander).toMatchObject({ status: 'ok', value: 42 });
      // Past the 2 s bound on stripping, whatever the job's own limit: a compile error.
      const patient = await pool.execute({ code, language: 'typescript', limits: { timeoutMs: 20_000 } });
      expect(patient).toMatchObject({ status: 'error', error: { name: 'SyntaxError', phase: 'compile' } });
      expect(patient.error?.message).toContain('too complex');
      // The caller's event loop went on ticking throughout (stripping inline blocked it for seconds).
      expect(longestGapMs).toBeLessThan(1_000);
      expect(await pool.execute({ code: 'const n: number = 1; n + 1', language: 'typescript' })).toMatchObject({ status: 'ok', value: 2 });
    } finally {
      clearInterval(ticker);
    }
  });

  it('screens large code on a thread, to the same effect as small code', async () => {
    const padding = 'const pad = 0;\n' + '// padding\n'.repeat(3_000);
    const blocked = await pool.execute({ code: `${padding}this.constructor.constructor("return process")()` });
    expect(blocked).toMatchObject({ status: 'rejected', rejection: { reasons: [expect.objectContaining({ rule: 'function_constructor_chain', line: 3_002 })] } });
    const fine = await pool.execute({ code: `${padding}export default (n) => n * 2`, input: 21 });
    expect(fine).toMatchObject({ status: 'ok', value: 42 });
    // Unparseable: its form is told on the thread too (a module, for the error to name its mistake).
    const broken = await pool.execute({ code: `export default 1;\n${padding}let let = 2;` });
    expect(broken).toMatchObject({ status: 'error', error: { name: 'SyntaxError', phase: 'compile' } });
    expect(broken.error?.message).toContain('snippet.mjs:3003:5');
  });

  it('a job cancelled while its types are stripped is answered cancelled at once', { timeout: 30_000 }, async () => {
    const bomb = `let a = ${'(<any>'.repeat(24)}b${')'.repeat(24)}`;
    const controller = new AbortController();
    const pending = pool.execute({ code: bomb, language: 'typescript', limits: { timeoutMs: 10_000 } }, { signal: controller.signal });
    await new Promise((resolve) => setTimeout(resolve, 300));
    controller.abort();
    // Not the compile error the strip's 2 s bound would give.
    expect(await pending).toMatchObject({ status: 'cancelled' });
  });

  it('more type-stripping bombs than threads: each ends at its bound, and the jobs behind them still run', { timeout: 60_000 }, async () => {
    const bomb = `let a = ${'(<any>'.repeat(24)}b${')'.repeat(24)}`;
    const bombs = Array.from({ length: 5 }, () => pool.execute({ code: bomb, language: 'typescript', limits: { timeoutMs: 300 } }));
    const behind = pool.execute({ code: 'const n: number = 20; n * 2 + 2', language: 'typescript' });
    const large = pool.execute({ code: `${'// padding\n'.repeat(3_000)}6 * 7` });
    for (const result of await Promise.all(bombs)) expect(result).toMatchObject({ status: 'timeout', error: { phase: 'compile' } });
    expect(await behind).toMatchObject({ status: 'ok', value: 42 });
    expect(await large).toMatchObject({ status: 'ok', value: 42 });
  });

  it('timeout: CPU and wall clock', async () => {
    const spin = await pool.execute({ code: 'for (;;) {}', limits: { cpuTimeMs: 100, timeoutMs: 5_000 } });
    expect(spin).toMatchObject({ status: 'timeout', error: { limit: 'cpu' } });
    const hang = await pool.execute({ code: 'new Promise(() => {})', limits: { timeoutMs: 100 } });
    expect(hang).toMatchObject({ status: 'timeout', error: { limit: 'wall' } });
  });

  it('memory_limit: the isolate heap', async () => {
    const result = await pool.execute({ code: 'const a = []; for (;;) a.push(new Array(1e5).fill(1))', limits: { memoryMb: 16 } });
    expect(result.status).toBe('memory_limit');
  });

  it('rejected: validation', async () => {
    const result = await pool.execute({ code: '1', limits: { memoryMb: 'lots' } });
    expect(result.rejection?.reasons).toEqual([expect.objectContaining({ rule: 'validation', field: 'limits.memoryMb' })]);
  });

  it('cancelled: a running snippet stops when its signal aborts', async () => {
    const controller = new AbortController();
    const running = pool.execute({ code: 'for (;;) {}', limits: { timeoutMs: 30_000, cpuTimeMs: 30_000 } }, { signal: controller.signal });
    setTimeout(() => controller.abort(), 200);
    expect((await running).status).toBe('cancelled');
  });

  it('a snippet V8 does not contain (new Array(1e8).fill(0)) costs an executor, not the pool', async () => {
    // Which limit trips first depends on the machine's speed: the RSS ceiling or the wall clock.
    const result = await pool.execute({ code: 'new Array(1e8).fill(0); 1' });
    expect(['memory_limit', 'timeout']).toContain(result.status);
    const next = await pool.execute({ code: '"still serving"' });
    expect(next).toMatchObject({ status: 'ok', value: 'still serving' });
  });

  it('an executor killed from outside mid-snippet: the snippet runs again, the pool serves on', async () => {
    const [executorPid] = executorPids();
    expect(executorPid).toBeDefined();
    const running = pool.execute({ code: BUSY_300_MS });
    await new Promise((resolve) => setTimeout(resolve, 100));
    process.kill(executorPid ?? 0, 'SIGKILL');
    const result = await running;
    expect(result).toMatchObject({ status: 'ok', value: 'done', metrics: { attempt: 2 } });
    expect(result.metrics.worker.pid).not.toBe(executorPid);
  });

  it('the co-runner of a snippet that brings its executor down is not blamed', async () => {
    const [innocent, culprit] = await Promise.all([
      pool.execute({ code: BUSY_300_MS, limits: { timeoutMs: 10_000 } }),
      pool.execute({ code: 'new Array(1e8).fill(0); 1' }),
    ]);
    expect(innocent).toMatchObject({ status: 'ok', value: 'done' });
    expect(['memory_limit', 'timeout']).toContain(culprit.status);
  });

  it('runs 300 concurrent trivial jobs, all ok', async () => {
    const results = await Promise.all(Array.from({ length: 300 }, (_, index) => pool.execute({ code: 'input * 2', input: index })));
    expect(results.map((result) => result.status).every((status) => status === 'ok')).toBe(true);
    expect(results.map((result) => result.value)).toEqual(Array.from({ length: 300 }, (_, index) => index * 2));
  });
});

describe('which executor takes a job', () => {
  let pool: Pool;
  beforeAll(async () => {
    pool = await createPool({ executors: 2, threadsPerExecutor: 1 });
  });
  afterAll(async () => {
    await pool.close();
  });

  it('a job after a pause goes to the executor the last one went to; jobs back to back go round', async () => {
    const pace = () => new Promise((resolve) => setTimeout(resolve, 20));
    const paced: number[] = [];
    for (let index = 0; index < 8; index++) {
      paced.push((await pool.execute({ code: '1' })).metrics.worker.pid);
      await pace();
    }
    expect(new Set(paced).size).toBe(1);
    // Back to back, the executor just used is still making its next spare: the other one gets it.
    const backToBack: number[] = [];
    for (let index = 0; index < 8; index++) backToBack.push((await pool.execute({ code: '1' })).metrics.worker.pid);
    expect(new Set(backToBack).size).toBe(2);
  });
});

describe('code the pre-screen reads too slowly', () => {
  // acorn checks each name of a declaration against the ones before it: 82,000 names in one
  // `let` (512 KiB) take it many seconds, and V8 none.
  const manyNames = `export default 1;\nlet ${Array.from({ length: 82_000 }, (_, index) => `a${index}`).join(',\n')};`;
  const sizeLimits = { maxCodeBytes: 1024 * 1024 };

  it('is rejected at the screen\'s time bound, and the thread it held serves the jobs behind it', { timeout: 60_000 }, async () => {
    const own = await createPool({ executors: 1, threadsPerExecutor: 1, sizeLimits, prescreen: { maxBytes: 1024 * 1024 } });
    try {
      const slow = own.execute({ code: manyNames });
      const behind = own.execute({ code: 'const n: number = 20; n * 2 + 2', language: 'typescript' });
      expect(await slow).toMatchObject({
        status: 'rejected',
        rejection: { reasons: [expect.objectContaining({ rule: 'prescreen_too_slow', message: expect.stringContaining('2000 ms') })] },
      });
      expect(await behind).toMatchObject({ status: 'ok', value: 42 });
    } finally {
      await own.close();
    }
  });

  it('with screening off, still runs: its form is then told from its text', { timeout: 60_000 }, async () => {
    const own = await createPool({ executors: 1, threadsPerExecutor: 1, sizeLimits, prescreen: { mode: 'off' } });
    try {
      expect(await own.execute({ code: manyNames })).toMatchObject({ status: 'ok', value: 1 });
    } finally {
      await own.close();
    }
  });
});

describe('close() while a job is prepared on a thread', () => {
  it('answers the job at once (POOL_CLOSED), not when its stripping ends', { timeout: 30_000 }, async () => {
    const own = await createPool({ executors: 1, threadsPerExecutor: 1 });
    const bomb = `let a = ${'(<any>'.repeat(24)}b${')'.repeat(24)}`;
    const pending = own.execute({ code: bomb, language: 'typescript', limits: { timeoutMs: 10_000 } });
    // Let the stripping start: the bound here is 2 s, and close() comes well before it.
    await new Promise((resolve) => setTimeout(resolve, 300));
    let answeredAt = Number.POSITIVE_INFINITY;
    void pending.then(() => {
      answeredAt = performance.now();
    });
    await own.close({ deadlineMs: 0 });
    const closedAt = performance.now();
    const result = await pending;
    expect(result).toMatchObject({ status: 'internal_error', error: { code: 'POOL_CLOSED' } });
    // Answered by close() itself, before it resolved, not once the strip reached its 2 s bound.
    expect(answeredAt).toBeLessThanOrEqual(closedAt);
  });

  it('a job cancelled while being prepared is no longer counted as queued, nor waited for by close()', { timeout: 30_000 }, async () => {
    const own = await createPool({ executors: 1, threadsPerExecutor: 1 });
    const abort = new AbortController();
    // Large enough to be screened on a thread for a while.
    const request = { code: `${'let a = 1;\n'.repeat(40_000)}1`, limits: { timeoutMs: 1_234 }, labels: { team: 'a' } };
    const large = own.execute(request, { signal: abort.signal });
    expect(own.stats().queued).toBe(1);
    abort.abort();
    // Answered with its own limits and labels, known before the thread's work began.
    const result = await large;
    expect(result).toMatchObject({ status: 'cancelled', labels: { team: 'a' } });
    expect(result.limits.timeoutMs).toBe(1_234);
    // So is TypeScript cancelled while it is stripped (code never sent before: not in the strip cache).
    const stripping = new AbortController();
    const code = `const n: number = ${Math.random()}; n`;
    const typescript = own.execute({ ...request, code, language: 'typescript' }, { signal: stripping.signal });
    stripping.abort();
    expect(await typescript).toMatchObject({ status: 'cancelled', labels: { team: 'a' }, limits: { timeoutMs: 1_234 } });
    expect(own.stats().queued).toBe(0);
    await own.close();
  });

  it('within its deadline, runs the jobs accepted before it that were still being prepared, and counts them as queued', { timeout: 30_000 }, async () => {
    const own = await createPool({ executors: 1, threadsPerExecutor: 1 });
    // TypeScript is stripped on a thread, and so large JavaScript is screened: both still in hand when close() comes.
    const typescript = own.execute({ code: 'const n: number = 20; n + 1', language: 'typescript' });
    const large = own.execute({ code: `${'// padding\n'.repeat(3_000)}40 + 2` });
    expect(own.stats().queued).toBe(2);
    await own.close({ deadlineMs: Number.POSITIVE_INFINITY });
    expect(await typescript).toMatchObject({ status: 'ok', value: 21 });
    expect(await large).toMatchObject({ status: 'ok', value: 42 });
  });
  it('drops the thread work of the jobs it answered that no thread had taken yet', { timeout: 30_000 }, async () => {
    // Every prepare thread busy for its full 2 s bound, by work that is not the pool's.
    const bomb = `let a = ${'(<any>'.repeat(24)}b${')'.repeat(24)}`;
    const busy = Array.from({ length: PREPARE_THREADS }, () => stripTypesWithin(bomb, 2_000));
    const own = await createPool({ executors: 1, threadsPerExecutor: 1 });
    const jobs = Array.from({ length: 2 * PREPARE_THREADS }, () => own.execute({ code: bomb, language: 'typescript', limits: { timeoutMs: 10_000 } }));
    await own.close({ deadlineMs: 0 });
    expect(new Set((await Promise.all(jobs)).map((result) => result.error?.code))).toEqual(new Set(['POOL_CLOSED']));
    await Promise.all(busy);
    // The pool's own strips (two rounds of 2 s on every thread) never started: a strip now is served at once.
    const start = performance.now();
    expect(await stripTypesWithin('const n: number = 1', 2_000)).toMatchObject({ ok: true });
    expect(performance.now() - start).toBeLessThan(1_500);
  });
});
