// The HumanEval-JS corpus (../shared/corpus, 164 real problems with their tests) through the
// embedded engine: ordinary code an agent would run must simply work. 162 complete; JavaScript/112
// and JavaScript/155 throw because the dataset's own solutions are wrong (plain Node agrees).
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createPool } from '../../src/pool.ts';
import type { Result } from '../../src/result.ts';
import { loadHumanEval } from '../helpers/corpus.ts';

const EXPECTED_FAILURES = ['JavaScript/112', 'JavaScript/155'];
const corpus = loadHumanEval();

// Skipped only where ../shared is not beside the repository (a bare clone); CI always has it.
describe.skipIf(corpus === undefined)('HumanEval-JS through the engine', () => {
  const problems = corpus ?? [];

  let pool: Awaited<ReturnType<typeof createPool>>;
  beforeAll(async () => {
    pool = await createPool({ executors: 1, threadsPerExecutor: 2 });
  });
  afterAll(async () => {
    await pool?.close();
  });

  test('the corpus has its 164 problems', () => {
    expect(problems).toHaveLength(164);
  });

  test('162 problems run ok; exactly JavaScript/112 and JavaScript/155 end in a runtime error', { timeout: 180_000 }, async () => {
    const results = new Map<string, Result>();
    // Four at a time: enough to keep both threads busy, few enough to share the machine.
    for (let index = 0; index < problems.length; index += 4) {
      const batch = problems.slice(index, index + 4);
      const answers = await Promise.all(batch.map((problem) => pool.execute({ code: problem.code })));
      batch.forEach((problem, offset) => {
        const answer = answers[offset];
        if (answer !== undefined) results.set(problem.id, answer);
      });
    }
    const notOk = [...results].filter(([, result]) => result.status !== 'ok');
    expect(
      notOk.map(([id, result]) => `${id}: ${result.status} ${result.error?.name}: ${result.error?.message}`),
    ).toHaveLength(EXPECTED_FAILURES.length);
    expect(notOk.map(([id]) => id).sort()).toEqual(EXPECTED_FAILURES);
    for (const [, result] of notOk) {
      expect(result.status).toBe('error');
      expect(result.error?.phase).toBe('runtime');
    }
    expect([...results.values()].filter((result) => result.status === 'ok')).toHaveLength(162);
  });
});
