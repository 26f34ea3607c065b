// Supervision through real executor processes and real piscina threads: cancellation, the
// executor's and the pool's deadlines, the RSS ceiling, dying executors and who gets blamed,
// quarantine retries, concurrency and close(). The scripted fixture thread misbehaves on cue.
import { execFile } from 'node:child_process';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool, PoolClosedError, type Pool, type PoolOptions } from '../../src/pool.ts';
import { POOL_GRACE_MS } from '../../src/pool-options.ts';
import { isAlive } from '../helpers/process.ts';
import type { Result } from '../../src/result.ts';

const SCRIPTED = new URL('../fixtures/threads/scripted.ts', import.meta.url);
const scratch = mkdtempSync(join(tmpdir(), 'sandpool-pool-'));
let pidFiles = 0;

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function scriptedPool(options: PoolOptions = {}): Promise<Pool> {
  return createPool({ executors: 1, threadsPerExecutor: 1, threadModule: SCRIPTED, ...options });
}

async function waitFor<T>(probe: () => T | undefined, what: string): Promise<T> {
  for (let tries = 0; tries < 600; tries++) {
    const value = probe();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`gave up waiting for ${what}`);
}

/** A pid file the scripted thread fills in, and a way to wait for it. */
function pidProbe(): { pidFile: string; pid: () => Promise<number> } {
  const pidFile = join(scratch, `pid-${++pidFiles}`);
  const pid = () =>
    waitFor(() => {
      try {
        return Number(readFileSync(pidFile, 'utf8')) || undefined;
      } catch {
        // Not written yet.
        return undefined;
      }
    }, 'the executor pid');
  return { pidFile, pid };
}


describe('cancellation', () => {
  let pool: Pool;
  beforeAll(async () => {
    pool = await scriptedPool();
  });
  afterAll(() => pool.close());

  it('answers an already-aborted signal at once', async () => {
    const result = await pool.execute({ code: 'echo' }, { signal: AbortSignal.abort() });
    expect(result.status).toBe('cancelled');
    expect(result.metrics.worker.pid).toBe(0);
  });

  it('cancels a job waiting for an executor without running it', async () => {
    // capacity is threads × 2 = 2: two sleepers fill the executor, the third waits in the pool.
    const sleepers = [pool.execute({ code: 'sleep 300' }), pool.execute({ code: 'sleep 300' })];
    const controller = new AbortController();
    const waiting = pool.execute({ code: 'echo' }, { signal: controller.signal });
    expect(pool.stats().queued).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 100));
    controller.abort();
    const cancelled = await waiting;
    expect(cancelled.status).toBe('cancelled');
    // The time it waited is its queue wait, though it never ran.
    expect(cancelled.metrics.queueWaitMs).toBeGreaterThanOrEqual(99);
    expect(cancelled.metrics.wallTimeMs).toBe(0);
    expect(pool.stats().queued).toBe(0);
    expect((await Promise.all(sleepers)).map((result) => result.status)).toEqual(['ok', 'ok']);
  });

  it('ends a job not handed to an executor within its queueTimeoutMs as timeout, limit queue; one in time runs', async () => {
    const sleepers = [pool.execute({ code: 'sleep 300' }), pool.execute({ code: 'sleep 300' })];
    const late = pool.execute({ code: 'echo', queueTimeoutMs: 50 });
    const inTime = pool.execute({ code: 'echo', queueTimeoutMs: 5_000 });
    const result = await late;
    expect(result).toMatchObject({ status: 'timeout', error: { name: 'TimeoutError', limit: 'queue' } });
    expect(result.error?.message).toMatch(/^the job waited \d+ ms in the queue, more than its queueTimeoutMs of 50 ms$/);
    expect(result.metrics.queueWaitMs).toBeGreaterThanOrEqual(50);
    expect(pool.stats().queued).toBe(1);
    expect((await inTime).status).toBe('ok');
    expect((await Promise.all(sleepers)).map((sleeper) => sleeper.status)).toEqual(['ok', 'ok']);
  });

  it('cancels a running job through the cancel board; the thread answers', async () => {
    const controller = new AbortController();
    const { pidFile, pid } = pidProbe();
    const running = pool.execute({ code: 'sleep 20000', input: { pidFile } }, { signal: controller.signal });
    await pid();
    controller.abort();
    const result = await running;
    expect(result.status).toBe('cancelled');
    expect(result.metrics.worker.thread).toBeGreaterThan(0);
  });

  it('cancels a job waiting inside the executor behind a running one', async () => {
    const { pidFile, pid } = pidProbe();
    const first = pool.execute({ code: 'sleep 400', input: { pidFile } });
    await pid();
    const controller = new AbortController();
    const second = pool.execute({ code: 'echo' }, { signal: controller.signal });
    controller.abort();
    expect((await second).status).toBe('cancelled');
    expect((await first).status).toBe('ok');
  });

  it('stops a job that ignores the cancel board by terminating its thread', async () => {
    const controller = new AbortController();
    const { pidFile, pid } = pidProbe();
    const spinning = pool.execute({ code: 'spin', input: { pidFile }, limits: { timeoutMs: 30_000 } }, { signal: controller.signal });
    const executorPid = await pid();
    controller.abort();
    expect((await spinning).status).toBe('cancelled');
    // Only the thread went; the executor process serves on.
    const next = await pool.execute({ code: 'echo' });
    expect(next.status).toBe('ok');
    expect(next.metrics.worker.pid).toBe(executorPid);
  });
});

