import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { PRESCREEN_DOC_PATH, renderPrescreenDoc } from '../../docs/prescreen-doc.ts';
import { RULES } from '../../src/prescreen.ts';

describe('docs/prescreen-rules.md', () => {
  it('is the output of docs/prescreen-doc.ts for the current rule table', () => {
    // On failure: node docs/prescreen-doc.ts
    expect(readFileSync(PRESCREEN_DOC_PATH, 'utf8')).toBe(renderPrescreenDoc());
  });

  it('lists every rule id exactly once, with its default severity', () => {
    const rows = readFileSync(PRESCREEN_DOC_PATH, 'utf8')
      .split('\n')
      .map((line) => /^\| `([a-z_]+)` \| (block|warn) \|/.exec(line))
      .filter((match) => match !== null)
      .map((match) => [match[1], match[2]]);
    expect(rows).toEqual(RULES.map((rule) => [rule.id, rule.severity]));
  });

  it('keeps rule ids stable snake_case and unique', () => {
    const ids = RULES.map((rule) => rule.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(id).toMatch(/^[a-z][a-z_]*[a-z]$/);
  });
});
