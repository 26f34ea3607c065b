// The worker's HTTP side port and start-up checks against a real redis-server and the real engine:
// /metrics answers while Redis is away, a side port that cannot be bound stops start-up before any
// job is taken, and createWorker's numeric options are checked before anything starts.
import { createServer, type Server } from 'node:net';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool } from '../../src/pool.ts';
import { createWorker, type WorkerHandle, type WorkerOptions } from '../../workers/main.ts';
import { startRedis, uniqueQueue, type RedisServer } from '../helpers/redis.ts';

/** Bound that only detects a hang: a scrape or a failed start-up takes milliseconds here. */
const HANG_MS = 5_000;

let redis: RedisServer;
let pool: Awaited<ReturnType<typeof createPool>>;
const closers: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  redis = await startRedis();
  pool = await createPool({ executors: 1, threadsPerExecutor: 1 });
});

afterAll(async () => {
  for (const close of closers.reverse()) await close().catch(() => undefined);
  await pool?.close({ deadlineMs: 2_000 });
  await redis?.dispose();
});

function options(queue: string, extra: Partial<WorkerOptions> = {}): WorkerOptions {
  return { connection: redis.url, queue, pool, concurrency: 1, metricsHost: '127.0.0.1', ...extra };
}

async function worker(queue: string, extra: Partial<WorkerOptions> = {}): Promise<WorkerHandle> {
  const handle = await createWorker(options(queue, extra));
  closers.push(() => handle.close({ graceMs: 1_000 }));
  return handle;
}

function rawQueue(queue: string): Queue {
  const q = new Queue(queue, { connection: { url: redis.url } });
  // While the test has Redis down, this connection's retries are expected, not news.
  q.on('error', () => undefined);
  closers.push(() => q.close());
  return q;
}

async function scrape(port: number): Promise<{ status: number; text: string }> {
  const response = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(HANG_MS) });
  return { status: response.status, text: await response.text() };
}

/** Holds a loopback port, as another process would. */
async function occupiedPort(): Promise<{ port: number; server: Server }> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  closers.push(() => new Promise((resolve) => server.close(resolve)));
  const address = server.address();
  return { port: typeof address === 'object' && address ? address.port : 0, server };
}

describe('/metrics while Redis is away', () => {
  it('answers promptly with the process\'s own metrics and keeps the queue gauges\' last values', { timeout: 60_000 }, async () => {
    const queue = uniqueQueue('scrape-down');
    // A job that stays delayed gives the depth gauge a value to keep.
    await rawQueue(queue).add('later', { code: '1' }, { delay: 3_600_000 });
    const handle = await worker(queue, { metricsPort: 0 });
    const port = handle.metricsPort as number;
    const before = await scrape(port);
    expect(before.text).toMatch(/sandpool_queue_depth\{state="delayed"\} 1/);
    expect(before.text).toContain('bullmq_job_count');

    await redis.kill();
    try {
      // Several scrapes in a row: none may wait on Redis, and none may leave a read queued behind it.
      for (let i = 0; i < 3; i++) {
        const during = await scrape(port);
        expect(during.status).toBe(200);
        expect(during.text).toContain('sandpool_jobs_total{status="ok"} 0');
        expect(during.text).toContain('sandpool_pool_utilisation');
        expect(during.text).toContain('process_cpu_user_seconds_total');
        expect(during.text).toMatch(/sandpool_queue_depth\{state="delayed"\} 1/);
      }
      const ready = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(HANG_MS) });
      expect(ready.status).toBe(503);
    } finally {
      await redis.start();
    }
    // Back: scrapes still answer, and read the queue again once the connection is ready.
    expect((await scrape(port)).status).toBe(200);
    for (let i = 0; i < 100 && !(await scrape(port)).text.includes('bullmq_job_count'); i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const after = await scrape(port);
    expect(after.text).toMatch(/sandpool_queue_depth\{state="delayed"\} 1/);
    expect(after.text).toContain('bullmq_job_count');
  });
});

