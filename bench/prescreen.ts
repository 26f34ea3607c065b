// What the pre-screen costs: prescreen() on a 2 KB and a 100 KB snippet (p50/p99), the bounds'
// rejections (1 MB, 100k-deep brackets, 100k-long operator chain), against a trivial job's total
// latency through createPool measured in the same run (goal: 2 KB screen < 10% of a trivial job).
// Usage: node --no-node-snapshot bench/prescreen.ts [--quick] [--no-pool]
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { compilePrescreenOptions, prescreen } from '../src/prescreen.ts';
import { hasFlag, machineInfo, printTable, summarize, timeSequential, writeResults, type LatencySummary } from './lib.ts';

const quick = hasFlag('--quick');
const scale = quick ? 0.2 : 1;
const options = compilePrescreenOptions();

/**
 * Fixed agent-style input: HumanEval-JS snippets, each wrapped in its own function so their
 * top-level declarations do not collide, concatenated up to `bytes`.
 */
function snippetOfSize(bytes: number): string {
  const corpus = fileURLToPath(new URL('../../shared/corpus/humaneval-js.jsonl', import.meta.url));
  const codes = readFileSync(corpus, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => (JSON.parse(line) as { code: string }).code);
  // Greedy fill: take snippets in corpus order while they fit, cycling until no snippet fits.
  let text = '';
  for (let index = 0, misses = 0; misses < codes.length; index++) {
    const piece = `function snippet${index}() {\n${codes[index % codes.length]}\n}\n`;
    if (Buffer.byteLength(text + piece) > bytes) misses++;
    else (text += piece), (misses = 0);
  }
  return text;
}

const rows: Record<string, string | number>[] = [];
const results: Record<string, LatencySummary> = {};

async function measure(name: string, job: () => unknown, runs: number, warmup: number): Promise<LatencySummary> {
  const summary = summarize(await timeSequential(job, { runs: Math.max(5, Math.round(runs * scale)), warmup }));
  results[name] = summary;
  rows.push({ series: name, samples: summary.samples, p50Ms: summary.p50Ms, p99Ms: summary.p99Ms, meanMs: summary.meanMs });
  return summary;
}

function screenOrFail(code: string, expectBlocked?: string): void {
  const report = prescreen(code, options);
  const rule = report.blocked[0]?.rule;
  if (expectBlocked === undefined ? rule !== undefined || !report.parsed : rule !== expectBlocked) {
    throw new Error(`unexpected pre-screen outcome: ${JSON.stringify(report).slice(0, 300)}`);
  }
}

const small = snippetOfSize(2 * 1024);
const large = snippetOfSize(100 * 1024);
console.log(`inputs: ${Buffer.byteLength(small)} B and ${Buffer.byteLength(large)} B of HumanEval-JS code`);

const screen2k = await measure('prescreen 2 KB', () => screenOrFail(small), 2000, 200);
await measure('prescreen 100 KB', () => screenOrFail(large), 200, 20);
// The largest code screened by default: the longest the caller's event loop is held.
const atBound = snippetOfSize(options.maxBytes);
await measure('prescreen 256 KB (size bound)', () => screenOrFail(atBound), 50, 5);
const oneMb = `// ${'x'.repeat(1024 * 1024)}`;
await measure('reject 1 MB (too large)', () => screenOrFail(oneMb, 'prescreen_too_large'), 200, 10);
const deepBrackets = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;
await measure('reject 100k-deep brackets', () => screenOrFail(deepBrackets, 'prescreen_too_deep'), 100, 5);
const longChain = `a${'+a'.repeat(100_000)}`;
await measure('reject 100k-term chain (parser stack)', () => screenOrFail(longChain, 'prescreen_too_deep'), 50, 5);

// Unsandboxed reference: the same trivial job as plain host code.
const trivial = '1 + 1';
await measure('trivial job, host new Function + JSON', () => JSON.parse(JSON.stringify(new Function(`return ${trivial}`)())), 2000, 200);

let pooled: LatencySummary | undefined;
let poolPending = hasFlag('--no-pool') ? 'skipped (--no-pool)' : undefined;
if (poolPending === undefined) {
  const { createPool } = await import('../src/pool.ts');
  const pool = await createPool({ executors: 1, threadsPerExecutor: 1 });
  try {
    const probe = await pool.execute({ code: trivial, limits: { timeoutMs: 10_000 } });
    if (probe.status === 'ok') {
      const job = async (): Promise<void> => {
        const result = await pool.execute({ code: trivial });
        if (result.status !== 'ok') throw new Error(`trivial job ended ${result.status}: ${JSON.stringify(result.error)}`);
      };
      pooled = await measure('trivial job through createPool', job, 300, 30);
    } else {
      poolPending = `the pool does not run a trivial job yet (${probe.status}: ${probe.error?.message ?? ''})`;
    }
  } finally {
    await pool.close();
  }
}

printTable(rows, ['series', 'samples', 'p50Ms', 'p99Ms', 'meanMs']);
const ratio = pooled === undefined ? undefined : screen2k.p50Ms / pooled.p50Ms;
const hostJob = results['trivial job, host new Function + JSON'];
if (hostJob !== undefined) {
  console.log(`prescreen 2 KB p50 = ${(screen2k.p50Ms / hostJob.p50Ms).toFixed(0)}× an unsandboxed trivial job (reference only)`);
}
if (ratio === undefined) {
  console.log(`ratio to a trivial job through createPool: pending — ${poolPending ?? 'not measured'}`);
} else {
  const verdict = ratio < 0.1 ? 'meets' : 'misses';
  console.log(`prescreen 2 KB p50 / trivial job p50 = ${(ratio * 100).toFixed(1)}% (${verdict} the goal of < 10%)`);
}
const file = writeResults('prescreen', { machine: machineInfo(), quick, results, ratio2kToTrivialJob: ratio ?? null, poolPending: poolPending ?? null });
console.log(`results: ${file}`);
