import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { compilePrescreenOptions, prescreen } from '../../src/prescreen.ts';

// Agent-style code from ../shared/corpus (present beside the repository in CI): the default rules
// must not block any of it. The npm package corpus is measured by bench/prescreen-corpus.ts.
const corpusPath = fileURLToPath(new URL('../../../shared/corpus/humaneval-js.jsonl', import.meta.url));

describe('false positives on the HumanEval-JS corpus', () => {
  const snippets = readFileSync(corpusPath, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as { id: string; code: string });

  it('has the whole corpus to screen', () => {
    expect(snippets.length).toBeGreaterThanOrEqual(164);
  });

  it('parses every snippet and blocks none under the default rules', () => {
    const options = compilePrescreenOptions();
    const blocked = snippets.flatMap(({ id, code }) => {
      const report = prescreen(code, options);
      expect(report.parsed, id).toBe(true);
      return report.blocked.map((finding) => `${id}: ${finding.rule} ${finding.message}`);
    });
    expect(blocked).toEqual([]);
  });
});
