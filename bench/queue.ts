// Queue-mode benchmark: `node --no-node-snapshot bench/queue.ts [--jobs N] [--throughput-jobs N]`.
// Starts its own redis-server on a free port and real worker processes, and measures in one run:
//   1. round trip of a trivial job, sequential: BullMQ with a no-op processor (Queue.add +
//      waitUntilFinished), sandpool (client.execute through `sandpool worker`), sandpool's queue
//      path with a no-op engine, and the engine alone (embedded pool.execute); so the queue's own
//      share, (sandpool - engine) / no-op, shows apart from the engine's;
//   2. throughput of a CPU-bound job with 1 and then 2 `sandpool worker` processes: jobs/s, ratio.
// Baselines are measured in the same run, so the ratios survive a noisy machine.
import { spawn, type ChildProcess } from 'node:child_process';
import { availableParallelism, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Queue, QueueEvents, Worker } from 'bullmq';
import { pino } from 'pino';
import { createClient } from '../src/client.ts';
import { DEFAULT_LIMITS } from '../src/limits.ts';
import { createPool } from '../src/pool.ts';
import { resultWithoutRun, type Result } from '../src/result.ts';
import { createWorker } from '../workers/main.ts';
import { startRedis, uniqueQueue } from '../test/helpers/redis.ts';

const BIN = fileURLToPath(new URL('../bin/sandpool.js', import.meta.url));
const SELF = fileURLToPath(import.meta.url);
const TRIVIAL = '1 + 1';
/** ~150 ms of CPU in an isolate on the 2-core VM here (i * i outgrows small integers): the workers, not Redis, are the bottleneck. */
const CPU_BOUND = 'let s = 0; for (let i = 0; i < 4e6; i++) s = (s + i * i) % 1000003; s';

/** The retention and retry options sandpool's client and worker use, given to the no-op side too. */
const KEEP = { age: 24 * 3600, count: 10_000 };
const JOB_OPTIONS = { attempts: 3, backoff: { type: 'exponential', delay: 1_000 }, removeOnComplete: KEEP, removeOnFail: KEEP };

// Child roles, each in its own process like `sandpool worker`:
//   --noop-worker: a BullMQ worker whose processor does nothing, with sandpool's worker settings;
//   --noop-engine-worker: sandpool's worker (processor, cancel channel, log line) over an engine
//     that answers at once: the queue path alone.
if (process.argv[2] === '--noop-worker') {
  const url = process.argv[3] as string;
  const queue = process.argv[4] as string;
  // Returns a Result-sized value, as sandpool's processor does.
  const value = resultWithoutRun('cancelled', DEFAULT_LIMITS, { host: 'bench', pid: process.pid, thread: 0 }, {});
  const worker = new Worker(queue, async () => value, {
    connection: { url },
    concurrency: 1,
    removeOnComplete: KEEP,
    removeOnFail: KEEP,
  });
  await worker.waitUntilReady();
  process.stdout.write('ready\n');
  process.once('SIGTERM', () => {
    worker.close().then(() => process.exit(0));
  });
} else if (process.argv[2] === '--noop-engine-worker') {
  const engine = {
    async execute(): Promise<Result> {
      const result = resultWithoutRun('cancelled', DEFAULT_LIMITS, { host: 'bench', pid: process.pid, thread: 0 }, {});
      return { ...result, status: 'ok', value: 2 };
    },
  };
  // Logs as `sandpool worker` does: one synchronous JSON line per job on stdout.
  const logger = pino({ level: 'info' }, pino.destination({ dest: 1, sync: true }));
  const handle = await createWorker({ connection: process.argv[3] as string, queue: process.argv[4] as string, pool: engine, logger, concurrency: 1 });
  process.stdout.write('ready\n');
  process.once('SIGTERM', () => {
    handle.close().then(() => process.exit(0));
  });
} else {
  await main();
}

