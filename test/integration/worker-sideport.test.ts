// The worker's HTTP side port and start-up checks against a real redis-server and the real engine:
// /metrics answers while Redis is away, a side port that cannot be bound stops start-up before any
// job is taken, createWorker's options are checked before anything starts, and a start-up that
// fails (Redis away, a bad option) leaves nothing running: the process it ran in can end.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { pino, type Logger } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool } from '../../src/pool.ts';
import { createWorker, type WorkerHandle, type WorkerOptions } from '../../workers/main.ts';
import { startRedis, uniqueQueue, type RedisServer } from '../helpers/redis.ts';
import { isAlive } from '../helpers/process.ts';

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

describe('logs while Redis is away', () => {
  it('say each connection error once per outage, not once per retry of each connection', { timeout: 60_000 }, async () => {
    const { logger, lines } = capturingLogger();
    await worker(uniqueQueue('outage-log'), { logger });
    await redis.kill();
    try {
      // ioredis retries every connection every few hundred ms: several rounds pass meanwhile.
      await new Promise((resolve) => setTimeout(resolve, 3_000));
    } finally {
      await redis.start();
    }
    const errors = lines.filter((line) => line.msg === 'redis error' || line.msg === 'worker error');
    expect(errors.length).toBeGreaterThan(0);
    const messages = errors.map((line) => `${String(line.msg)}: ${String(line.err)}`);
    expect(new Set(messages).size).toBe(messages.length);
  });
});

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

describe('/readyz while Redis does not answer', () => {
  it('says not ready once Redis has kept the connection without answering for seconds, and ready again after', { timeout: 60_000 }, async () => {
    const handle = await worker(uniqueQueue('ready-silent'), { metricsPort: 0 });
    const ready = async () => {
      const response = await fetch(`http://127.0.0.1:${handle.metricsPort as number}/readyz`, { signal: AbortSignal.timeout(HANG_MS) });
      return { status: response.status, text: await response.text() };
    };
    expect((await ready()).status).toBe(200);
    redis.pause();
    try {
      let seen = await ready();
      for (let i = 0; i < 100 && seen.status === 200; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        seen = await ready();
      }
      expect(seen.status).toBe(503);
      expect(seen.text).toMatch(/redis has not answered for \d+ s/);
    } finally {
      redis.resume();
    }
    let back = await ready();
    for (let i = 0; i < 100 && back.status !== 200; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      back = await ready();
    }
    expect(back.status).toBe(200);
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
    ['connectTimeoutMs', { connectTimeoutMs: 99 }],
    ['connectTimeoutMs', { connectTimeoutMs: 600_001 }],
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
      connectTimeoutMs: 600_000,
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

/** Settles with the rejection, or fails the test when start-up neither fails nor succeeds in time. */
async function rejection(started: Promise<WorkerHandle>, ms = HANG_MS): Promise<Error> {
  closers.push(() => started.then((handle) => handle.close({ graceMs: 0 }), () => undefined));
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    started.then(
      () => 'started' as const,
      (error: unknown) => error as Error,
    ),
    new Promise<'hung'>((resolve) => (timer = setTimeout(() => resolve('hung'), ms))),
  ]);
  clearTimeout(timer);
  expect(outcome).toBeInstanceOf(Error);
  return outcome as Error;
}

/** A pino logger whose lines the test reads: the pool it creates logs each executor it spawns. */
function capturingLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { logger, lines };
}

function spawnedExecutors(lines: readonly Record<string, unknown>[]): number[] {
  return lines.filter((line) => line.event === 'executor_spawned').map((line) => line.executorPid as number);
}

/** A TCP port that accepts connections and never answers, counting them: a Redis that is there and mute. */
async function muteServer(): Promise<{ url: string; accepted: () => number }> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server = createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  closers.push(
    () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(resolve);
      }),
  );
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return { url: `redis://127.0.0.1:${port}`, accepted: () => accepted };
}

/** This process's child processes (Linux /proc): redis-server, the shared pool's executors, any new one. */
function childPids(): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        // The command name may hold spaces and parentheses: the fields after its last ')' are fixed.
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === process.pid;
      } catch {
        return false; // ended meanwhile
      }
    })
    .map(Number)
    .sort((a, b) => a - b);
}


/** Nothing listens on port 1 (privileged, unassigned): every connect is refused. */
const UNREACHABLE = 'redis://127.0.0.1:1';
const SMALL_POOL = { executors: 1, threadsPerExecutor: 1 };

