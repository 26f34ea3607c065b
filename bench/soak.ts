// Ordinary jobs beside hostile ones, for a while: does every ordinary job still get its answer while
// attacks take executors down next to it? A script, not a test (it runs for minutes):
//
//   node --no-node-snapshot bench/soak.ts [--seconds 60] [--attackers 2] [--bystanders 2] [--attacks a,b]
//
// One embedded pool with the pre-screen off (attacks must reach the sandbox). `attackers` loops run
// the escape catalogue's snippets (test/fixtures/snippets) and the one-line bombs below, picked at
// random, under tight limits; `bystanders` loops run ordinary jobs of every form, each with the one
// answer it must give. Prints both by status and the bystanders' latency, writes
// bench/results/soak-<timestamp>.json, and exits 1 when an ordinary job did not get its answer or an
// attack ended internal_error (an attack that broke the infrastructure). The bystanders' latency is
// high by design: attacks hold threads up to their time limit, and nothing here is fair-shared.
import { readdirSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createPool } from '../src/pool.ts';
import { STATUSES, type Result } from '../src/result.ts';
import { machineInfo, printTable, summarize, writeResults } from './lib.ts';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    attackers: { type: 'string', default: '2' },
    bystanders: { type: 'string', default: '2' },
    /** Only these attacks (names as printed), comma-separated. */
    attacks: { type: 'string' },
  },
});
const seconds = Number(values.seconds);
const attackers = Number(values.attackers);
const bystanders = Number(values.bystanders);
for (const [name, value] of [['--seconds', seconds], ['--attackers', attackers], ['--bystanders', bystanders]] as const) {
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`${name} expects a whole number from 1, got ${String(value)}`);
}

const SNIPPETS = new URL('../test/fixtures/snippets/', import.meta.url);
const CATALOGUE: readonly (readonly [string, string])[] = [
  ...readdirSync(SNIPPETS)
    .filter((file) => file.endsWith('.js'))
    .map((file) => [file.slice(0, -'.js'.length), readFileSync(new URL(file, SNIPPETS), 'utf8')] as const),
  ['while-true', 'while (true) {}'],
  ['array-fill-1e8', 'new Array(1e8).fill(0).length'],
  ['string-doubling', "let text = 'x'; for (;;) text += text;"],
  ['rows-forever', 'const rows = []; for (let index = 0; ; index++) rows.push({ index, label: `row-${index}` });'],
  ['json-parse-huge', "JSON.parse('[' + '1,'.repeat(3e7) + '1]').length"],
  ['redos', "/^(a+)+$/.test('a'.repeat(40) + 'b')"],
  ['million-logs', "for (let index = 0; index < 1e6; index++) console.log('line'); 'printed'"],
  ['huge-log', "console.log('y'.repeat(20e6)); 'printed'"],
  ['never-settles', 'new Promise(() => {})'],
  ['microtasks-forever', 'Promise.resolve().then(function again() { return Promise.resolve().then(again); }); 1'],
  ['bigint-to-text', 'String(2n ** 3000000n).length'],
];
const chosen = values.attacks?.split(',');
const unknown = chosen?.filter((name) => !CATALOGUE.some(([known]) => known === name)) ?? [];
if (unknown.length > 0) throw new RangeError(`--attacks: no attack named ${unknown.join(', ')}`);
const ATTACKS = chosen === undefined ? CATALOGUE : CATALOGUE.filter(([name]) => chosen.includes(name));
const ATTACK_LIMITS = Object.freeze({ timeoutMs: 1_000, cpuTimeMs: 1_000, memoryMb: 64 });

/** Ordinary jobs of each form, each with the one answer it must give whatever runs beside it. */
const ORDINARY: readonly { name: string; request: Record<string, unknown>; value: unknown; stdout?: string }[] = [
  { name: 'trivial', request: { code: '1 + 1' }, value: 2 },
  { name: 'fib(20)', request: { code: '(() => { function fib(n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); } return fib(20); })()' }, value: 6765 },
  { name: 'module', request: { code: 'export default (input) => input.a * 2', input: { a: 21 } }, value: 42 },
  { name: 'typescript', request: { code: 'const three: number = 3; three * 5', language: 'typescript' }, value: 15 },
  { name: 'console', request: { code: "console.log('hello'); 'done'" }, value: 'done', stdout: 'hello\n' },
  { name: 'timer', request: { code: 'await new Promise((resolve) => setTimeout(resolve, 20));\nexport default () => 7' }, value: 7 },
];

