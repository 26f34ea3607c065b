// False positives of the default pre-screen rules on real code: the HumanEval-JS corpus (agent-style
// snippets) and every .js/.mjs/.cjs file of the packages bench/corpus/fetch-packages.sh fetched.
// Usage: node bench/prescreen-corpus.ts [--verbose]   Exits 1 when a default rule blocks anything.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compilePrescreenOptions, prescreen, type PrescreenReport } from '../src/prescreen.ts';
import { findDeepNesting } from '../src/prescreen-bounds.ts';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const humanevalPath = join(repoRoot, '..', 'shared', 'corpus', 'humaneval-js.jsonl');
const packagesDir = join(repoRoot, 'bench', '.packages');
const verbose = process.argv.includes('--verbose');

const defaults = compilePrescreenOptions();
// Library files may exceed the size bound: screen them anyway so every rule meets every file; files
// over the default bound are counted apart.
const unbounded = compilePrescreenOptions({ maxBytes: 16 * 1024 * 1024 });

interface Tally {
  files: number;
  unparsed: number;
  overSizeBound: number;
  deeperThan64: number;
  blockedFiles: number;
  warnedFiles: number;
  blocks: Map<string, number>;
  warnings: Map<string, number>;
  screenMs: number;
}

function newTally(): Tally {
  return {
    files: 0, unparsed: 0, overSizeBound: 0, deeperThan64: 0, blockedFiles: 0, warnedFiles: 0,
    blocks: new Map(), warnings: new Map(), screenMs: 0,
  };
}

function record(tally: Tally, name: string, code: string, report: PrescreenReport, ms: number, print = true): void {
  tally.files++;
  tally.screenMs += ms;
  if (!report.parsed) tally.unparsed++;
  if (Buffer.byteLength(code) > defaults.maxBytes) tally.overSizeBound++;
  if (findDeepNesting(code, 64) !== undefined) tally.deeperThan64++;
  if (report.blocked.length > 0) tally.blockedFiles++;
  if (report.warnings.length > 0) tally.warnedFiles++;
  for (const finding of report.blocked) {
    tally.blocks.set(finding.rule, (tally.blocks.get(finding.rule) ?? 0) + 1);
    if (print) console.log(`BLOCK ${name}:${finding.line}:${finding.column} ${finding.rule}: ${finding.message}`);
  }
  for (const finding of report.warnings) {
    tally.warnings.set(finding.rule, (tally.warnings.get(finding.rule) ?? 0) + 1);
    if (verbose && print) console.log(`warn  ${name}:${finding.line}:${finding.column} ${finding.rule}: ${finding.message}`);
  }
}

function screen(code: string, options = defaults): { report: PrescreenReport; ms: number } {
  const started = performance.now();
  const report = prescreen(code, options);
  return { report, ms: performance.now() - started };
}

function summary(label: string, tally: Tally): string {
  const rules = (counts: Map<string, number>): string =>
    [...counts].sort((a, b) => b[1] - a[1]).map(([rule, n]) => `${rule}=${n}`).join(' ') || '-';
  return [
    `${label}: ${tally.files} files, ${tally.unparsed} not parsed, ${tally.overSizeBound} over the size bound, ` +
      `${tally.deeperThan64} nested deeper than 64, ${tally.blockedFiles} files blocked, ${tally.warnedFiles} warned, ` +
      `screen time ${tally.screenMs.toFixed(0)} ms`,
    `  blocks:   ${rules(tally.blocks)}`,
    `  warnings (listed; at most 20 per rule and file, plus one that counts the rest): ${rules(tally.warnings)}`,
  ].join('\n');
}

function* sourceFiles(dir: string): Generator<string> {
  for (const entry of readdirSync(dir).sort()) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) yield* sourceFiles(path);
    else if (/\.(?:js|mjs|cjs)$/.test(entry)) yield path;
  }
}

const humaneval = newTally();
for (const line of readFileSync(humanevalPath, 'utf8').split('\n')) {
  if (line.trim() === '') continue;
  const { id, code } = JSON.parse(line) as { id: string; code: string };
  const { report, ms } = screen(code);
  record(humaneval, id, code, report, ms);
}
console.log(summary('humaneval-js', humaneval));

let totalBlocks = [...humaneval.blocks.values()].reduce((a, b) => a + b, 0);
let packageNames: string[] = [];
try {
  packageNames = readdirSync(packagesDir).sort();
} catch {
  // No packages fetched yet: report it and measure the corpus we have.
  console.log(`no packages in ${packagesDir}: run bash bench/corpus/fetch-packages.sh`);
}
const all = newTally();
for (const name of packageNames) {
  const tally = newTally();
  for (const path of sourceFiles(join(packagesDir, name))) {
    const code = readFileSync(path, 'utf8');
    const { report, ms } = screen(code, unbounded);
    const relative = path.slice(packagesDir.length + 1);
    record(tally, relative, code, report, ms);
    record(all, relative, code, report, ms, false);
  }
  console.log(summary(name, tally));
}
if (packageNames.length > 0) console.log(summary(`all ${packageNames.length} packages`, all));
totalBlocks += [...all.blocks.values()].reduce((a, b) => a + b, 0);
console.log(totalBlocks === 0 ? 'OK: zero blocks' : `FAIL: ${totalBlocks} blocks`);
process.exitCode = totalBlocks === 0 ? 0 : 1;