describe('deadlines', () => {
  let pool: Pool;
  beforeAll(async () => {
    pool = await scriptedPool();
  });
  afterAll(() => pool.close());

  it('the executor terminates a thread that overruns timeoutMs + grace, answering timeout', async () => {
    const { pidFile, pid } = pidProbe();
    const result = await pool.execute({ code: 'spin', input: { pidFile }, limits: { timeoutMs: 100 } });
    expect(result).toMatchObject({ status: 'timeout', error: { name: 'TimeoutError', limit: 'wall' } });
    const next = await pool.execute({ code: 'echo' });
    expect(next.status).toBe('ok');
    expect(next.metrics.worker.pid).toBe(await pid());
    expect(pool.stats().restarts).toBe(0);
  });

  it('two tasks in a row whose threads must be terminated retire their executor; one does not', async () => {
    const restarts = pool.stats().restarts;
    const first = await pool.execute({ code: 'spin', limits: { timeoutMs: 100 } });
    expect(first).toMatchObject({ status: 'timeout', error: { limit: 'wall' } });
    const executorPid = (await pool.execute({ code: 'pid' })).value as number;
    expect(pool.stats().restarts).toBe(restarts);
    // A job in between answered by its thread resets the count; two terminations in a row do not.
    await pool.execute({ code: 'spin', limits: { timeoutMs: 100 } });
    const second = await pool.execute({ code: 'spin', limits: { timeoutMs: 100 } });
    expect(second).toMatchObject({ status: 'timeout', error: { limit: 'wall' } });
    const next = await pool.execute({ code: 'pid' });
    expect(next.status).toBe('ok');
    expect(next.value).not.toBe(executorPid);
    expect(pool.stats().restarts).toBe(restarts + 1);
  });

  it("a timed-out job whose terminated thread exits keeps its executor, though another stopped job's thread runs on", { timeout: 30_000 }, async () => {
    const pool = await scriptedPool({ threadsPerExecutor: 2 });
    try {
      const executorPid = (await pool.execute({ code: 'pid' })).value as number;
      // A: cancelled at 0.1 s; its thread, terminated 0.25 s later (its limits make its calls
      // synchronous), runs on in a native call until 3 s. Its deadline is near: no retirement.
      const controller = new AbortController();
      const first = pool.execute({ code: 'block 3000', limits: { timeoutMs: 1_500, cpuTimeMs: 1_500 } }, { signal: controller.signal });
      setTimeout(() => controller.abort(), 100);
      // B: terminated at its deadline + 1 s, while A's thread still runs; B's own thread exits at once.
      const second = pool.execute({ code: 'spin', limits: { timeoutMs: 200, cpuTimeMs: 200 } });
      expect((await first).status).toBe('cancelled');
      expect(await second).toMatchObject({ status: 'timeout', error: { limit: 'wall' } });
      expect(pool.stats().restarts).toBe(0);
      expect((await pool.execute({ code: 'pid' })).value).toBe(executorPid);
    } finally {
      await pool.close();
    }
  });

  it('the pool kills an executor that answers nothing past its deadline, and replaces it', async () => {
    const restarts = pool.stats().restarts;
    const { pidFile, pid } = pidProbe();
    const frozen = pool.execute({ code: 'freeze', input: { pidFile }, limits: { timeoutMs: 100 } });
    const executorPid = await pid();
    const result = await frozen;
    expect(result).toMatchObject({ status: 'timeout', error: { limit: 'wall' }, metrics: { attempt: 1 } });
    expect(result.metrics.worker.pid).toBe(executorPid);
    await waitFor(() => (isAlive(executorPid) ? undefined : true), 'the frozen executor to die');
    const next = await pool.execute({ code: 'echo' });
    expect(next.status).toBe('ok');
    expect(next.metrics.worker.pid).not.toBe(executorPid);
    expect(pool.stats().restarts).toBe(restarts + 1);
  });

  it("jobs answered while the caller's event loop was held are ok: the hold is not held against them", async () => {
    const restarts = pool.stats().restarts;
    const jobs = Array.from({ length: 4 }, (_, index) => pool.execute({ code: 'echo', input: index, limits: { timeoutMs: 100 } }));
    // The caller's own synchronous work, well past every job's deadline and the pool's grace: the
    // answers wait unread in the pipe meanwhile.
    const until = Date.now() + 100 + POOL_GRACE_MS + 1_000;
    while (Date.now() < until) {
      // busy
    }
    const results = await Promise.all(jobs);
    expect(results.map((result) => [result.status, (result.value as { input: unknown }).input])).toEqual([0, 1, 2, 3].map((index) => ['ok', index]));
    expect(pool.stats().restarts).toBe(restarts);
  });
});