function wrong(expected: (typeof ORDINARY)[number], result: Result): boolean {
  if (result.status !== 'ok' || JSON.stringify(result.value) !== JSON.stringify(expected.value)) return true;
  return expected.stdout !== undefined && result.stdout !== expected.stdout;
}

const pool = await createPool({ prescreen: { mode: 'off' } });
const endAt = Date.now() + seconds * 1000;
const attackStatuses = new Map<string, Map<string, number>>();
const ordinaryStatuses = new Map<string, Map<string, number>>();
const latencies: number[] = [];
const failures: { job: string; result: Record<string, unknown> }[] = [];
const count = (table: Map<string, Map<string, number>>, name: string, status: string) => {
  const row = table.get(name) ?? new Map<string, number>();
  row.set(status, (row.get(status) ?? 0) + 1);
  table.set(name, row);
};

async function attacker(): Promise<void> {
  while (Date.now() < endAt) {
    const [name, code] = ATTACKS[Math.floor(Math.random() * ATTACKS.length)]!;
    const result = await pool.execute({ code, limits: ATTACK_LIMITS });
    count(attackStatuses, name, result.status);
    if (result.status === 'internal_error') failures.push({ job: `attack ${name}`, result: { status: result.status, error: result.error, metrics: result.metrics } });
  }
}

async function bystander(offset: number): Promise<void> {
  for (let index = offset; Date.now() < endAt; index++) {
    const job = ORDINARY[index % ORDINARY.length]!;
    const startedAt = performance.now();
    const result = await pool.execute(job.request);
    latencies.push(performance.now() - startedAt);
    count(ordinaryStatuses, job.name, result.status);
    if (wrong(job, result)) {
      const { status, value, error, metrics } = result;
      failures.push({ job: job.name, result: { status, value, error, stdout: result.stdout.slice(0, 200), metrics } });
    }
  }
}

process.stdout.write(`sandpool soak: ${seconds} s, ${attackers} attacker(s) over ${ATTACKS.length} attacks, ${bystanders} bystander(s)\n\n`);
await Promise.all([
  ...Array.from({ length: attackers }, () => attacker()),
  ...Array.from({ length: bystanders }, (_, index) => bystander(index * 3)),
]);
const { restarts } = pool.stats();
await pool.close();

const byStatus = (table: Map<string, Map<string, number>>) =>
  [...table].sort(([a], [b]) => a.localeCompare(b)).map(([name, row]) => ({ job: name, ...Object.fromEntries(row) }));
printTable(byStatus(ordinaryStatuses), ['job', ...STATUSES]);
process.stdout.write('\n');
printTable(byStatus(attackStatuses), ['job', ...STATUSES]);
const latency = summarize(latencies);
process.stdout.write(
  `\nordinary jobs: ${latencies.length}, latency p50 ${latency.p50Ms.toFixed(1)} ms, p99 ${latency.p99Ms.toFixed(1)} ms; executors replaced: ${restarts}\n`,
);
for (const failure of failures) process.stdout.write(`FAILED ${failure.job}: ${JSON.stringify(failure.result).slice(0, 800)}\n`);
const file = writeResults('soak', {
  machine: machineInfo(),
  seconds,
  attackers,
  bystanders,
  restarts,
  latency,
  ordinary: byStatus(ordinaryStatuses),
  attacks: byStatus(attackStatuses),
  failures,
});
process.stdout.write(`${failures.length === 0 ? 'every ordinary job got its answer; no attack broke the pool' : `${failures.length} failure(s)`}\nresults: ${file}\n`);
process.exitCode = failures.length === 0 ? 0 : 1;
