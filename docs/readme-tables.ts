// Renders README.md's generated tables (pre-screen rules, stable codes) between their markers.
// Usage: node docs/readme-tables.ts   (test/unit/codes.test.ts fails when README.md is stale)
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { renderRuleTable } from './prescreen-doc.ts';
import { ERROR_CODES, REJECTION_RULES } from '../src/codes.ts';

export const README_PATH = fileURLToPath(new URL('../README.md', import.meta.url));

function renderCodeTable(): string {
  const rows = [
    ...Object.entries(ERROR_CODES).map(([code, meaning]) => `| \`${code}\` | \`error.code\` | ${meaning} |`),
    ...Object.entries(REJECTION_RULES).map(([rule, meaning]) => `| \`${rule}\` | rejection rule | ${meaning} |`),
  ];
  return ['| code | where | meaning |', '| --- | --- | --- |', ...rows].join('\n');
}

const BLOCKS: Record<string, () => string> = {
  'prescreen-rules': renderRuleTable,
  'error-codes': renderCodeTable,
};

/** README.md with every generated block replaced by its current rendering. */
export function renderReadme(readme: string): string {
  let out = readme;
  for (const [name, render] of Object.entries(BLOCKS)) {
    const start = `<!-- ${name}:start -->`;
    const end = `<!-- ${name}:end -->`;
    const from = out.indexOf(start);
    const to = out.indexOf(end);
    if (from < 0 || to < from) throw new Error(`README.md lacks the markers ${start} ... ${end}`);
    out = `${out.slice(0, from + start.length)}\n${render()}\n${out.slice(to)}`;
  }
  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(README_PATH, renderReadme(readFileSync(README_PATH, 'utf8')));
  console.log(`updated ${README_PATH}`);
}