describe('dying executors', () => {
  let pool: Pool;
  beforeAll(async () => {
    pool = await scriptedPool({ threadsPerExecutor: 2 });
  });
  afterAll(() => pool.close());

  it('an executor killed from outside mid-job: the job runs again elsewhere, the pool serves on', async () => {
    const { pidFile, pid } = pidProbe();
    const job = pool.execute({ code: 'sleep 300', input: { pidFile } });
    const executorPid = await pid();
    process.kill(executorPid, 'SIGKILL');
    const result = await job;
    expect(result.status).toBe('ok');
    expect(result.metrics.attempt).toBe(2);
    expect(result.metrics.worker.pid).not.toBe(executorPid);
    expect((await pool.execute({ code: 'echo' })).status).toBe('ok');
  });

  it('SIGTERM or SIGINT to the process group does not kill executors under running jobs', async () => {
    const { pidFile, pid } = pidProbe();
    const job = pool.execute({ code: 'sleep 300', input: { pidFile } });
    const executorPid = await pid();
    process.kill(executorPid, 'SIGTERM');
    process.kill(executorPid, 'SIGINT');
    expect(await job).toMatchObject({ status: 'ok', metrics: { attempt: 1, worker: { pid: executorPid } } });
  });

  it('a job whose executor died under it reports the time it ran as such, not as queue wait', async () => {
    const single = await scriptedPool({ maxAttempts: 1 });
    try {
      const { pidFile, pid } = pidProbe();
      const job = single.execute({ code: 'sleep 5000', input: { pidFile } });
      const executorPid = await pid();
      await new Promise((resolve) => setTimeout(resolve, 300));
      process.kill(executorPid, 'SIGKILL');
      const result = await job;
      expect(result).toMatchObject({ status: 'internal_error', error: { code: 'EXECUTOR_DIED' } });
      expect(result.metrics.wallTimeMs).toBeGreaterThanOrEqual(250);
      expect(result.metrics.queueWaitMs).toBeLessThan(result.metrics.wallTimeMs);
    } finally {
      await single.close();
    }
  });

  it('a job that crashes its executor every time ends internal_error after maxAttempts, no loop', async () => {
    const restartsBefore = pool.stats().restarts;
    const result = await pool.execute({ code: 'abort' });
    expect(result).toMatchObject({ status: 'internal_error', error: { code: 'EXECUTOR_DIED' }, metrics: { attempt: 2 } });
    await waitFor(() => (pool.stats().executors === 1 ? true : undefined), 'a replacement executor');
    expect(pool.stats().restarts - restartsBefore).toBe(2);
    expect((await pool.execute({ code: 'echo' })).status).toBe('ok');
  });

  it('the innocent co-runner of a crasher succeeds on its quarantined retry', async () => {
    const innocent = pool.execute({ code: 'sleep 1500' });
    const crasher = pool.execute({ code: 'abort 100' });
    const [innocentResult, crasherResult] = await Promise.all([innocent, crasher]);
    expect(innocentResult).toMatchObject({ status: 'ok', metrics: { attempt: 2 } });
    expect(crasherResult).toMatchObject({ status: 'internal_error', metrics: { attempt: 2 } });
  });

  it('a V8 out-of-memory death of a job running alone is memory_limit, not retried', async () => {
    const result = await pool.execute({ code: 'oom' });
    expect(result).toMatchObject({ status: 'memory_limit', error: { name: 'MemoryLimitError' }, metrics: { attempt: 1 } });
  });

  it('a V8 out-of-memory death with company: the culprit is found in quarantine', async () => {
    const [innocent, culprit] = await Promise.all([pool.execute({ code: 'sleep 1500' }), pool.execute({ code: 'oom 100' })]);
    expect(innocent).toMatchObject({ status: 'ok', metrics: { attempt: 2 } });
    expect(culprit).toMatchObject({ status: 'memory_limit', metrics: { attempt: 2 } });
  });

  it('a thread module that throws is an infrastructure failure: retried, then internal_error', async () => {
    const result = await pool.execute({ code: 'throw' });
    expect(result).toMatchObject({ status: 'internal_error', error: { code: 'EXECUTOR_FAILED' }, metrics: { attempt: 2 } });
    expect(result.error?.message).toContain('the thread module failed');
  });
});

