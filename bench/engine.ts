// What isolation costs: the same workloads through sandpool's embedded engine (createPool),
// through raw isolated-vm (a fresh isolate and context per job, inline in this process) and through
// node:vm (a fresh context per job, no isolation from this process at all), all in one run so the
// ratios survive a noisy machine. A script, not a test:
//
//   node --no-node-snapshot bench/engine.ts [--quick]
//
// Besides those, "floor": sandpool's process/thread shape with none of sandpool's work (bench/floor-executor.ts).
// Per workload and engine, in interleaved rounds: latency p50/p99 one job at a time back to back,
// latency one job at a time paced (an idle gap of PACE_GAP_MS between jobs: a caller whose jobs
// arrive at a rate the pool sustains, so a spare isolate is ready), then jobs/s with cores × 2 jobs
// in flight. A fresh isolate costs ~1.6 ms of CPU whoever makes it: back to back, jobs outrun the
// spares and that cost shows in latency; paced, it is off the job's path; jobs/s always pays it. Prints a table and the ratios; writes bench/results/engine-<timestamp>.json.
import { fork, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import vm from 'node:vm';
import { createPool, type Pool } from '../src/pool.ts';
import { DEFAULT_LIMITS } from '../src/limits.ts';
import { compilePoolOptions } from '../src/pool-options.ts';
import type { Result } from '../src/result.ts';
import {
  type LatencySummary,
  type ThroughputSummary,
  formatNumber,
  hasFlag,
  machineInfo,
  peakRssMbOfPid,
  peakRssMbOfSelf,
  printTable,
  summarize,
  timeSequential,
  timeThroughput,
  writeResults,
} from './lib.ts';

interface Workload {
  name: string;
  code: string;
  /** Each job's code is new (a numbered comment appended): nothing can be answered from a cache. */
  unique?: boolean;
  expected: unknown;
  runs: number;
  warmup: number;
  throughputJobs: number;
}

const QUICK = hasFlag('--quick');
const SCALE = QUICK ? 0.25 : 1;
const CONCURRENCY = availableParallelism() * 2;
/** Each workload is measured in this many interleaved rounds per engine. */
const ROUNDS = QUICK ? 2 : 4;

/** The goals this bench reports against. */
const GOALS = Object.freeze({ trivialP50Ms: 0.35, cpuBoundRatioToRawIvm: 1.1 });
/** Idle time between paced jobs: enough for a thread to make its next spare isolate. */
const PACE_GAP_MS = 5;

const WORKLOADS: readonly Workload[] = [
  { name: 'trivial', code: '1 + 1', expected: 2, runs: 400, warmup: 50, throughputJobs: 600 },
  // The same, with code no job sent before: what a snippet costs that the pre-screen's cache has not seen.
  { name: 'trivial-unique', code: '1 + 1', unique: true, expected: 2, runs: 400, warmup: 50, throughputJobs: 600 },
  // fib is a local binding: a global function would be looked up through node:vm's context
  // interceptors on every call, which measures those interceptors rather than the CPU.
  {
    name: 'cpu-fib25',
    code: '(() => {\n  function fib(n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }\n  return fib(25);\n})();',
    expected: 75_025,
    runs: 60,
    warmup: 10,
    throughputJobs: 120,
  },
  // The same at ~11× the work, so fixed per-job costs weigh less in the ratio.
  {
    name: 'cpu-fib30',
    code: '(() => {\n  function fib(n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }\n  return fib(30);\n})();',
    expected: 832_040,
    runs: 20,
    warmup: 3,
    throughputJobs: 40,
  },
  {
    name: 'alloc-1e5-objects',
    code: [
      'const rows = [];',
      'for (let index = 0; index < 1e5; index++) rows.push({ id: index, value: index * 2 });',
      'let sum = 0;',
      'for (const row of rows) sum += row.value;',
      'sum;',
    ].join('\n'),
    expected: 9_999_900_000,
    runs: 60,
    warmup: 10,
    throughputJobs: 120,
  },
].map((workload) => ({
  ...workload,
  runs: Math.max(10, Math.round(workload.runs * SCALE)),
  warmup: Math.max(3, Math.round(workload.warmup * SCALE)),
  throughputJobs: Math.max(20, Math.round(workload.throughputJobs * SCALE)),
}));

let codeNumber = 0;
/** The code one job of `workload` runs. */
function codeOf(workload: Workload): string {
  return workload.unique === true ? `${workload.code}\n// ${++codeNumber}` : workload.code;
}

/** One way of running a snippet; `run` throws when the answer is wrong, so a fast failure never counts. */
interface Engine {
  name: string;
  run(workload: Workload): Promise<void>;
}

function check(engine: string, workload: Workload, value: unknown): void {
  if (value !== workload.expected) {
    throw new Error(`${engine} answered ${JSON.stringify(value)} for ${workload.name}, expected ${JSON.stringify(workload.expected)}`);
  }
}

/** Where sandpool's Results go, per phase and workload, for the metrics breakdown. */
interface ResultLog {
  phase: 'warmup' | 'sequential' | 'paced' | 'throughput';
  sequential: { workload: string; result: Result }[];
  paced: { workload: string; result: Result }[];
}

function sandpoolEngine(pool: Pool, seen: Set<number>, log: ResultLog): Engine {
  return {
    name: 'sandpool',
    async run(workload) {
      const result = await pool.execute({ code: codeOf(workload) });
      seen.add(result.metrics.worker.pid);
      if (log.phase === 'sequential') log.sequential.push({ workload: workload.name, result });
      if (log.phase === 'paced') log.paced.push({ workload: workload.name, result });
      if (result.status !== 'ok') throw new Error(`sandpool: ${result.status} for ${workload.name}: ${JSON.stringify(result.error)}`);
      check('sandpool', workload, result.value);
    },
  };
}

// The baseline the engine is built on, used the plain way: isolate, context, compile, run, dispose.
// It is imported here only, for comparison; sandpool itself never loads isolated-vm in this process.
async function rawIsolatedVmEngine(): Promise<Engine> {
  const { default: ivm } = await import('isolated-vm');
  return {
    name: 'raw-ivm',
    async run(workload) {
      const isolate = new ivm.Isolate({ memoryLimit: DEFAULT_LIMITS.memoryMb });
      try {
        const context = await isolate.createContext();
        const script = await isolate.compileScript(codeOf(workload));
        const value: unknown = await script.run(context, { timeout: DEFAULT_LIMITS.timeoutMs, copy: true });
        check('raw-ivm', workload, value);
      } finally {
        isolate.dispose();
      }
    },
  };
}

// sandpool's shape with nothing of sandpool in it: as many child processes as the pool has
// executors, each with one thread running snippets in an isolate made in advance (see
// bench/floor-executor.ts). What is left of sandpool's time above this is its own work.
async function floorEngine(): Promise<Engine & { close(): void }> {
  const count = compilePoolOptions().executors;
  const pending = new Map<number, (reply: { value?: unknown; error?: string }) => void>();
  let next = 0;
  const children: { child: ChildProcess; inFlight: number }[] = [];
  for (let index = 0; index < count; index++) {
    const child = fork(new URL('./floor-executor.ts', import.meta.url), [], {
      execArgv: ['--no-node-snapshot'],
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      serialization: 'json',
    });
    const entry = { child, inFlight: 0 };
    await new Promise<void>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`floor executor exited with ${code}`)));
      child.on('message', (message: { ready?: boolean; id?: number; value?: unknown; error?: string }) => {
        if (message.ready) return resolve();
        entry.inFlight--;
        pending.get(message.id ?? -1)?.(message);
        pending.delete(message.id ?? -1);
      });
    });
    child.removeAllListeners('exit');
    children.push(entry);
  }
  return {
    name: 'floor',
    async run(workload) {
      const target = children.reduce((best, entry) => (entry.inFlight < best.inFlight ? entry : best));
      const id = next++;
      const reply = await new Promise<{ value?: unknown; error?: string }>((resolve) => {
        pending.set(id, resolve);
        target.inFlight++;
        target.child.send({ id, code: codeOf(workload) });
      });
      if (reply.error !== undefined) throw new Error(`floor: ${reply.error}`);
      check('floor', workload, reply.value);
    },
    close() {
      for (const { child } of children) child.kill();
    },
  };
}