function load(): string {
  return `load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

function summary(samples: number[]) {
  const sorted = [...samples].sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), mean: samples.reduce((a, b) => a + b, 0) / samples.length };
}

async function spawnReady(args: string[], readyWhen: (line: string) => boolean): Promise<ChildProcess> {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('SANDPOOL_')) env[key] = value;
  const child = spawn(process.execPath, ['--no-node-snapshot', ...args], { stdio: ['ignore', 'pipe', 'inherit'], env });
  await new Promise<void>((resolve, reject) => {
    let buffered = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      if (lines.some(readyWhen)) resolve();
    });
    child.once('exit', (code) => reject(new Error(`child exited with ${code} before it was ready`)));
  });
  // Keep draining its stdout so a chatty child never blocks on a full pipe.
  child.stdout?.resume();
  return child;
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

/** One executor with one isolate thread: one core's worth of engine per worker process. */
function sandpoolWorker(url: string, queue: string, concurrency = 1): Promise<ChildProcess> {
  const args = [BIN, 'worker', '--redis', url, '--queue', queue, '--executors', '1', '--threads', '1', '--concurrency', String(concurrency)];
  return spawnReady([...args, '--metrics-port', 'off'], (line) => line.includes('"worker ready"'));
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { jobs: { type: 'string', default: '400' }, 'throughput-jobs': { type: 'string', default: '120' } },
  });
  const jobs = Number(values.jobs);
  const throughputJobs = Number(values['throughput-jobs']);
  const warmup = Math.min(50, Math.floor(jobs / 4));
  const redis = await startRedis();
  const children: ChildProcess[] = [];
  try {
    process.stdout.write(`sandpool queue bench: ${jobs} sequential round trips (+${warmup} warm-up), ${throughputJobs} CPU-bound jobs for throughput, ${availableParallelism()} cores, ${load()}\n`);

    // 1. Round trips, interleaved (no-op, sandpool, embedded, queue-only, no-op, ...) so that all
    // four see the same machine: a load change during the run moves them together, not one of them.
    const noopQueueName = uniqueQueue('bench-noop');
    const noopWorker = await spawnReady([SELF, '--noop-worker', redis.url, noopQueueName], (line) => line === 'ready');
    children.push(noopWorker);
    const noopQueue = new Queue(noopQueueName, { connection: { url: redis.url } });
    // From the stream's start (the queue is new): an event written before the first blocking read
    // is positioned is not missed.
    const noopEvents = new QueueEvents(noopQueueName, { connection: { url: redis.url }, lastEventId: '0' });
    await noopEvents.waitUntilReady();

    // sandpool: same Redis, same shape (one worker process, one job at a time).
    const sandpoolQueue = uniqueQueue('bench-sandpool');
    const worker = await sandpoolWorker(redis.url, sandpoolQueue);
    children.push(worker);
    const client = await createClient({ connection: redis.url, queue: sandpoolQueue });

    // sandpool's queue path over an engine that answers at once.
    const queueOnlyName = uniqueQueue('bench-queue-only');
    const queueOnlyWorker = await spawnReady([SELF, '--noop-engine-worker', redis.url, queueOnlyName], (line) => line === 'ready');
    children.push(queueOnlyWorker);
    const queueOnlyClient = await createClient({ connection: redis.url, queue: queueOnlyName });

    // The engine alone (embedded pool.execute, same shape): what the queue adds is the rest.
    const pool = await createPool({ executors: 1, threadsPerExecutor: 1 });

    const noopSamples: number[] = [];
    const sandpoolSamples: number[] = [];
    const engineSamples: number[] = [];
    const embeddedSamples: number[] = [];
    const queueOnlySamples: number[] = [];
    const series = [
      async () => {
        const job = await noopQueue.add('noop', { code: TRIVIAL }, JOB_OPTIONS);
        await job.waitUntilFinished(noopEvents, 30_000);
      },
      async () => {
        const result = await client.execute({ code: TRIVIAL });
        if (result.status !== 'ok') throw new Error(`bench job ended ${result.status}: ${result.error?.message}`);
        engineSamples.push(result.metrics.setupMs + result.metrics.wallTimeMs);
      },
      async () => {
        await pool.execute({ code: TRIVIAL });
      },
      async () => {
        const result = await queueOnlyClient.execute({ code: TRIVIAL });
        if (result.status !== 'ok') throw new Error(`bench job ended ${result.status}: ${result.error?.message}`);
      },
    ] as const;
    const samples = [noopSamples, sandpoolSamples, embeddedSamples, queueOnlySamples];
    // Blocks of BLOCK jobs per series in turn: close enough in time to share the machine's state,
    // long enough that one series' background work (the engine making its next spare isolate)
    // lands on its own next job, not on the baseline's.
    const BLOCK = 25;
    for (let done = 0; done < warmup + jobs; done += BLOCK) {
      for (const [index, run] of series.entries()) {
        for (let i = done; i < Math.min(done + BLOCK, warmup + jobs); i++) {
          const started = performance.now();
          await run();
          const ms = performance.now() - started;
          if (i >= warmup) samples[index]?.push(ms);
          else if (index === 1) engineSamples.pop();
        }
      }
    }
    await Promise.all([noopQueue.close(), noopEvents.close(), stop(noopWorker), client.close(), pool.close(), queueOnlyClient.close()]);
    await Promise.all([stop(worker), stop(queueOnlyWorker)]);

    const noop = summary(noopSamples);
    const embedded = summary(embeddedSamples);
    const sandpool = summary(sandpoolSamples);
    const engine = summary(engineSamples);
    const queueOnly = summary(queueOnlySamples);
    process.stdout.write('\nround trip (ms)                 p50      p99     mean\n');
    const row = (label: string, s: ReturnType<typeof summary>) =>
      process.stdout.write(`${label.padEnd(28)} ${s.p50.toFixed(2).padStart(7)} ${s.p99.toFixed(2).padStart(8)} ${s.mean.toFixed(2).padStart(8)}\n`);
    row('bullmq no-op processor', noop);
    row('engine alone (embedded)', embedded);
    row('sandpool client.execute', sandpool);
    row('  of which isolate setup+run', engine);
    row('sandpool, no-op engine', queueOnly);
    process.stdout.write(`ratio sandpool/no-op p50: ${(sandpool.p50 / noop.p50).toFixed(2)}x, p99: ${(sandpool.p99 / noop.p99).toFixed(2)}x (engine included)\n`);
    // The queue's own share two ways: subtracted (sandpool - engine alone; the two p50s come from
    // different runs of a noisy machine) and measured directly (sandpool over a no-op engine).
    const queueSide = sandpool.p50 - embedded.p50;
    process.stdout.write(
      `queue share, (sandpool - engine) p50: ${queueSide.toFixed(2)} ms = ${(queueSide / noop.p50).toFixed(2)}x the no-op round trip (goal <= 1.5x)\n`,
    );
    process.stdout.write(
      `queue share, no-op engine p50: ${queueOnly.p50.toFixed(2)} ms = ${(queueOnly.p50 / noop.p50).toFixed(2)}x the no-op round trip (goal <= 1.5x)\n`,
    );

    // 2. Throughput with 1 and 2 worker processes.
    const throughput: number[] = [];
    for (const processes of [1, 2]) {
      const queue = uniqueQueue(`bench-tp${processes}`);
      // Two jobs taken per process: the next one is already in the engine while one runs, so the
      // isolate thread does not idle through a Redis round trip between jobs.
      const workers = await Promise.all(Array.from({ length: processes }, () => sandpoolWorker(redis.url, queue, 2)));
      children.push(...workers);
      const tpClient = await createClient({ connection: redis.url, queue, maxQueuedPerTenant: 100_000 });
      // Warm each worker's engine before the clock starts.
      await Promise.all(Array.from({ length: processes * 2 }, () => tpClient.execute({ code: CPU_BOUND })));
      const started = performance.now();
      const results = await Promise.all(Array.from({ length: throughputJobs }, () => tpClient.execute({ code: CPU_BOUND })));
      const seconds = (performance.now() - started) / 1000;
      const failed = results.filter((r) => r.status !== 'ok');
      if (failed.length > 0) throw new Error(`${failed.length} throughput jobs did not end ok: ${failed[0]?.status}`);
      throughput.push(throughputJobs / seconds);
      await tpClient.close();
      await Promise.all(workers.map(stop));
    }
    const [one = NaN, two = NaN] = throughput;
    // Scaling needs the cores free: other work on the machine shows in the load average.
    process.stdout.write(`\n${load()} after the throughput runs\n`);
    process.stdout.write(`throughput (CPU-bound job)   1 process: ${one.toFixed(1)} jobs/s   2 processes: ${two.toFixed(1)} jobs/s\n`);
    process.stdout.write(`scaling 1 -> 2 processes: ${(two / one).toFixed(2)}x (goal >= 1.8x on 2 free cores)\n`);
  } finally {
    await Promise.all(children.map(stop));
    await redis.dispose();
  }
}
