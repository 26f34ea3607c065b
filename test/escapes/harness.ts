// Shared by every escape test: one pool per test file with pre-screening off (the sandbox must hold
// without it), the snippet fixtures, and the two checks every attack ends with — nothing of the
// host leaked into what came back, and the pool still serves an ordinary job.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { afterAll, beforeAll, expect } from 'vitest';
import { createPool } from '../../src/pool.ts';
import type { Result, Status, TimeoutLimit } from '../../src/result.ts';

export type Pool = Awaited<ReturnType<typeof createPool>>;

/**
 * A value only the host knows: put in the environment before the executors start, so a snippet
 * that reaches `process.env` of any sandpool process can only prove it by returning this.
 */
export const HOST_CANARY = `sandpool-host-canary-${randomUUID()}`;

const SNIPPETS = new URL('../fixtures/snippets/', import.meta.url);

/** Source of test/fixtures/snippets/<name>.js. */
export function snippet(name: string): string {
  return readFileSync(new URL(`${name}.js`, SNIPPETS), 'utf8');
}

/**
 * A pool as an operator would run it, except that pre-screening is off: the sandbox must hold
 * without it. A snippet every screen blocks is run first, so a screen that stayed on fails here
 * rather than making every attack below look contained.
 */
/**
 * Starts one escape pool for the calling test file (beforeAll) and closes it after (afterAll);
 * `onStart` receives it. Every escape file uses this, so none can leave its executors behind.
 */
export function useEscapePool(onStart: (pool: Pool) => void): void {
  let started: Pool | undefined;
  beforeAll(async () => {
    started = await startEscapePool();
    onStart(started);
  });
  afterAll(async () => {
    await started?.close();
  });
}

async function startEscapePool(): Promise<Pool> {
  process.env.SANDPOOL_ESCAPE_CANARY = HOST_CANARY;
  const pool = await createPool({ executors: 1, threadsPerExecutor: 2, prescreen: { mode: 'off' } });
  const screened = await pool.execute({ code: "this.constructor.constructor('return 1')()" });
  if (screened.status !== 'ok' || screened.warnings.length > 0) {
    await pool.close();
    throw new Error(`pre-screening is not off: ${summary(screened)}`);
  }
  return pool;
}

/** Limits that make the CPU clock the first to run out for a busy snippet. */
export const CPU_BOUND = Object.freeze({ cpuTimeMs: 400, timeoutMs: 10_000 });
/** Limits that make the wall clock the first to run out for an idle (or busy) snippet. */
export const WALL_BOUND = Object.freeze({ cpuTimeMs: 10_000, timeoutMs: 400 });

/** Runs one request and checks, whatever came back, that nothing of the host rode along. */
export async function run(pool: Pool, request: unknown, options?: { signal?: AbortSignal }): Promise<Result> {
  const result = await pool.execute(request, options);
  expectNoHostLeak(result);
  return result;
}

/** Strings that only the host has: its paths, its module layout, its environment. */
function hostMarkers(): string[] {
  return [
    HOST_CANARY,
    process.cwd(),
    homedir(),
    '/work/',
    'node_modules',
    'node:internal',
    'isolated-vm',
    'piscina',
    'workers/isolate',
    'workers/thread',
    'workers/executor',
    'src/pool',
  ];
}

/** Asserts that the parts of a result the snippet controls carry nothing of the host. */
export function expectNoHostLeak(result: Result): void {
  const visible = JSON.stringify({
    value: result.value,
    stdout: result.stdout,
    stderr: result.stderr,
    error: result.error,
  });
  for (const marker of hostMarkers()) {
    expect(visible, `result carries host marker ${JSON.stringify(marker)}`).not.toContain(marker);
  }
}

/** The status every attack must end in; the message names what actually came back. */
export function expectStatus(result: Result, status: Status, limit?: TimeoutLimit): void {
  expect(result.status, summary(result)).toBe(status);
  if (limit !== undefined) expect(result.error?.limit, summary(result)).toBe(limit);
}

/**
 * For attacks whose only fair demand is "a clear answer": any of `allowed`, never ok-by-accident,
 * never internal_error (which would mean the attack broke the infrastructure).
 */
export function expectOneOf(result: Result, allowed: readonly Status[]): void {
  expect(allowed, summary(result)).toContain(result.status);
}

export function summary(result: Result): string {
  const { status, value, error, truncated } = result;
  return JSON.stringify({ status, value, error, truncated }).slice(0, 600);
}

let servesCount = 0;

/** After every attack: an ordinary job on the same pool gets the right answer. */
/**
 * A snippet that tries each route of an attack and answers the error each met, by route: every one
 * of the `count` routes met `errorName`.
 */
export function expectEveryRouteMeets(result: Result, count: number, errorName: string): void {
  expectStatus(result, 'ok');
  const routes = result.value as Record<string, unknown>;
  expect(Object.keys(routes).length).toBe(count);
  for (const [route, met] of Object.entries(routes)) expect(met, route).toBe(errorName);
}

export async function expectPoolServes(pool: Pool, language: 'javascript' | 'typescript' = 'javascript'): Promise<void> {
  const code =
    language === 'typescript'
      ? `const n: number = input.n; console.log('served', n); n * 2`
      : `console.log('served', input.n); input.n * 2`;
  // Two at once, so a thread the attack broke cannot hide behind one that is fine.
  const numbers = [++servesCount, ++servesCount];
  const results = await Promise.all(numbers.map((n) => pool.execute({ code, language, input: { n } })));
  results.forEach((result, index) => {
    const n = numbers[index] ?? 0;
    expect(result.status, summary(result)).toBe('ok');
    expect(result.value).toBe(n * 2);
    expect(result.stdout).toBe(`served ${n}\n`);
    expect(result.stderr).toBe('');
  });
}
