// Shared by the bench scripts (engine, corpus, prescreen, queue): timing loops, percentiles, peak
// RSS, a plain-text table, and the results file. Benchmarks are scripts, not tests: they print and
// record what they measured, next to a baseline measured in the same run.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, hostname } from 'node:os';
import { performance } from 'node:perf_hooks';

/** Latency summary of one series, in milliseconds. */
export interface LatencySummary {
  samples: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  minMs: number;
  maxMs: number;
}

export interface ThroughputSummary {
  jobs: number;
  concurrency: number;
  elapsedMs: number;
  jobsPerSecond: number;
}

/** Nearest-rank percentile of already sorted values; `p` in 0..100. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] ?? Number.NaN;
}

export function summarize(samplesMs: readonly number[]): LatencySummary {
  const sorted = [...samplesMs].sort((a, b) => a - b);
  const total = sorted.reduce((sum, value) => sum + value, 0);
  return {
    samples: sorted.length,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    meanMs: sorted.length === 0 ? Number.NaN : total / sorted.length,
    minMs: sorted[0] ?? Number.NaN,
    maxMs: sorted.at(-1) ?? Number.NaN,
  };
}

/**
 * Runs `job` `warmup` times unmeasured, then `runs` times one after another, and returns each
 * measured run's duration in milliseconds.
 */
export async function timeSequential(
  job: () => Promise<unknown> | unknown,
  { runs, warmup, gapMs = 0 }: { runs: number; warmup: number; gapMs?: number },
): Promise<number[]> {
  for (let index = 0; index < warmup; index++) await job();
  const samples: number[] = [];
  for (let index = 0; index < runs; index++) {
    const started = performance.now();
    await job();
    samples.push(performance.now() - started);
    // Paced: an idle gap between jobs, not timed (a caller whose jobs arrive at a sustainable rate).
    if (gapMs > 0) await new Promise((resolve) => setTimeout(resolve, gapMs));
  }
  return samples;
}

/** Runs `jobs` calls of `job` with at most `concurrency` in flight; jobs per second overall. */
export async function timeThroughput(
  job: () => Promise<unknown> | unknown,
  { jobs, concurrency }: { jobs: number; concurrency: number },
): Promise<ThroughputSummary> {
  let started = 0;
  const lane = async (): Promise<void> => {
    while (started < jobs) {
      started++;
      await job();
    }
  };
  const begin = performance.now();
  await Promise.all(Array.from({ length: Math.min(concurrency, jobs) }, lane));
  const elapsedMs = performance.now() - begin;
  return { jobs, concurrency, elapsedMs, jobsPerSecond: (jobs / elapsedMs) * 1000 };
}

/** Peak resident set of this process so far, in MiB. */
export function peakRssMbOfSelf(): number {
  return process.resourceUsage().maxRSS / 1024;
}

/**
 * Peak resident set (VmHWM) of another process in MiB, from Linux /proc; undefined where /proc is
 * not there or the process is gone.
 */
export function peakRssMbOfPid(pid: number): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = /^VmHWM:\s+(\d+)\s+kB/m.exec(status);
    return match?.[1] === undefined ? undefined : Number(match[1]) / 1024;
  } catch {
    // No /proc (not Linux) or the process already exited: the figure is simply not reachable.
    return undefined;
  }
}

/** Rounds for display: integers as they are, 3 decimals below 10, 1 below 100, none above. */
export function formatNumber(value: number | undefined): string {
  if (value === undefined || Number.isNaN(value)) return '-';
  if (Number.isInteger(value)) return String(value);
  if (Math.abs(value) >= 100) return value.toFixed(0);
  if (Math.abs(value) >= 10) return value.toFixed(1);
  return value.toFixed(3);
}

/** Prints rows as an aligned plain-text table, columns in the order of `columns`. */
export function printTable(rows: readonly Record<string, string | number | undefined>[], columns: readonly string[]): void {
  const cells = rows.map((row) =>
    columns.map((column) => {
      const value = row[column];
      return typeof value === 'number' ? formatNumber(value) : (value ?? '-');
    }),
  );
  const widths = columns.map((column, index) => Math.max(column.length, ...cells.map((row) => row[index]?.length ?? 0)));
  const line = (values: readonly string[]) =>
    values.map((value, index) => (index === 0 ? value.padEnd(widths[index] ?? 0) : value.padStart(widths[index] ?? 0))).join('  ');
  process.stdout.write(`${line(columns)}\n${line(widths.map((width) => '-'.repeat(width)))}\n`);
  for (const row of cells) process.stdout.write(`${line(row)}\n`);
}

/** What the machine was, so a results file can be read later. */
export function machineInfo(): Record<string, string | number> {
  return {
    host: hostname(),
    node: process.version,
    cores: availableParallelism(),
    cpu: cpus()[0]?.model ?? 'unknown',
    platform: `${process.platform}-${process.arch}`,
  };
}

/** Writes `data` to bench/results/<name>-<timestamp>.json (gitignored); returns the path. */
export function writeResults(name: string, data: unknown): string {
  const directory = new URL('./results/', import.meta.url);
  mkdirSync(directory, { recursive: true });
  const stamp = new Date().toISOString().replaceAll(':', '-').replace(/\.\d+Z$/, 'Z');
  const file = new URL(`${name}-${stamp}.json`, directory);
  writeFileSync(file, `${JSON.stringify(data, null, 2)}\n`);
  return file.pathname;
}

/** True when the script was started with `flag` (e.g. `--quick`). */
export function hasFlag(flag: string): boolean {
  return process.argv.slice(2).includes(flag);
}
