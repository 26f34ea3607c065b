// Queue mode with real `sandpool worker` processes (bin/sandpool.js, as the container runs it):
// kill -9 with jobs in flight, SIGTERM drain, a job that keeps killing workers, a Redis restart
// with AOF. Real redis-server, real engine; each test on its own queue.
import { spawn, type ChildProcess } from 'node:child_process';
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createClient, type Client, type QueueError } from '../../src/client.ts';
import type { Result } from '../../src/result.ts';
import { startRedis, uniqueQueue, type RedisServer } from '../helpers/redis.ts';

const BIN = fileURLToPath(new URL('../../bin/sandpool.js', import.meta.url));
/** A job that holds its slot for a while (CPU, as the sandbox has no host timers). */
const SLOW = (ms: number, value: string) => `const end = Date.now() + ${ms}; while (Date.now() < end) {} ${JSON.stringify(value)}`;
const SLOW_LIMITS = { timeoutMs: 20_000, cpuTimeMs: 20_000 };

interface WorkerProcess {
  proc: ChildProcess;
  pid: number;
  /** BullMQ worker name prefix of this process: jobs it took carry it in processedBy. */
  name: string;
  metricsPort: number;
  logs: Record<string, unknown>[];
  exited: Promise<number | null>;
}

let redis: RedisServer;
const running = new Set<WorkerProcess>();
const closers: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  redis = await startRedis({ appendOnly: true });
});

afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close().catch(() => undefined);
  for (const worker of running) {
    worker.proc.kill('SIGKILL');
    await worker.exited;
  }
  running.clear();
});

afterAll(async () => {
  await redis?.dispose();
});

function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('SANDPOOL_')) env[key] = value;
  return env;
}

async function spawnWorker(queue: string, extra: string[] = [], { waitReady = true } = {}): Promise<WorkerProcess> {
  const args = [
    '--no-node-snapshot', BIN, 'worker',
    '--redis', redis.url, '--queue', queue,
    '--executors', '1', '--threads', '2', '--concurrency', '2',
    '--lock-duration', '2000', '--stalled-interval', '1000',
    '--metrics-port', '0', '--grace', '10000',
    ...extra,
  ];
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'], env: cleanEnv() });
  const logs: Record<string, unknown>[] = [];
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  let buffered = '';
  const ready = new Promise<number>((resolve, reject) => {
    proc.stdout?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        try {
          const record = JSON.parse(line) as Record<string, unknown>;
          logs.push(record);
          if (record.msg === 'worker ready') resolve(Number(record.metricsPort));
        } catch {
          // Not a log line (nothing else writes to stdout): ignored.
        }
      }
    });
    exited.then((code) => reject(new Error(`worker exited with ${code} before it was ready`)));
  });
  const worker: WorkerProcess = {
    proc,
    pid: proc.pid as number,
    name: `${hostname()}:${proc.pid}:`,
    metricsPort: 0,
    logs,
    exited,
  };
  running.add(worker);
  if (!waitReady) {
    ready.then((port) => (worker.metricsPort = port), () => undefined);
    return worker;
  }
  worker.metricsPort = await ready;
  return worker;
}

async function kill9(worker: WorkerProcess): Promise<void> {
  worker.proc.kill('SIGKILL');
  await worker.exited;
  running.delete(worker);
}

async function newClient(queue: string): Promise<Client> {
  const client = await createClient({ connection: redis.url, queue, redisTimeoutMs: 10_000 });
  closers.push(() => client.close());
  return client;
}

/** A worker process on a queue of its own, running one 1.5 s job that ends with `value`. */
async function runningSlowJob(name: string, value: string) {
  const queue = uniqueQueue(name);
  const q = rawQueue(queue);
  const worker = await spawnWorker(queue);
  const client = await newClient(queue);
  const inFlight = client.execute({ code: SLOW(1_500, value), limits: SLOW_LIMITS });
  await until('the job to run', async () => (await q.getActiveCount()) === 1);
  return { queue, q, worker, client, inFlight };
}

function rawQueue(queue: string): Queue {
  const q = new Queue(queue, { connection: { url: redis.url } });
  closers.push(() => q.close());
  return q;
}

async function until<T>(what: string, probe: () => Promise<T | undefined | false>, tries = 600): Promise<T> {
  for (let i = 0; i < tries; i++) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`gave up waiting for ${what}`);
}

