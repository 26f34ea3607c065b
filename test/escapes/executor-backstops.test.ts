// Attacks that only the layers outside the isolate can answer: memory the heap limit does not see
// (the executor's RSS ceiling), isolates that keep running after their job was answered (builtins
// deaf to termination), many hostile jobs at once, and cancellation of a spinning job. Each test
// that can kill an executor gets a pool of its own, so no other test pays for it.
import { expect, test } from 'vitest';
import { createPool } from '../../src/pool.ts';
import {
  CPU_BOUND,
  expectPoolServes,
  expectStatus,
  type Pool,
  run,
  snippet,
  useEscapePool,
  summary,
} from './harness.ts';

let pool: Pool;
useEscapePool((started) => (pool = started));

/** A pool whose executors may hold a few isolates but never half a gigabyte. */
async function withSmallExecutors<T>(body: (small: Pool) => Promise<T>): Promise<T> {
  const small = await createPool({ executors: 1, threadsPerExecutor: 2, executorMemoryMb: 384, prescreen: { mode: 'off' } });
  try {
    return await body(small);
  } finally {
    await small.close();
  }
}

const HOLDS_MEMORY = Object.freeze({ memoryMb: 64, cpuTimeMs: 20_000, timeoutMs: 20_000 });

// exhaustion, off-heap: memory the heap limit misses is caught by the executor's RSS ceiling
test('a half-gigabyte string held past the heap limit is memory_limit by the RSS ceiling', { timeout: 60_000 }, async () => {
  await withSmallExecutors(async (small) => {
    const result = await run(small, { code: snippet('huge-string-held'), limits: HOLDS_MEMORY });
    expectStatus(result, 'memory_limit');
    await expectPoolServes(small);
  });
});

// exhaustion, off-heap, two at once: the executor dies with company; each is judged alone
test('two such jobs at once both end memory_limit, not internal_error', { timeout: 90_000 }, async () => {
  await withSmallExecutors(async (small) => {
    const results = await Promise.all([1, 2].map(() => run(small, { code: snippet('huge-string-held'), limits: HOLDS_MEMORY })));
    for (const result of results) expectStatus(result, 'memory_limit');
    await expectPoolServes(small);
  });
});

// wedge: a builtin that termination does not stop, next to an innocent job on the same executor
test('an innocent job sharing an executor with a wedged isolate still ends ok', { timeout: 90_000 }, async () => {
  const [wedged, innocent] = await Promise.all([
    run(pool, { code: snippet('sparse-array-like-index-of'), limits: { timeoutMs: 1_000, cpuTimeMs: 1_000 } }),
    run(pool, { code: snippet('busy-for-a-while'), input: { ms: 6_000 }, limits: { timeoutMs: 30_000, cpuTimeMs: 30_000 } }),
  ]);
  expectStatus(wedged, 'timeout');
  expectStatus(innocent, 'ok');
  expect(innocent.value).toBe('survived');
  // Not run again elsewhere: the executor was retired once its jobs were done, not killed under them.
  expect(innocent.metrics.attempt).toBe(1);
  await expectPoolServes(pool);
});

// wedge, through a cancel: a job whose calls are synchronous and whose deadline is near is answered
// at once, its thread left to end at that deadline; a wedged one never ends, and must not take its
// executor down under the job beside it
test('a wedged job cancelled near its deadline does not take its co-runner down', { timeout: 90_000 }, async () => {
  const controller = new AbortController();
  const wedged = run(pool, { code: snippet('sparse-array-like-index-of'), limits: { timeoutMs: 1_000, cpuTimeMs: 1_000 } }, { signal: controller.signal });
  const innocent = run(pool, { code: snippet('busy-for-a-while'), input: { ms: 6_000 }, limits: { timeoutMs: 30_000, cpuTimeMs: 30_000 } });
  setTimeout(() => controller.abort(), 300);
  expectStatus(await wedged, 'cancelled');
  const result = await innocent;
  expectStatus(result, 'ok');
  expect(result.metrics.attempt).toBe(1);
  await expectPoolServes(pool);
});

// wedge: the isolate left spinning after its job was answered must be reaped even while the
// executor stays busy — otherwise each such job burns a core for as long as traffic keeps coming
test('an isolate left spinning after its answer is reaped while the executor stays busy', { timeout: 90_000 }, async () => {
  const ghost = await run(pool, { code: snippet('sparse-array-like-index-of'), limits: { timeoutMs: 1_000, cpuTimeMs: 1_000 } });
  expectStatus(ghost, 'timeout');
  const ghostPid = ghost.metrics.worker.pid;
  // Two lanes of short ordinary jobs keep the executor from ever being idle. The ghost's executor
  // must be replaced (a new pid answers) before the lanes have run BUSY_JOBS jobs (about 10 s).
  const BUSY_JOBS = 24;
  let started = 0;
  let replaced = false;
  const busy: string[] = [];
  const lane = async () => {
    while (started < BUSY_JOBS && !replaced) {
      started++;
      const result = await run(pool, { code: snippet('busy-for-a-while'), input: { ms: 400 }, limits: { timeoutMs: 20_000, cpuTimeMs: 20_000 } });
      if (result.status !== 'ok') busy.push(summary(result));
      if (result.metrics.worker.pid !== ghostPid) replaced = true;
    }
  };
  await Promise.all([lane(), lane()]);
  expect(busy, 'innocent jobs that did not end ok').toEqual([]);
  expect(replaced, `executor ${ghostPid} still answering after ${started} busy jobs: its ghost isolate was never reaped`).toBe(true);
  await expectPoolServes(pool);
});

// exhaustion, breadth: many spinning jobs at once
test('sixteen spinning jobs at once all end as CPU timeouts', { timeout: 60_000 }, async () => {
  const results = await Promise.all(Array.from({ length: 16 }, () => run(pool, { code: 'for (;;) {}', limits: CPU_BOUND })));
  for (const result of results) expectStatus(result, 'timeout', 'cpu');
  await expectPoolServes(pool);
});

// exhaustion: a spinning job the caller gives up on
test('cancelling a spinning job answers cancelled and frees its thread', async () => {
  const controller = new AbortController();
  const pending = run(pool, { code: 'for (;;) {}', limits: { timeoutMs: 30_000, cpuTimeMs: 30_000 } }, { signal: controller.signal });
  // Give it a moment to get a thread, so the cancel reaches a running isolate, not a queue entry.
  await new Promise((resolve) => setTimeout(resolve, 300));
  controller.abort();
  const result = await pending;
  expectStatus(result, 'cancelled');
  await expectPoolServes(pool);
});
