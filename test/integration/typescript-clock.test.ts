// A TypeScript job's time limit bounds its own strip, not the loading of the stripper (amaro: ~0.15-0.2
// s to load and make its first call here, ~1.5 ms a strip once warm). The strip threads are this
// process's own, so this file's first strip finds none warm: the tests below run in this order.
import { afterAll, beforeAll, expect, test } from 'vitest';
import { createPool, type Pool } from '../../src/pool.ts';

/** Far under the stripper's load here, far over a warm strip and a trivial run. */
const SHORT = { timeoutMs: 60 };

let pool: Pool;
beforeAll(async () => {
  pool = await createPool({ executors: 1, threadsPerExecutor: 1 });
});
afterAll(async () => {
  await pool.close();
});

test("the process's first TypeScript job, with a short time limit, is not charged for loading the stripper", async () => {
  const result = await pool.execute({ code: 'const n: number = 21; n * 2', language: 'typescript', limits: SHORT });
  expect(result.status, JSON.stringify(result.error)).toBe('ok');
  expect(result.value).toBe(42);
});

test('after a strip ran out of time (its thread ended), the next one on a new thread is not charged for the load either', async () => {
  // Backtracks for a minute (src/typescript.ts): ended at its time limit, and its thread with it.
  const bomb = `let a = ${'(<any>'.repeat(24)}b${')'.repeat(24)}`;
  const overran = await pool.execute({ code: bomb, language: 'typescript', limits: SHORT });
  expect(overran.status).toBe('timeout');
  expect(overran.error?.message).toMatch(/type-stripping/);
  const result = await pool.execute({ code: 'const word: string = "again"; word', language: 'typescript', limits: SHORT });
  expect(result.status, JSON.stringify(result.error)).toBe('ok');
  expect(result.value).toBe('again');
});