// No isolation at all: a new context in this very isolate. The floor for "run a snippet".
function nodeVmEngine(): Engine {
  return {
    name: 'node:vm',
    async run(workload) {
      const context = vm.createContext({});
      check('node:vm', workload, vm.runInContext(codeOf(workload), context, { timeout: DEFAULT_LIMITS.timeoutMs }));
    },
  };
}

interface Measurement {
  engine: string;
  workload: string;
  latency: LatencySummary;
  paced: LatencySummary;
  throughput: ThroughputSummary;
}

/**
 * Measures every engine on one workload in interleaved rounds (sandpool, raw-ivm, node:vm, then
 * again), so a burst of load from elsewhere on the machine falls on all of them alike.
 */
async function measureInterleaved(engines: readonly Engine[], workload: Workload, log: ResultLog): Promise<Measurement[]> {
  log.phase = 'warmup';
  for (const engine of engines) {
    for (let index = 0; index < workload.warmup; index++) await engine.run(workload);
  }
  const series = engines.map(() => ({ samples: [] as number[], paced: [] as number[], jobs: 0, elapsedMs: 0 }));
  for (let round = 0; round < ROUNDS; round++) {
    for (const [index, engine] of engines.entries()) {
      const entry = series[index];
      if (entry === undefined) continue;
      log.phase = 'sequential';
      const runs = Math.ceil(workload.runs / ROUNDS);
      entry.samples.push(...(await timeSequential(() => engine.run(workload), { runs, warmup: 0 })));
      log.phase = 'paced';
      entry.paced.push(...(await timeSequential(() => engine.run(workload), { runs, warmup: 0, gapMs: PACE_GAP_MS })));
      log.phase = 'throughput';
      // node:vm runs on this thread: concurrency cannot help it, but the figure is still jobs/s.
      const jobs = Math.ceil(workload.throughputJobs / ROUNDS);
      const throughput = await timeThroughput(() => engine.run(workload), { jobs, concurrency: CONCURRENCY });
      entry.jobs += throughput.jobs;
      entry.elapsedMs += throughput.elapsedMs;
    }
  }
  return engines.map((engine, index) => {
    const entry = series[index] ?? { samples: [], paced: [], jobs: 0, elapsedMs: 0 };
    return {
      engine: engine.name,
      workload: workload.name,
      latency: summarize(entry.samples),
      paced: summarize(entry.paced),
      throughput: {
        jobs: entry.jobs,
        concurrency: CONCURRENCY,
        elapsedMs: entry.elapsedMs,
        jobsPerSecond: (entry.jobs / entry.elapsedMs) * 1000,
      },
    };
  });
}

