import { describe, expect, it } from 'vitest';
import { compilePrescreenOptions, prescreen } from '../../src/prescreen.ts';
import { loadHumanEval } from '../helpers/corpus.ts';

// Agent-style code from ../shared/corpus: the default rules must not block any of it. The npm
// package corpus is measured by bench/prescreen-corpus.ts.
const corpus = loadHumanEval();

// Skipped only where ../shared is not beside the repository (a bare clone); CI always has it.
describe.skipIf(corpus === undefined)('false positives on the HumanEval-JS corpus', () => {
  const snippets = corpus ?? [];

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