describe('createWorker when Redis does not answer', () => {
  it('rejects within connectTimeoutMs, naming Redis and why, when nothing listens', async () => {
    const from = Date.now();
    const error = await rejection(createWorker(options(uniqueQueue('unreachable'), { connection: UNREACHABLE, connectTimeoutMs: 500 })));
    expect(error.name).toBe('QueueError');
    expect((error as Error & { code?: string }).code).toBe('REDIS_UNAVAILABLE');
    expect(error.message).toMatch(/^Redis did not answer within 500 ms \(connect\) \(.*ECONNREFUSED/);
    expect(Date.now() - from).toBeGreaterThanOrEqual(450);
  });

  it('rejects within connectTimeoutMs when the port accepts connections and never answers, starting no executor', async () => {
    const mute = await muteServer();
    const { logger, lines } = capturingLogger();
    const error = await rejection(
      createWorker({ connection: mute.url, queue: uniqueQueue('mute'), connectTimeoutMs: 500, poolOptions: SMALL_POOL, logger }),
    );
    expect(error.message).toMatch(/^Redis did not answer within 500 ms \(connect\)/);
    expect(mute.accepted()).toBeGreaterThan(0);
    // Redis comes first: a start-up that cannot reach it costs no executor.
    expect(spawnedExecutors(lines)).toEqual([]);
  });
});

describe('a failed start-up leaves nothing running', () => {
  let dir: string;
  let script: string;
  const MAIN_URL = new URL('../../workers/main.ts', import.meta.url).href;
  /** A generous bound: the child ends in a few seconds once nothing it made is left open. */
  const CHILD_MS = 30_000;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'sandpool-startup-'));
    script = join(dir, 'start.mjs');
    // No process.exit: the process ends only when nothing createWorker made is left open.
    writeFileSync(
      script,
      `const [mainUrl, json] = process.argv.slice(2);
const { createWorker } = await import(mainUrl);
try {
  const handle = await createWorker(JSON.parse(json));
  console.log(JSON.stringify({ started: true }));
  await handle.close({ graceMs: 0 });
} catch (error) {
  console.log(JSON.stringify({ name: error.name, message: error.message }));
}
`,
    );
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Runs createWorker in a process of its own: what it printed, and whether it ended on its own. */
  function startInChild(workerOptions: Record<string, unknown>): Promise<{ outcome: { name?: string; message?: string; started?: boolean }; exitedOnItsOwn: boolean; code: number | null }> {
    return new Promise((resolve) => {
      const child = execFile(
        process.execPath,
        ['--no-node-snapshot', script, MAIN_URL, JSON.stringify(workerOptions)],
        { timeout: CHILD_MS, killSignal: 'SIGKILL' },
        (_error, stdout) => {
          const line = stdout.trim().split('\n').at(-1) ?? '';
          resolve({
            outcome: line.startsWith('{') ? (JSON.parse(line) as { message?: string }) : {},
            exitedOnItsOwn: child.signalCode === null,
            code: child.exitCode,
          });
        },
      );
    });
  }

  it('Redis unreachable: rejects naming Redis, closes the connections, and the process ends by itself', { timeout: 60_000 }, async () => {
    const { outcome, exitedOnItsOwn, code } = await startInChild({
      connection: UNREACHABLE,
      queue: uniqueQueue('child-unreachable'),
      connectTimeoutMs: 500,
      poolOptions: SMALL_POOL,
    });
    expect(outcome.message).toMatch(/^Redis did not answer within 500 ms/);
    expect(exitedOnItsOwn).toBe(true);
    expect(code).toBe(0);
  });

  it('a queue name BullMQ refuses: rejects naming options.queue before anything starts, and the process ends by itself', { timeout: 60_000 }, async () => {
    const { outcome, exitedOnItsOwn, code } = await startInChild({ connection: redis.url, queue: 'a:b', poolOptions: SMALL_POOL });
    expect(outcome.message).toMatch(/^options\.queue: /);
    expect(exitedOnItsOwn).toBe(true);
    expect(code).toBe(0);
  });

  it('an engine that fails to start after Redis connected: the connections are closed and the process ends by itself', { timeout: 60_000 }, async () => {
    const broken = new URL('../fixtures/threads/broken.ts', import.meta.url).href;
    const { outcome, exitedOnItsOwn, code } = await startInChild({
      connection: redis.url,
      queue: uniqueQueue('child-broken'),
      poolOptions: { ...SMALL_POOL, threadModule: broken },
    });
    expect(outcome.message).toMatch(/the executors failed to start/);
    expect(exitedOnItsOwn).toBe(true);
    expect(code).toBe(0);
  });

  it('a side port in use: the created pool, connections and queue are closed and the process ends by itself', { timeout: 60_000 }, async () => {
    const { port } = await occupiedPort();
    const { outcome, exitedOnItsOwn, code } = await startInChild({
      connection: redis.url,
      queue: uniqueQueue('child-port'),
      poolOptions: SMALL_POOL,
      metricsPort: port,
      metricsHost: '127.0.0.1',
    });
    expect(outcome.message).toMatch(/in use/);
    expect(exitedOnItsOwn).toBe(true);
    expect(code).toBe(0);
  });

  it('a side port in use: the executors of the pool it created are gone when createWorker rejects', async () => {
    const { port } = await occupiedPort();
    const { logger, lines } = capturingLogger();
    const error = await rejection(
      createWorker({ connection: redis.url, queue: uniqueQueue('port-pool'), poolOptions: SMALL_POOL, logger, metricsPort: port, metricsHost: '127.0.0.1' }),
    );
    expect(error.message).toMatch(/in use/);
    const pids = spawnedExecutors(lines);
    expect(pids).toHaveLength(1);
    expect(pids.filter(isAlive)).toEqual([]);
  });
});