describe('/metrics while Redis is slow', () => {
  it('answers with the last queue values once the bound passes, before Redis does', { timeout: 60_000 }, async () => {
    const queue = uniqueQueue('scrape-slow');
    await rawQueue(queue).add('later', { code: '1' }, { delay: 3_600_000 });
    const handle = await worker(queue, { metricsPort: 0 });
    const port = handle.metricsPort as number;
    expect((await scrape(port)).text).toMatch(/sandpool_queue_depth\{state="delayed"\} 1/);

    // A script that keeps the server busy for 4 s: connected, ready, and answering nobody.
    const busy = new Redis(redis.url);
    closers.push(() => busy.quit());
    const held = busy.eval(
      "local t = redis.call('TIME'); local from = t[1] * 1e6 + t[2]; repeat t = redis.call('TIME') until t[1] * 1e6 + t[2] - from > 4e6; return 1",
      0,
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    const first = await Promise.race([scrape(port).then((answer) => ({ answer })), held.then(() => 'redis answered first' as const)]);
    expect(first).not.toBe('redis answered first');
    const { answer } = first as { answer: { status: number; text: string } };
    expect(answer.status).toBe(200);
    expect(answer.text).toContain('sandpool_jobs_total{status="ok"} 0');
    expect(answer.text).toMatch(/sandpool_queue_depth\{state="delayed"\} 1/);
    expect(await held).toBe(1);
  });
});

describe('side port that cannot be bound', () => {
  async function queueWithJobs(label: string): Promise<{ name: string; raw: Queue }> {
    const name = uniqueQueue(label);
    const raw = rawQueue(name);
    await raw.addBulk([1, 2, 3].map((n) => ({ name: 'job', data: { code: String(n) } })));
    return { name, raw };
  }

  async function expectUntouched(raw: Queue): Promise<void> {
    expect(await raw.getJobCounts('waiting', 'active', 'completed', 'failed')).toEqual({ waiting: 3, active: 0, completed: 0, failed: 0 });
    for (const job of await raw.getJobs(['waiting'])) expect(job.processedOn).toBeUndefined();
  }

  it('a port already in use ends start-up with an error naming it, and no job is taken', async () => {
    const { port } = await occupiedPort();
    const { name, raw } = await queueWithJobs('port-taken');
    const started = createWorker(options(name, { metricsPort: port }));
    closers.push(() => started.then((handle) => handle.close({ graceMs: 0 }), () => undefined));
    const error = (await started.then(
      () => undefined,
      (e: unknown) => e,
    )) as Error;
    expect(error).toBeInstanceOf(Error);
    expect(error.message).toContain(`127.0.0.1:${port}`);
    expect(error.message).toMatch(/in use/);
    await expectUntouched(raw);
  });

  it.each([70_000, -1, 1.5])('port %s is refused before anything starts, and no job is taken', async (metricsPort) => {
    const { name, raw } = await queueWithJobs('port-invalid');
    const started = createWorker(options(name, { metricsPort }));
    closers.push(() => started.then((handle) => handle.close({ graceMs: 0 }), () => undefined));
    await expect(started).rejects.toThrow(RangeError);
    await expect(started).rejects.toThrow(`options.metricsPort: expected an integer from 0 to 65535 or null (none), got ${metricsPort}`);
    await expectUntouched(raw);
  });
});

describe('createWorker options', () => {
  it.each([
    ['lockDurationMs', { lockDurationMs: -5 }],
    ['eventsMaxLen', { eventsMaxLen: -1 }],
    ['concurrency', { concurrency: 0 }],
    ['concurrency', { concurrency: 1.5 }],
    ['stalledIntervalMs', { stalledIntervalMs: Number.NaN }],
    ['maxStalledCount', { maxStalledCount: -1 }],
    ['shutdownGraceMs', { shutdownGraceMs: Number.POSITIVE_INFINITY }],
    ['keepCompleted.count', { keepCompleted: { ageSeconds: 60, count: -1 } }],
    ['keepFailed.ageSeconds', { keepFailed: { ageSeconds: 0.5, count: 10 } }],
  ] as const)('refuses a bad %s with a RangeError naming it and the allowed range', async (field, bad) => {
    const started = createWorker(options(uniqueQueue('options'), bad as Partial<WorkerOptions>));
    closers.push(() => started.then((handle) => handle.close({ graceMs: 0 }), () => undefined));
    const error = (await started.then(
      () => undefined,
      (e: unknown) => e,
    )) as Error;
    expect(error).toBeInstanceOf(RangeError);
    expect(error.message).toMatch(new RegExp(`^options\\.${field.replace('.', '\\.')}: expected an integer from \\d+ to \\d+, got `));
  });

  it('accepts values at the edges of each range', async () => {
    const handle = await worker(uniqueQueue('edges'), {
      concurrency: 1,
      lockDurationMs: 1_000,
      stalledIntervalMs: 500,
      maxStalledCount: 0,
      shutdownGraceMs: 0,
      keepCompleted: { ageSeconds: 0, count: 0 },
      eventsMaxLen: 100,
      metricsPort: null,
    });
    expect(handle.metricsPort).toBeUndefined();
    expect(handle.notReadyReason()).toBeUndefined();
  });

  it('refuses a close grace that would never end, and still closes when asked properly', async () => {
    const handle = await worker(uniqueQueue('grace'));
    await expect(handle.close({ graceMs: Number.NaN })).rejects.toThrow(/^options\.graceMs: expected an integer from 0 to \d+, got NaN$/);
    expect(handle.notReadyReason()).toBeUndefined();
    await handle.close({ graceMs: 0 });
    expect(handle.notReadyReason()).toBe('draining');
  });
});