describe('resource ceilings', () => {
  it('kills and replaces an executor over its RSS ceiling; the job is memory_limit', async () => {
    const pool = await scriptedPool({ executorMemoryMb: 300 });
    try {
      const { pidFile, pid } = pidProbe();
      const growing = pool.execute({ code: 'grow', input: { pidFile }, limits: { timeoutMs: 60_000 } });
      const executorPid = await pid();
      const result = await growing;
      expect(result).toMatchObject({ status: 'memory_limit', error: { name: 'MemoryLimitError' } });
      expect(result.error?.message).toMatch(/300 MiB/);
      // Its executor died with the isolate's clock: the time it ran stands for its CPU, not 0.
      expect(result.metrics.wallTimeMs).toBeGreaterThan(0);
      expect(result.metrics.cpuTimeMs).toBe(result.metrics.wallTimeMs);
      const next = await pool.execute({ code: 'echo' });
      expect(next.status).toBe('ok');
      expect(next.metrics.worker.pid).not.toBe(executorPid);
    } finally {
      await pool.close();
    }
  });

  it('replaces an executor whose memory stays over recycleAboveMb after its jobs, blaming nobody', async () => {
    for (const recycleAboveMb of [300, 0]) {
      const pool = await scriptedPool({ executorMemoryMb: 1024, recycleAboveMb });
      try {
        // 400 MiB the executor keeps after the job: under the ceiling, over the mark.
        const kept = await pool.execute({ code: 'keep 400' });
        expect(kept).toMatchObject({ status: 'ok', value: 400 });
        const keeper = kept.metrics.worker.pid;
        // The sampler looks every 100 ms; the next jobs go to the replacement once it is ready.
        let next = keeper;
        for (let i = 0; i < 40 && next === keeper; i++) {
          await new Promise((resolve) => setTimeout(resolve, 50));
          next = (await pool.execute({ code: 'echo' })).metrics.worker.pid;
        }
        if (recycleAboveMb === 0) {
          expect(next).toBe(keeper);
          continue;
        }
        expect(next).not.toBe(keeper);
        await waitFor(() => (isAlive(keeper) ? undefined : true), 'the recycled executor to end');
        // Routine, as recycleAfterJobs is: not counted among replacements of failed executors.
        expect(pool.stats().restarts).toBe(0);
      } finally {
        await pool.close();
      }
    }
  });

  it('does not recycle an executor that only weighs what it did when new, even with a mark below that', async () => {
    // A fresh scripted executor is ~100 MiB; the default mark here is 90.
    const pool = await scriptedPool({ executorMemoryMb: 180 });
    try {
      const pids = new Set<number>();
      for (let i = 0; i < 6; i++) {
        pids.add((await pool.execute({ code: 'echo' })).metrics.worker.pid);
        // Samples come every 100 ms: each gap lets several look at the executor.
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
      expect(pids.size).toBe(1);
    } finally {
      await pool.close();
    }
  });

  it('RSS ceiling with company: nobody is blamed at first, the grower is found in quarantine', async () => {
    const pool = await scriptedPool({ threadsPerExecutor: 2, executorMemoryMb: 300 });
    try {
      const [innocent, grower] = await Promise.all([
        // Long enough to be still running when the grower crosses the ceiling, however slow the machine.
        pool.execute({ code: 'sleep 3000' }),
        pool.execute({ code: 'grow', limits: { timeoutMs: 60_000 } }),
      ]);
      expect(innocent).toMatchObject({ status: 'ok', metrics: { attempt: 2 } });
      expect(grower).toMatchObject({ status: 'memory_limit', metrics: { attempt: 2 } });
    } finally {
      await pool.close();
    }
  });

  it('replaces an executor whose timed-out thread cannot be terminated (stuck in native code)', async () => {
    const pool = await scriptedPool();
    try {
      const { pidFile, pid } = pidProbe();
      const result = await pool.execute({ code: 'wedge', input: { pidFile }, limits: { timeoutMs: 100 } });
      expect(result).toMatchObject({ status: 'timeout', error: { limit: 'wall' } });
      const executorPid = await pid();
      await waitFor(() => (isAlive(executorPid) ? undefined : true), 'the wedged executor to go');
      const next = await pool.execute({ code: 'echo' });
      expect(next.status).toBe('ok');
      expect(next.metrics.worker.pid).not.toBe(executorPid);
    } finally {
      await pool.close();
    }
  });

  it('retires an executor whose thread reports an isolate still running, without waiting for it to idle', async () => {
    const pool = await scriptedPool({ threadsPerExecutor: 2 });
    try {
      const { pidFile, pid } = pidProbe();
      // A lane of jobs keeps the executor busy the whole time.
      const lane = pool.execute({ code: 'sleep 600', input: { pidFile } });
      const stuckPid = await pid();
      const stuck = await pool.execute({ code: 'stuck' });
      expect(stuck).toMatchObject({ status: 'timeout', metrics: { worker: { pid: stuckPid } } });
      // New jobs go to the replacement at once; the job already running finishes where it is.
      const next = await pool.execute({ code: 'echo' });
      expect(next.status).toBe('ok');
      expect(next.metrics.worker.pid).not.toBe(stuckPid);
      expect(await lane).toMatchObject({ status: 'ok', metrics: { attempt: 1, worker: { pid: stuckPid } } });
      await waitFor(() => (isAlive(stuckPid) ? undefined : true), 'the retired executor to be killed');
      expect(pool.stats()).toMatchObject({ executors: 1, restarts: 1 });
    } finally {
      await pool.close();
    }
  });

  it('replaces an executor that burns CPU with no job in flight (an isolate that would not stop)', async () => {
    const pool = await scriptedPool();
    try {
      const { pidFile, pid } = pidProbe();
      expect((await pool.execute({ code: 'ghost', input: { pidFile } })).status).toBe('ok');
      const executorPid = await pid();
      await waitFor(() => (isAlive(executorPid) ? undefined : true), 'the spinning executor to be killed');
      await waitFor(() => (pool.stats().executors === 1 ? true : undefined), 'a replacement executor');
      expect(pool.stats().restarts).toBe(1);
    } finally {
      await pool.close();
    }
  });
});

describe('executors that cannot start', () => {
  const FRAGILE = new URL('../fixtures/threads/fragile.ts', import.meta.url);
  const BREAK_MARKER = join(tmpdir(), `sandpool-fragile-${process.pid}`);
  afterAll(() => rmSync(BREAK_MARKER, { force: true }));

  it('backs off, answers waiting jobs EXECUTOR_UNAVAILABLE, and recovers when starts succeed again', async () => {
    const pool = await createPool({ executors: 1, threadsPerExecutor: 1, threadModule: FRAGILE, maxAttempts: 1 });
    try {
      const { pidFile, pid } = pidProbe();
      expect((await pool.execute({ code: 'echo', input: { pidFile } })).status).toBe('ok');
      // Executors started from now on cannot load their threads.
      writeFileSync(BREAK_MARKER, '');
      process.kill(await pid(), 'SIGKILL');
      await waitFor(() => (pool.stats().executors === 0 ? true : undefined), 'the pool to see the executor gone');
      const waiting = await pool.execute({ code: 'echo' });
      expect(waiting).toMatchObject({ status: 'internal_error', error: { code: 'EXECUTOR_UNAVAILABLE' } });
      expect(waiting.error?.message).toMatch(/failing to start/);
      expect(pool.stats().restarts).toBeGreaterThanOrEqual(4);
      rmSync(BREAK_MARKER);
      await waitFor(() => (pool.stats().executors === 1 ? true : undefined), 'a working executor again');
      expect((await pool.execute({ code: 'echo' })).status).toBe('ok');
    } finally {
      await pool.close();
    }
  });
});

describe('executor environment', () => {
  it('executors start with an empty environment: no caller secret can reach them', async () => {
    process.env.SANDPOOL_TEST_SECRET = 'hunter2';
    const pool = await scriptedPool();
    try {
      expect(await pool.execute({ code: 'env' })).toMatchObject({ status: 'ok', value: [] });
    } finally {
      delete process.env.SANDPOOL_TEST_SECRET;
      await pool.close();
    }
  });
});

describe('lifecycle logging', () => {
  it('logs executor spawns, deaths with their cause, and replacements — never code or output', async () => {
    const lines: Record<string, unknown>[] = [];
    const raw: string[] = [];
    const logger = pino({ level: 'info' }, {
      write: (line: string) => {
        raw.push(line);
        lines.push(JSON.parse(line) as Record<string, unknown>);
      },
    });
    const pool = await scriptedPool({ logger, maxAttempts: 1 });
    try {
      await pool.execute({ code: 'echo secret-code', input: 'secret-input' });
      await pool.execute({ code: 'abort' });
      await waitFor(() => lines.find((line) => line.event === 'executor_replaced'), 'the replacement to be logged');
    } finally {
      await pool.close();
    }
    const events = lines.map((line) => line.event);
    expect(events).toEqual(expect.arrayContaining(['executor_spawned', 'executor_died', 'executor_exited', 'executor_replaced']));
    expect(lines.find((line) => line.event === 'executor_died')).toMatchObject({ cause: 'signal SIGABRT', jobs: 1 });
    expect(JSON.stringify(lines)).not.toMatch(/secret/);
    // The executor's pid has a field of its own: beside pino's base pid, a second "pid" would be
    // a duplicate key that JSON readers collapse into one.
    for (const line of raw) expect(line.match(/"pid":/g)?.length ?? 0).toBeLessThanOrEqual(1);
    expect(lines.find((line) => line.event === 'executor_spawned')?.executorPid).toEqual(expect.any(Number));
  });
});

describe('standby executors', () => {
  it("a standby takes a dead executor's place, takes no job before, and another starts behind it", { timeout: 30_000 }, async () => {
    const lines: Record<string, unknown>[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
    const pool = await scriptedPool({ logger, maxAttempts: 1, standbyExecutors: 1 });
    const spawned = (standby: boolean) => lines.filter((line) => line.event === 'executor_spawned' && (line.standby === true) === standby);
    let pids: number[] = [];
    try {
      const [standby] = await waitFor(() => (spawned(true).length === 1 ? spawned(true) : undefined), 'the standby');
      const first = await pool.execute({ code: 'echo' });
      expect(first.metrics.worker.pid).not.toBe(standby!.executorPid);
      expect((await pool.execute({ code: 'abort' })).status).toBe('internal_error');
      const promoted = await waitFor(() => lines.find((line) => line.event === 'executor_promoted'), 'the promotion');
      expect(promoted).toMatchObject({ executor: 0, executorPid: standby!.executorPid });
      expect((await pool.execute({ code: 'echo' })).metrics.worker.pid).toBe(standby!.executorPid);
      // No executor was started for the slot itself; a new standby was.
      expect(spawned(false)).toHaveLength(1);
      await waitFor(() => (spawned(true).length === 2 ? true : undefined), 'a new standby');
      // A standby that dies is started again.
      process.kill(spawned(true)[1]!.executorPid as number, 'SIGKILL');
      await waitFor(() => (spawned(true).length === 3 ? true : undefined), 'the dead standby started again');
      expect(pool.stats().executors).toBe(1);
      pids = lines.filter((line) => line.event === 'executor_spawned').map((line) => line.executorPid as number);
    } finally {
      await pool.close();
    }
    for (const pid of pids) expect(isAlive(pid), `executor ${pid}`).toBe(false);
  });
});

describe('throughput and closing', () => {
  it('runs 300 concurrent trivial jobs, all ok, over several executors', async () => {
    const pool = await createPool({ executors: 2, threadsPerExecutor: 2, threadModule: SCRIPTED });
    try {
      const results = await Promise.all(Array.from({ length: 300 }, (_, index) => pool.execute({ code: 'echo', input: index })));
      expect(results.every((result) => result.status === 'ok')).toBe(true);
      expect(results.map((result) => (result.value as { input: number }).input)).toEqual(Array.from({ length: 300 }, (_, index) => index));
      expect(new Set(results.map((result) => result.metrics.worker.pid)).size).toBe(2);
      expect(pool.stats()).toEqual({ executors: 2, inFlight: 0, queued: 0, restarts: 0 });
    } finally {
      await pool.close();
    }
  });

  it('close() drains accepted jobs, is idempotent, refuses new ones, and leaves no executor behind', async () => {
    const pool = await createPool({ executors: 2, threadsPerExecutor: 1, threadModule: SCRIPTED });
    const probes = Array.from({ length: 4 }, () => pidProbe());
    const early = probes.map(({ pidFile }) => pool.execute({ code: 'sleep 100', input: { pidFile } }));
    const pids = new Set(await Promise.all(probes.map(({ pid }) => pid())));
    expect(pids.size).toBe(2);
    await Promise.all(early);
    const accepted = [pool.execute({ code: 'sleep 200' }), pool.execute({ code: 'sleep 200' }), pool.execute({ code: 'sleep 200' })];
    const closing = pool.close();
    expect(pool.close()).toBe(closing);
    await expect(pool.execute({ code: 'echo' })).rejects.toBeInstanceOf(PoolClosedError);
    await expect(pool.execute({ code: 'echo' })).rejects.toMatchObject({ code: 'POOL_CLOSED' });
    await closing;
    expect((await Promise.all(accepted)).map((result) => result.status)).toEqual(['ok', 'ok', 'ok']);
    for (const pid of pids) expect(isAlive(pid)).toBe(false);
    await pool.close();
  });

  it('answers a job past maxQueued waiting ones rejected (pool_full) at once, and takes jobs again once there is room', async () => {
    const pool = await scriptedPool({ maxQueued: 3 });
    try {
      // One thread: two jobs go to the executor (its capacity), three wait in the pool, the rest find it full.
      const jobs = Array.from({ length: 8 }, (_, index) => pool.execute({ code: 'sleep 150', input: index }, { id: `job-${index}` }));
      expect(pool.stats()).toMatchObject({ inFlight: 2, queued: 3 });
      // Cancelled already: answered so, not turned away.
      expect((await pool.execute({ code: 'echo' }, { signal: AbortSignal.abort() })).status).toBe('cancelled');
      const full = await Promise.all(jobs.slice(5));
      for (const [index, result] of full.entries()) {
        expect(result).toMatchObject({
          id: `job-${index + 5}`,
          status: 'rejected',
          rejection: { reasons: [{ rule: 'pool_full', message: expect.stringContaining('3 waiting jobs') }] },
        });
      }
      expect((await Promise.all(jobs.slice(0, 5))).map((result) => result.status)).toEqual(['ok', 'ok', 'ok', 'ok', 'ok']);
      expect(pool.stats()).toMatchObject({ inFlight: 0, queued: 0 });
      expect((await pool.execute({ code: 'echo' })).status).toBe('ok');
    } finally {
      await pool.close();
    }
  });

  it('holds nothing of jobs cancelled while they wait, even behind a head that does not move', { timeout: 30_000 }, async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const pool = await scriptedPool({ maxQueued: 3 });
    try {
      // Two jobs on the executor and one waiting: the line does not move for seconds.
      const held = [pool.execute({ code: 'sleep 3000' }), pool.execute({ code: 'sleep 3000' }), pool.execute({ code: 'sleep 3000' })];
      expect(pool.stats()).toMatchObject({ inFlight: 2, queued: 1 });
      gc();
      const before = process.memoryUsage().heapUsed;
      const input = 'x'.repeat(1024 * 1024);
      const cancelled: Promise<Result>[] = [];
      for (let index = 0; index < 200; index++) {
        const controller = new AbortController();
        cancelled.push(pool.execute({ code: 'echo', input: `${index}${input}` }, { signal: controller.signal }));
        controller.abort();
      }
      expect(new Set((await Promise.all(cancelled)).map((result) => result.status))).toEqual(new Set(['cancelled']));
      cancelled.length = 0;
      gc();
      // 200 MiB of input went through; what stays is the few not dropped yet (at most 64 + 2 × 1).
      expect((process.memoryUsage().heapUsed - before) / 2 ** 20).toBeLessThan(80);
      void held; // answered POOL_CLOSED by the close() below
    } finally {
      await pool.close({ deadlineMs: 0 });
    }
  });

  it('counts thread work toward maxQueued until it ends, though its jobs were cancelled', { timeout: 30_000 }, async () => {
    const pool = await scriptedPool({ maxQueued: 2 });
    try {
      // Stripping these takes amaro past its 2 s bound: each holds a thread that long.
      const bomb = `let a = ${'(<any>'.repeat(24)}b${')'.repeat(24)}`;
      const controllers = [new AbortController(), new AbortController()];
      const stripping = controllers.map((controller) =>
        pool.execute({ code: bomb, language: 'typescript', limits: { timeoutMs: 10_000 } }, { signal: controller.signal }),
      );
      for (const controller of controllers) controller.abort();
      expect((await Promise.all(stripping)).map((result) => result.status)).toEqual(['cancelled', 'cancelled']);
      expect(await pool.execute({ code: 'echo' })).toMatchObject({ status: 'rejected', rejection: { reasons: [{ rule: 'pool_full' }] } });
      await waitFor(() => (pool.stats().queued === 0 ? true : undefined), 'the pool to drain');
      let result = await pool.execute({ code: 'echo' });
      for (let tries = 0; tries < 100 && result.status === 'rejected'; tries++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        result = await pool.execute({ code: 'echo' });
      }
      expect(result.status).toBe('ok');
      // A signal aborted before execute(): answered cancelled, nothing stripped.
      const aborted = await pool.execute({ code: bomb, language: 'typescript' }, { signal: AbortSignal.abort() });
      expect(aborted.status).toBe('cancelled');
      expect((await pool.execute({ code: 'echo' })).status).toBe('ok');
    } finally {
      await pool.close({ deadlineMs: 0 });
    }
  });

  it('recycles an executor after recycleAfterJobs jobs: a new one takes over, the old one ends', async () => {
    const pool = await createPool({ executors: 1, threadsPerExecutor: 1, threadModule: SCRIPTED, recycleAfterJobs: 3 });
    try {
      const pids: number[] = [];
      for (let index = 0; index < 7; index++) {
        const result = await pool.execute({ code: 'pid' });
        expect(result.status).toBe('ok');
        pids.push(result.value as number);
      }
      const [first, second, third] = [pids[0], pids[3], pids[6]];
      expect(pids).toEqual([first, first, first, second, second, second, third]);
      expect(new Set([first, second, third]).size).toBe(3);
      // Routine, not a failure: not counted among replacements of failed executors.
      expect(pool.stats().restarts).toBe(0);
      for (const pid of [first, second] as number[]) {
        for (let tries = 0; tries < 100 && isAlive(pid); tries++) await new Promise((resolve) => setTimeout(resolve, 20));
        expect(isAlive(pid)).toBe(false);
      }
    } finally {
      await pool.close();
    }
  });

  it('names nonsense execute() and close() options; close() with no deadline waits for its jobs', async () => {
    const pool = await createPool({ executors: 1, threadsPerExecutor: 1, threadModule: SCRIPTED });
    await expect(pool.execute({ code: 'echo' }, null as never)).rejects.toThrow(/options must be an object/);
    await expect(pool.execute({ code: 'echo' }, { id: 42 as never })).rejects.toThrow(/options\.id/);
    await expect(pool.execute({ code: 'echo' }, { signal: {} as never })).rejects.toThrow(/options\.signal/);
    await expect(pool.execute({ code: 'echo' }, { acceptedAt: -1 })).rejects.toThrow(/options\.acceptedAt/);
    // A misspelt option is named, not ignored (the job would have run without its signal).
    await expect(pool.execute({ code: 'echo' }, { sginal: new AbortController().signal } as never)).rejects.toThrow(
      /options\.sginal: unknown option/,
    );
    // The signal itself where `{ signal }` belongs: named, not run uncancellable.
    await expect(pool.execute({ code: 'echo' }, new AbortController().signal as never)).rejects.toThrow(
      'execute(): options must be a plain object ({ signal, id, acceptedAt, attempt }), got an AbortSignal',
    );
    await expect(pool.execute({ code: 'echo' }, [] as never)).rejects.toThrow(/got an array/);
    await expect(pool.close({ deadlineMs: Number.NaN })).rejects.toThrow(/options\.deadlineMs/);
    // Past setTimeout's range (Infinity included) is "no deadline", not 1 ms.
    const slow = pool.execute({ code: 'sleep 300' });
    await pool.close({ deadlineMs: Number.POSITIVE_INFINITY });
    expect((await slow).status).toBe('ok');
  });

  it('an idle pool never holds its process open, and its executors do not outlive it', async () => {
    // A caller that forgets close(): its process must still end, and take the executors along.
    const script = `
      import { createPool } from ${JSON.stringify(new URL('../../src/pool.ts', import.meta.url).href)};
      const pool = await createPool({ executors: 2, threadsPerExecutor: 1, threadModule: ${JSON.stringify(SCRIPTED.href)} });
      const results = await Promise.all([pool.execute({ code: 'sleep 50' }), pool.execute({ code: 'sleep 50' })]);
      console.log(JSON.stringify(results.map((result) => result.metrics.worker.pid)));
    `;
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], { timeout: 30_000 });
    const pids = JSON.parse(stdout) as number[];
    expect(new Set(pids).size).toBe(2);
    for (const pid of pids) await waitFor(() => (isAlive(pid) ? undefined : true), `executor ${pid} to end`);
  });

  it('close() answers what did not finish by its deadline with internal_error POOL_CLOSED', async () => {
    const pool = await scriptedPool();
    const { pidFile, pid } = pidProbe();
    const long = pool.execute({ code: 'sleep 20000', input: { pidFile } });
    const queued = pool.execute({ code: 'sleep 20000' });
    const behind = pool.execute({ code: 'echo' });
    const executorPid = await pid();
    await new Promise((resolve) => setTimeout(resolve, 100));
    await pool.close({ deadlineMs: 50 });
    const results = await Promise.all([long, queued, behind]);
    for (const result of results) {
      expect(result).toMatchObject({ status: 'internal_error', error: { code: 'POOL_CLOSED' } });
    }
    // The running one reports the time it ran; the one behind it, the time it waited.
    expect(results[0]!.metrics.wallTimeMs).toBeGreaterThanOrEqual(100);
    expect(results[2]!.metrics.queueWaitMs).toBeGreaterThanOrEqual(100);
    expect(isAlive(executorPid)).toBe(false);
  });
});
