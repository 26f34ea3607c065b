// Realistic snippets through the embedded engine: the 164 HumanEval-JS problems (prompt, canonical
// solution and tests as one script that throws when a test fails), from ../shared/corpus. A script:
//
//   node --no-node-snapshot bench/corpus.ts [--quick] [--corpus FILE]
//
// One pass one job at a time (latency p50/p99, total), one pass with cores × 2 in flight (total).
// A correct sandbox completes 162 of them; JavaScript/112 and JavaScript/155 throw because the
// dataset's own solutions are wrong. Writes bench/results/corpus-<timestamp>.json.
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { createPool } from '../src/pool.ts';
import type { Result } from '../src/result.ts';
import { formatNumber, machineInfo, peakRssMbOfSelf, printTable, summarize, timeThroughput, writeResults } from './lib.ts';

const DEFAULT_CORPUS = new URL('../../shared/corpus/humaneval-js.jsonl', import.meta.url);
/** Problems whose dataset solutions fail their own tests (in plain Node too). */
const EXPECTED_FAILURES = Object.freeze(['JavaScript/112', 'JavaScript/155']);

interface Problem {
  id: string;
  code: string;
}

function loadCorpus(file: string | URL): Problem[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const { id, code } = JSON.parse(line) as Problem;
      // Ids carry a `:test` suffix (the problem with its tests); the problem number is what people cite.
      return { id: id.replace(/:test$/, ''), code };
    });
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { quick: { type: 'boolean' }, corpus: { type: 'string' } } });
  const problems = loadCorpus(values.corpus ?? DEFAULT_CORPUS);
  const concurrency = availableParallelism() * 2;
  const pool = await createPool();
  try {
    // Warm-up: the first jobs pay for spawning executors and loading modules.
    for (const problem of problems.slice(0, 5)) await pool.execute({ code: problem.code });

    const outcomes: { id: string; result: Result; latencyMs: number }[] = [];
    const began = performance.now();
    for (const problem of problems) {
      const started = performance.now();
      const result = await pool.execute({ code: problem.code });
      outcomes.push({ id: problem.id, result, latencyMs: performance.now() - started });
    }
    const sequentialMs = performance.now() - began;

    let next = 0;
    const concurrent = values.quick
      ? undefined
      : await timeThroughput(() => pool.execute({ code: problems[next++ % problems.length]?.code ?? '' }), { jobs: problems.length, concurrency });

    const byStatus: Record<string, number> = {};
    for (const { result } of outcomes) byStatus[result.status] = (byStatus[result.status] ?? 0) + 1;
    const failures = outcomes
      .filter(({ result }) => result.status !== 'ok')
      .map(({ id, result }) => ({ id, status: result.status, error: `${result.error?.name}: ${result.error?.message}`.slice(0, 120) }));
    const latency = summarize(outcomes.map(({ latencyMs }) => latencyMs));
    const wall = summarize(outcomes.map(({ result }) => result.metrics.wallTimeMs));
    const unexpected = failures.filter((failure) => !EXPECTED_FAILURES.includes(failure.id));
    const missing = EXPECTED_FAILURES.filter((id) => !failures.some((failure) => failure.id === id));

    process.stdout.write(`HumanEval-JS: ${byStatus.ok ?? 0} of ${problems.length} ok (expected ${problems.length - EXPECTED_FAILURES.length}); statuses ${JSON.stringify(byStatus)}\n`);
    if (failures.length > 0) printTable(failures, ['id', 'status', 'error']);
    if (unexpected.length > 0 || missing.length > 0) {
      process.stdout.write(`UNEXPECTED: failed ${JSON.stringify(unexpected.map((f) => f.id))}, did not fail ${JSON.stringify(missing)}\n`);
    }
    process.stdout.write('\n');
    printTable(
      [
        { pass: 'sequential', jobs: problems.length, 'total ms': sequentialMs, 'p50 ms': latency.p50Ms, 'p99 ms': latency.p99Ms, 'isolate wall p50 ms': wall.p50Ms, 'jobs/s': (problems.length / sequentialMs) * 1000 },
        ...(concurrent
          ? [{ pass: `concurrent x${concurrency}`, jobs: concurrent.jobs, 'total ms': concurrent.elapsedMs, 'jobs/s': concurrent.jobsPerSecond }]
          : []),
      ],
      ['pass', 'jobs', 'total ms', 'p50 ms', 'p99 ms', 'isolate wall p50 ms', 'jobs/s'],
    );
    process.stdout.write(`peak RSS of this process: ${formatNumber(peakRssMbOfSelf())} MiB\n`);
    const file = writeResults('corpus', {
      bench: 'corpus',
      machine: machineInfo(),
      problems: problems.length,
      byStatus,
      failures,
      unexpected,
      missing,
      sequential: { totalMs: sequentialMs, latency, isolateWall: wall },
      concurrent,
    });
    process.stdout.write(`results: ${file}\n`);
    if (unexpected.length > 0 || missing.length > 0) process.exitCode = 1;
  } finally {
    await pool.close();
  }
}

await main();