function ratio(numerator: number, denominator: number): number {
  return denominator === 0 ? Number.NaN : numerator / denominator;
}

async function main(): Promise<void> {
  const started = Date.now();
  const measurements: Measurement[] = [];
  const executorPids = new Set<number>();
  const log: ResultLog = { phase: 'warmup', sequential: [], paced: [] };

  const pool = await createPool();
  let executorPeakRssMb: Record<string, number | undefined> = {};
  let callerPeakRssMbSandpool = Number.NaN;
  try {
    const sandpool = sandpoolEngine(pool, executorPids, log);
    // A sandpool-only pass first (each workload, sequential and concurrent), so this process's peak
    // RSS can be read before any in-process baseline has touched it.
    for (const workload of WORKLOADS) {
      for (let index = 0; index < workload.warmup; index++) await sandpool.run(workload);
      await timeThroughput(() => sandpool.run(workload), { jobs: CONCURRENCY * 4, concurrency: CONCURRENCY });
    }
    callerPeakRssMbSandpool = peakRssMbOfSelf();
    const floor = await floorEngine();
    try {
      const engines = [sandpool, floor, await rawIsolatedVmEngine(), nodeVmEngine()];
      for (const workload of WORKLOADS) measurements.push(...(await measureInterleaved(engines, workload, log)));
    } finally {
      floor.close();
    }
    executorPeakRssMb = Object.fromEntries([...executorPids].map((pid) => [String(pid), peakRssMbOfPid(pid)]));
  } finally {
    await pool.close();
  }
  // The baselines run in this process too: the peak at the end covers them as well.
  const callerPeakRssMbAll = peakRssMbOfSelf();

  const find = (engine: string, workload: string) =>
    measurements.find((entry) => entry.engine === engine && entry.workload === workload);

  printTable(
    measurements.map((entry) => ({
      workload: entry.workload,
      engine: entry.engine,
      'p50 ms': entry.latency.p50Ms,
      'p99 ms': entry.latency.p99Ms,
      'paced p50': entry.paced.p50Ms,
      'paced p99': entry.paced.p99Ms,
      'jobs/s': entry.throughput.jobsPerSecond,
      runs: entry.latency.samples,
    })),
    ['workload', 'engine', 'p50 ms', 'p99 ms', 'paced p50', 'paced p99', 'jobs/s', 'runs'],
  );

  const ratios = WORKLOADS.map((workload) => {
    const own = find('sandpool', workload.name);
    const raw = find('raw-ivm', workload.name);
    const plain = find('node:vm', workload.name);
    const least = find('floor', workload.name);
    return {
      workload: workload.name,
      'p50 sp/floor': own && least ? ratio(own.latency.p50Ms, least.latency.p50Ms) : undefined,
      'paced sp/floor': own && least ? ratio(own.paced.p50Ms, least.paced.p50Ms) : undefined,
      'p50 sp/ivm': own && raw ? ratio(own.latency.p50Ms, raw.latency.p50Ms) : undefined,
      'p50 sp/vm': own && plain ? ratio(own.latency.p50Ms, plain.latency.p50Ms) : undefined,
      'paced p50 sp/ivm': own && raw ? ratio(own.paced.p50Ms, raw.paced.p50Ms) : undefined,
      'jobs/s sp/ivm': own && raw ? ratio(own.throughput.jobsPerSecond, raw.throughput.jobsPerSecond) : undefined,
      'jobs/s sp/vm': own && plain ? ratio(own.throughput.jobsPerSecond, plain.throughput.jobsPerSecond) : undefined,
    };
  });
  process.stdout.write('\nratios (sandpool / baseline; latency: lower is better, jobs/s: higher is better)\n');
  printTable(ratios, ['workload', 'p50 sp/ivm', 'p50 sp/vm', 'paced p50 sp/ivm', 'p50 sp/floor', 'paced sp/floor', 'jobs/s sp/ivm', 'jobs/s sp/vm']);

  // Where a sandpool job's time goes, from the Result's own metrics (sequential runs only).
  const breakdown = WORKLOADS.flatMap((workload) => (['sequential', 'paced'] as const).map((mode) => {
    const own = log[mode].filter((entry) => entry.workload === workload.name).map((entry) => entry.result);
    const median = (pick: (result: Result) => number) => summarize(own.map(pick)).p50Ms;
    return {
      workload: workload.name,
      mode,
      'queueWait p50': median((result) => result.metrics.queueWaitMs),
      'setup p50': median((result) => result.metrics.setupMs),
      'wall p50': median((result) => result.metrics.wallTimeMs),
      'cpu p50': median((result) => result.metrics.cpuTimeMs),
    };
  }));
  process.stdout.write('\nsandpool metrics of the one-at-a-time runs, ms (from Result.metrics)\n');
  printTable(breakdown, ['workload', 'mode', 'queueWait p50', 'setup p50', 'wall p50', 'cpu p50']);

  // The latency goal is for a job that finds a spare ready (paced); back to back is printed above.
  const trivialP50 = find('sandpool', 'trivial')?.paced.p50Ms ?? Number.NaN;
  const cpuRatio = ratios.find((entry) => entry.workload === 'cpu-fib25')?.['p50 sp/ivm'] ?? Number.NaN;
  const cpuRatioLarge = ratios.find((entry) => entry.workload === 'cpu-fib30')?.['p50 sp/ivm'] ?? Number.NaN;
  const goals = {
    trivialP50Ms: { goal: GOALS.trivialP50Ms, measured: trivialP50, met: trivialP50 <= GOALS.trivialP50Ms },
    cpuBoundRatioToRawIvm: { goal: GOALS.cpuBoundRatioToRawIvm, measured: cpuRatio, met: cpuRatio <= GOALS.cpuBoundRatioToRawIvm },
    cpuBoundRatioToRawIvmFib30: { goal: GOALS.cpuBoundRatioToRawIvm, measured: cpuRatioLarge, met: cpuRatioLarge <= GOALS.cpuBoundRatioToRawIvm },
  };
  const executorPeaks = Object.values(executorPeakRssMb).filter((value): value is number => value !== undefined);
  process.stdout.write(
    [
      '',
      `goal trivial p50 (paced) <= ${GOALS.trivialP50Ms} ms: ${formatNumber(trivialP50)} ms — ${goals.trivialP50Ms.met ? 'met' : 'NOT met'} ` +
        `(the floor, sandpool's shape with nothing of sandpool in it: ${formatNumber(find('floor', 'trivial')?.paced.p50Ms ?? Number.NaN)} ms; ` +
        `code never seen before: sandpool ${formatNumber(find('sandpool', 'trivial-unique')?.paced.p50Ms ?? Number.NaN)} ms, ` +
        `the floor ${formatNumber(find('floor', 'trivial-unique')?.paced.p50Ms ?? Number.NaN)} ms)`,
      `goal cpu-bound p50 within ${GOALS.cpuBoundRatioToRawIvm}x raw isolated-vm: fib(25) ${formatNumber(cpuRatio)}x — ${goals.cpuBoundRatioToRawIvm.met ? 'met' : 'NOT met'}; ` +
        `fib(30) ${formatNumber(cpuRatioLarge)}x — ${goals.cpuBoundRatioToRawIvmFib30.met ? 'met' : 'NOT met'}`,
      `peak RSS: caller ${formatNumber(callerPeakRssMbSandpool)} MiB with sandpool alone (${formatNumber(callerPeakRssMbAll)} MiB once the in-process baselines ran); ` +
        `executors ${executorPeaks.length > 0 ? executorPeaks.map(formatNumber).join(', ') + ' MiB' : 'not reachable'}`,
      '',
    ].join('\n'),
  );

  const file = writeResults('engine', {
    bench: 'engine',
    quick: QUICK,
    startedAt: new Date(started).toISOString(),
    durationMs: Date.now() - started,
    machine: machineInfo(),
    concurrency: CONCURRENCY,
    workloads: WORKLOADS,
    measurements,
    ratios,
    sandpoolMetrics: breakdown,
    goals,
    rounds: ROUNDS,
    peakRssMb: { callerSandpoolOnly: callerPeakRssMbSandpool, callerWithBaselines: callerPeakRssMbAll, executors: executorPeakRssMb },
  });
  process.stdout.write(`results: ${file}\n`);
}

await main();
