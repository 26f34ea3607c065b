import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { README_PATH, renderReadme } from '../../docs/readme-tables.ts';
import { EXIT_CODES } from '../../src/cli.ts';
import { ERROR_CODES, REJECTION_RULES } from '../../src/codes.ts';
import { POOL_ERROR_CODES } from '../../src/pool.ts';
import { QUEUE_ERROR_CODES } from '../../src/queue.ts';

const readme = readFileSync(README_PATH, 'utf8');

describe('stable codes', () => {
  it('documents every code the pool and the queue side use, and no other', () => {
    const used = new Set<string>([...Object.values(POOL_ERROR_CODES), ...QUEUE_ERROR_CODES, 'JOB_FAILED']);
    expect(new Set(Object.keys(ERROR_CODES))).toEqual(used);
  });

  it('keeps README.md tables in step with the code (on failure: node docs/readme-tables.ts)', () => {
    expect(readme).toBe(renderReadme(readme));
    for (const code of [...Object.keys(ERROR_CODES), ...Object.keys(REJECTION_RULES)]) {
      expect(readme).toContain(`| \`${code}\` |`);
    }
  });

  it('documents every exit code of the CLI', () => {
    const block = readme.slice(readme.indexOf('<!-- exit-codes:start -->'), readme.indexOf('<!-- exit-codes:end -->'));
    const rows = [...block.matchAll(/^\| (\d+) \| `?([a-z_]+)`? /gm)].map((match) => [Number(match[1]), match[2]]);
    const expected = Object.entries(EXIT_CODES)
      .filter(([status]) => status !== 'usage')
      .map(([status, code]) => [code, status]);
    expect(rows).toEqual(expect.arrayContaining(expected));
    expect(block).toContain(`| ${EXIT_CODES.usage} | usage`);
  });
});