describe('worker processes', () => {
  it('kill -9 with jobs in flight: every job still completes, on another worker', { timeout: 60_000 }, async () => {
    const queue = uniqueQueue('kill9');
    const q = rawQueue(queue);
    const first = await spawnWorker(queue);
    const client = await newClient(queue);
    const results = ['a', 'b', 'c', 'd'].map((v) => client.execute({ code: SLOW(1_500, v), limits: SLOW_LIMITS }));
    const active = await until('two jobs running on the first worker', async () => {
      const jobs = await q.getActive();
      return jobs.length === 2 ? jobs : undefined;
    });
    await kill9(first);
    const second = await spawnWorker(queue);
    const done = await Promise.all(results);
    expect(done.map((r) => [r.status, r.value])).toEqual([['ok', 'a'], ['ok', 'b'], ['ok', 'c'], ['ok', 'd']]);
    for (const job of active) {
      const after = await q.getJob(job.id as string);
      expect(after?.processedBy?.startsWith(second.name)).toBe(true);
      expect(after?.stalledCounter).toBe(1);
    }
  });

  it('SIGTERM drains: in-flight jobs finish, nothing new is taken, exit code 0', { timeout: 60_000 }, async () => {
    const { queue, q, worker, client, inFlight } = await runningSlowJob('drain', 'value-e7d1');
    worker.proc.kill('SIGTERM');
    await until('the worker to drain', async () => worker.logs.some((l) => l.msg === 'worker draining'));
    const ready = await fetch(`http://127.0.0.1:${worker.metricsPort}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.text()).toContain('draining');
    const late = await client.submit({ code: '"late"' });
    expect((await inFlight).value).toBe('value-e7d1');
    expect(await worker.exited).toBe(0);
    running.delete(worker);
    // One audit line per job: who, which code (by hash), what happened, what it cost; never the
    // code or its output.
    const lines = worker.logs.filter((l) => l.msg === 'job finished');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ tenantId: 'default', status: 'ok', attempt: 1 });
    expect(lines[0]?.codeHash).toMatch(/^[0-9a-f]{16}$/);
    expect(typeof lines[0]?.wallTimeMs).toBe('number');
    expect(JSON.stringify(worker.logs)).not.toMatch(/Date\.now|value-e7d1/);
    expect(await (await q.getJob(late))?.getState()).toBe('waiting');
    await spawnWorker(queue);
    expect((await until('the late job', () => client.getResult(late)))?.value).toBe('late');
  });

  it('a second signal forces the exit at once', { timeout: 60_000 }, async () => {
    const queue = uniqueQueue('force');
    const q = rawQueue(queue);
    const worker = await spawnWorker(queue);
    const client = await newClient(queue);
    void client.submit({ code: SLOW(20_000, 'never'), limits: SLOW_LIMITS });
    await until('the job to run', async () => (await q.getActiveCount()) === 1);
    worker.proc.kill('SIGTERM');
    await until('the worker to drain', async () => worker.logs.some((l) => l.msg === 'worker draining'));
    // A repeat within a second is the same request (see the next test): this one comes later.
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    worker.proc.kill('SIGINT');
    expect(await worker.exited).toBe(8);
    running.delete(worker);
  });

  it('a stop during start-up is kept: the worker finishes starting, drains, and exits 0', { timeout: 60_000 }, async () => {
    const queue = uniqueQueue('early');
    const worker = await spawnWorker(queue, [], { waitReady: false });
    // Redis is connected and the engine is starting: the worker is not ready yet.
    await until('the engine to start', async () => worker.logs.some((l) => l.event === 'executor_spawned'));
    worker.proc.kill('SIGTERM');
    expect(await worker.exited).toBe(0);
    running.delete(worker);
    expect(worker.logs.some((l) => l.msg === 'shutting down')).toBe(true);
  });

  it('one stop delivered twice at once (a terminal group and a wrapper) drains rather than forcing', { timeout: 60_000 }, async () => {
    const { queue, q, worker, client, inFlight } = await runningSlowJob('twice', 'kept');
    worker.proc.kill('SIGTERM');
    worker.proc.kill('SIGINT');
    expect((await inFlight).value).toBe('kept');
    expect(await worker.exited).toBe(0);
    running.delete(worker);
    expect(worker.logs.some((l) => typeof l.msg === 'string' && l.msg.startsWith('second signal'))).toBe(false);
  });

  it('past its grace a draining worker hands its jobs back; another worker runs them', { timeout: 60_000 }, async () => {
    const queue = uniqueQueue('handback');
    const q = rawQueue(queue);
    const worker = await spawnWorker(queue, ['--grace', '200']);
    const client = await newClient(queue);
    const pending = client.execute({ code: SLOW(3_000, 'again'), limits: SLOW_LIMITS });
    await until('the job to run', async () => (await q.getActiveCount()) === 1);
    worker.proc.kill('SIGTERM');
    expect(await worker.exited).toBe(0);
    running.delete(worker);
    expect(worker.logs.some((l) => l.msg === 'job handed back')).toBe(true);
    const [waiting] = await q.getWaiting();
    expect(waiting?.attemptsMade).toBe(0);
    await spawnWorker(queue);
    const result = await pending;
    expect(result.status).toBe('ok');
    expect(result.value).toBe('again');
  });

  it('SIGTERM while Redis is down still ends the process, with exit code 0', { timeout: 60_000 }, async () => {
    const queue = uniqueQueue('down-term');
    const worker = await spawnWorker(queue);
    await redis.stop();
    try {
      worker.proc.kill('SIGTERM');
      expect(await worker.exited).toBe(0);
      running.delete(worker);
    } finally {
      await redis.start();
    }
  });

  it('a job that keeps killing its workers ends as internal_error instead of looping', { timeout: 90_000 }, async () => {
    const queue = uniqueQueue('poison');
    const q = rawQueue(queue);
    const client = await newClient(queue);
    const id = await client.submit({ code: SLOW(10_000, 'never'), limits: SLOW_LIMITS });
    for (let round = 0; round < 2; round++) {
      const worker = await spawnWorker(queue);
      await until('the job to run on this worker', async () => {
        const job = await q.getJob(id);
        return job?.processedBy?.startsWith(worker.name) && (await job.getState()) === 'active';
      });
      await kill9(worker);
    }
    const last = await spawnWorker(queue);
    const result = await until('the final result', () => client.getResult(id), 1_200);
    expect(result.status).toBe('internal_error');
    expect(await (await q.getJob(id))?.getState()).toBe('failed');
    // Its end has its audit line, as every job's: tenant, code hash, status.
    const audit = await until('the audit line', async () => last.logs.find((l) => l.msg === 'job finished' && l.jobId === id));
    expect(audit).toMatchObject({ tenantId: 'default', status: 'internal_error', retrying: false });
    expect(audit.codeHash).toMatch(/^[0-9a-f]{16}$/);
  });

  it('Redis is killed and restarts (AOF): workers reconnect and no accepted job is lost', { timeout: 90_000 }, async () => {
    const queue = uniqueQueue('restart');
    const q = rawQueue(queue);
    const client = await newClient(queue);
    // Accepted while no worker runs, so they are in Redis and nowhere else when it stops.
    const before = await client.submitBatch(
      Array.from({ length: 6 }, (_, i) => ({ code: SLOW(300, String(i)), limits: SLOW_LIMITS })),
    );
    // A caller waiting across the restart gets its Result too.
    const waiting = client.execute({ code: SLOW(300, 'waited'), limits: SLOW_LIMITS });
    await spawnWorker(queue);
    await until('a job to run', async () => (await q.getActiveCount()) > 0);
    // SIGKILL, not a clean shutdown: what survives is what the append-only file had already
    // fsynced, which with appendfsync always is every write Redis acknowledged.
    await redis.kill();
    await redis.start();
    const after = await until('Redis to take jobs again', () => client.submit({ code: '"after"' }).catch(() => undefined));
    // The client's connections come back one by one (submits travel on its own, reads on BullMQ's):
    // a read may still fail fast with REDIS_UNAVAILABLE for a moment after a submit succeeded.
    const read = (id: string) => client.getResult(id).catch((error: unknown) => {
      if ((error as QueueError).code !== 'REDIS_UNAVAILABLE') throw error;
      return undefined;
    });
    const values = await Promise.all(
      [...before, after].map((id) => until(`job ${id}`, () => read(id), 1_200).then((r: Result) => r.value)),
    );
    expect(values).toEqual(['0', '1', '2', '3', '4', '5', 'after']);
    expect((await waiting).value).toBe('waited');
    expect(await q.getFailedCount()).toBe(0);
  });
});