describe('createWorker refuses bad options before anything starts', () => {
  /**
   * Starts a worker whose Redis is a mute port and whose pool is created from options: a refused
   * option must open no connection and spawn no executor (the pool logs each one it spawns, and
   * this process would have a new child).
   */
  async function refused(bad: Record<string, unknown>): Promise<Error> {
    const mute = await muteServer();
    const { logger, lines } = capturingLogger();
    const children = childPids();
    const error = await rejection(
      createWorker({
        connection: mute.url,
        queue: uniqueQueue('refused'),
        connectTimeoutMs: 1_000,
        poolOptions: SMALL_POOL,
        logger,
        ...bad,
      } as WorkerOptions),
    );
    // Anything started would have connected or spawned by now; a refused start-up does neither.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(mute.accepted()).toBe(0);
    expect(spawnedExecutors(lines)).toEqual([]);
    expect(childPids()).toEqual(children);
    return error;
  }

  it.each([
    [{ queue: 'a:b' }, RangeError, /^options\.queue: expected 1-128 of A-Z a-z 0-9 _ -, got "a:b"$/],
    [{ queue: '' }, RangeError, /^options\.queue: expected 1-128 /],
    [{ queue: 'q'.repeat(129) }, RangeError, /^options\.queue: expected 1-128 /],
    [{ queue: 5 }, TypeError, /^options\.queue: expected a string .*got number$/],
    [{ prefix: 'a:b' }, RangeError, /^options\.prefix: expected 1-64 of .*\(no colon\), got "a:b"$/],
    [{ prefix: 'p'.repeat(65) }, RangeError, /^options\.prefix: expected 1-64 /],
    [{ prefix: null }, TypeError, /^options\.prefix: expected a string .*got null$/],
    [{ connection: 'http://127.0.0.1:6379' }, TypeError, /^options\.connection: expected a redis:\/\/ or rediss:\/\/ URL/],
    [{ connection: 6379 }, TypeError, /^options\.connection: .*got number$/],
    [{ connection: { keyPrefix: 'x:' } }, TypeError, /^options\.connection\.keyPrefix: not supported/],
  ] as const)('%o is refused naming the option', async (bad, type, message) => {
    const error = await refused(bad);
    expect(error).toBeInstanceOf(type);
    expect(error.message).toMatch(message);
  });

  it.each(['concurency', 'lockDuration'])('an unknown option (%s) is a RangeError naming it', async (key) => {
    const error = await refused({ [key]: 2_000 });
    expect(error).toBeInstanceOf(RangeError);
    expect(error.message).toBe(`options.${key}: unknown option`);
  });

  it.each([
    ['an object without execute', {}],
    ['execute that is not a function', { execute: 1 }],
    ['null', null],
  ])('a pool that is %s is a TypeError naming options.pool', async (_, bad) => {
    const error = await refused({ pool: bad, poolOptions: undefined });
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toMatch(/^options\.pool: expected an engine with an execute\(\) method/);
  });

  it('pool with poolOptions is refused: the options would be silently ignored', async () => {
    const error = await refused({ pool });
    expect(error).toBeInstanceOf(RangeError);
    expect(error.message).toMatch(/^options\.poolOptions: not used with options\.pool/);
  });

  it.each([
    [{ poolOptions: null }, TypeError, /^options\.poolOptions: expected an object, got null$/],
    [{ poolOptions: 'small' }, TypeError, /^options\.poolOptions: expected an object, got string$/],
    [{ poolOptions: { executors: 0 } }, RangeError, /^options\.poolOptions\.executors: expected an integer from 1 to 64, got 0$/],
    [{ poolOptions: { execuotrs: 1 } }, RangeError, /^options\.poolOptions\.execuotrs: unknown option$/],
    [{ poolOptions: { ceilings: { timeoutMs: -1 } } }, RangeError, /^options\.poolOptions\.ceilings\.timeoutMs: /],
    [{ poolOptions: { logger: pino({ level: 'silent' }) } }, RangeError, /^options\.poolOptions\.logger: /],
  ] as const)('poolOptions %o is refused naming options.poolOptions', async (bad, type, message) => {
    const error = await refused(bad);
    expect(error).toBeInstanceOf(type);
    expect(error.message).toMatch(message);
  });

  it.each([
    ['an empty object', {}],
    ['an object without debug', { child: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined }],
    ['a string', 'info'],
  ])('a logger that is %s is a TypeError naming options.logger', async (_, bad) => {
    // Its lines are not the capturing logger's: the mute port and this process's children show nothing started.
    const error = await refused({ logger: bad });
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toMatch(/^options\.logger: expected a pino logger \(with child, info, warn, error, debug methods\)$/);
  });

  it('a pino logger and a pool with execute() are accepted', async () => {
    const { logger } = capturingLogger();
    const handle = await worker(uniqueQueue('accepted'), { logger, pool: { execute: pool.execute.bind(pool) } });
    expect(handle.notReadyReason()).toBeUndefined();
  });
});
