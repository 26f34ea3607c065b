// Attacks on the engine's own machinery: module imports of Node builtins, dynamic import, import.meta,
// top-level await that never settles, TypeScript crafted to break the type stripper or smuggle in
// require, and snippets that hijack what the engine may use inside the isolate.
import { expect, test } from 'vitest';
import {
  CPU_BOUND,
  WALL_BOUND,
  expectPoolServes,
  expectStatus,
  type Pool,
  run,
  snippet,
  useEscapePool,
  summary,
} from './harness.ts';

let pool: Pool;
useEscapePool((started) => (pool = started));

const CLEAR_PHASES = ['compile', 'runtime'];

// engine: static import of a Node builtin
test("a module importing 'fs' fails with a clear error", async () => {
  const result = await run(pool, { code: snippet('import-fs-in-module') });
  expectStatus(result, 'error');
  expect(CLEAR_PHASES).toContain(result.error?.phase);
  expect(result.error?.message).toMatch(/fs|import|module/i);
  await expectPoolServes(pool);
});

// engine: static import by node: specifier
test("a module importing 'node:child_process' fails with a clear error", async () => {
  const result = await run(pool, { code: snippet('import-child-process-in-module') });
  expectStatus(result, 'error');
  expect(CLEAR_PHASES).toContain(result.error?.phase);
  expect(result.error?.message).toMatch(/child_process|import|module/i);
  await expectPoolServes(pool);
});

// engine: import statement in a classic script (no default export, so not a module)
test('an import statement in a script is a compile error', async () => {
  const result = await run(pool, { code: "import fs from 'fs';\nfs.readFileSync('/etc/passwd', 'utf8');" });
  expectStatus(result, 'error');
  expect(result.error?.phase).toBe('compile');
  await expectPoolServes(pool);
});

// engine: dynamic import from a module
test('dynamic import of node:fs from a module fails as the snippet error', async () => {
  const result = await run(pool, { code: snippet('dynamic-import-in-module') });
  expectStatus(result, 'error');
  await expectPoolServes(pool);
});

// engine: import.meta
test('import.meta carries no host URL and no resolver', async () => {
  const result = await run(pool, { code: snippet('import-meta-in-module') });
  expectStatus(result, 'ok');
  const value = result.value as { keys: string[]; url: string; resolve: string };
  expect(value.keys).not.toContain('resolve');
  expect(value.resolve).toBe('undefined');
  expect(value.url).not.toMatch(/^file:/);
  await expectPoolServes(pool);
});

// engine: top-level await that never settles
test('top-level await of a never-settling promise is a wall timeout', async () => {
  const result = await run(pool, { code: snippet('top-level-await-never-settles'), limits: WALL_BOUND });
  expectStatus(result, 'timeout', 'wall');
  await expectPoolServes(pool);
});

// engine: a default export that is a function which never settles
test('a default-export function whose promise never settles is a wall timeout', async () => {
  const result = await run(pool, { code: 'export default () => new Promise(() => {});', limits: WALL_BOUND });
  expectStatus(result, 'timeout', 'wall');
  await expectPoolServes(pool);
});

// engine: syntax error
test('a syntax error is a compile error naming no host file', async () => {
  const result = await run(pool, { code: 'const = ;' });
  expectStatus(result, 'error');
  expect(result.error?.phase).toBe('compile');
  expect(result.error?.name).toBe('SyntaxError');
  await expectPoolServes(pool);
});

// engine: a huge error message
test('a 10 MB error message and a 1 MB error name come back capped', async () => {
  const code = "const error = new Error('m'.repeat(10e6)); error.name = 'N'.repeat(1e6); throw error";
  const result = await run(pool, { code, limits: { memoryMb: 128 } });
  expectStatus(result, 'error');
  expect(result.error?.message.length).toBeGreaterThan(0);
  expect(result.error?.message.length).toBeLessThanOrEqual(64 * 1024);
  expect(result.error?.name.length).toBeGreaterThan(0);
  expect(result.error?.name.length).toBeLessThanOrEqual(1024);
  await expectPoolServes(pool);
});

// engine: every object made a never-settling thenable
test('making every object a thenable cannot hang or break the engine', async () => {
  const result = await run(pool, { code: snippet('object-prototype-then-hijack'), limits: WALL_BOUND });
  // A primitive completion value needs no object: ok 42 is right; a wall timeout means the engine
  // awaited an object of its own inside the isolate, which the snippet could hijack.
  expectStatus(result, 'ok');
  expect(result.value).toBe(42);
  await expectPoolServes(pool);
});

// engine: TypeScript reaching for process through type assertions
test('TypeScript that asserts its way to process still finds nothing', async () => {
  const code = [
    'declare const process: { env: Record<string, string> };',
    'const host = (globalThis as unknown as { process?: typeof process }).process;',
    'const probe: string = typeof host;',
    'probe',
  ].join('\n');
  const result = await run(pool, { code, language: 'typescript' });
  expectStatus(result, 'ok');
  expect(result.value).toBe('undefined');
  await expectPoolServes(pool, 'typescript');
});

// engine: TypeScript import-equals (transformed into a require call)
test("TypeScript `import fs = require('fs')` gets no fs", async () => {
  const code = "import fs = require('fs');\nexport default () => fs.readFileSync('/etc/passwd', 'utf8');";
  const result = await run(pool, { code, language: 'typescript' });
  expectStatus(result, 'error');
  expect(CLEAR_PHASES).toContain(result.error?.phase);
  await expectPoolServes(pool, 'typescript');
});

// engine: TypeScript nested deep enough to overflow the type stripper's recursive parser, in every
// shape that nests without brackets too (generics, !, ternaries, conditional types, templates...)
test("TypeScript nested past the stripper's depth is a clear error and later TypeScript still works", { timeout: 60_000 }, async () => {
  const depth = 16_000;
  const shapes = {
    brackets: `let deep: ${'Array<'.repeat(depth)}number${'>'.repeat(depth)} = [] as never;\nconst value = (${'('.repeat(depth)}1${')'.repeat(depth)});\nvalue`,
    angles: `let x: ${'Array<'.repeat(depth)}number${'>'.repeat(depth)} = 1 as any; 'ok'`,
    bangs: `const y = 1; const z = ${'!'.repeat(depth)}y; 'ok'`,
    nonNull: `const y: any = 1; const z = y${'!'.repeat(depth)}; 'ok'`,
    ternaries: `const a: boolean = true; const v = ${'a ? 1 : '.repeat(depth)}0; 'ok'`,
    arrows: `const f = ${'(x: number) => '.repeat(depth)}1; 'ok'`,
    conditionalTypes: `type T = ${'string extends number ? 1 : '.repeat(depth)}0; 'ok'`,
    templates: `const s: string = ${'`${'.repeat(depth)}1${'}`'.repeat(depth)}; 'ok'`,
    keyofs: `type K = ${'keyof '.repeat(depth)}string; 'ok'`,
    arrayTypes: `let list: number${'[]'.repeat(depth)} = []; 'ok'`,
  };
  for (const [shape, code] of Object.entries(shapes)) {
    const result = await run(pool, { code, language: 'typescript' });
    // Refused as too deep (error or rejected), or — if the stripper copes — simply run.
    expect(['error', 'rejected', 'ok'], `${shape}: ${summary(result)}`).toContain(result.status);
    if (result.status === 'ok') expect(result.value, shape).toBe('ok');
    // The stripper runs in the caller's process: it must still strip correctly afterwards.
    const after = await run(pool, { code: 'const n: number = 41;\nn + 1', language: 'typescript' });
    expectStatus(after, 'ok');
    expect(after.value, `TypeScript after ${shape}`).toBe(42);
  }
  await expectPoolServes(pool, 'typescript');
});

// engine: TypeScript whose comments and strings try to confuse the stripper into emitting code
test('TypeScript with type-like text in strings and comments keeps its meaning', async () => {
  const code = [
    'type Secret = /* */ string; // process.exit(1)',
    "const text: Secret = 'as any; process.exit(1); //';",
    'const template = `${text as string}: ${typeof (globalThis as any).process}`;',
    'template',
  ].join('\n');
  const result = await run(pool, { code, language: 'typescript' });
  expectStatus(result, 'ok');
  expect(result.value).toBe('as any; process.exit(1); //: undefined');
  await expectPoolServes(pool, 'typescript');
});

// engine: importing the engine's own module names
test("importing the engine's own specifiers (sandpool:snippet, sandpool:entry) is refused", async () => {
  for (const specifier of ['sandpool:snippet', 'sandpool:entry', './snippet.mjs']) {
    const result = await run(pool, { code: `import * as reached from '${specifier}';\nexport default () => Object.keys(reached);` });
    expectStatus(result, 'error');
    expect(result.error?.phase).toBe('compile');
  }
  await expectPoolServes(pool);
});

// engine: a default export that is a Proxy whose call spins
test('a default export whose call spins is a CPU timeout', async () => {
  const result = await run(pool, { code: 'export default new Proxy(function () {}, { apply() { for (;;) {} } });', limits: CPU_BOUND });
  expectStatus(result, 'timeout', 'cpu');
  await expectPoolServes(pool);
});

// engine: a default export that is a thenable whose then() spins
test('a default export that is a spinning thenable is a CPU timeout', async () => {
  const result = await run(pool, { code: 'export default { then() { for (;;) {} } };', limits: CPU_BOUND });
  expectStatus(result, 'timeout', 'cpu');
  await expectPoolServes(pool);
});

// engine, caller side: requests that are not requests at all
test('hostile request objects are rejected, never thrown', async () => {
  const cyclic: Record<string, unknown> = { code: 'input' };
  const loop: Record<string, unknown> = {};
  loop.self = loop;
  cyclic.input = loop;
  let deep: unknown = 1;
  for (let depth = 0; depth < 100_000; depth++) deep = [deep];
  const throwing = new Proxy({}, {
    get() { throw new Error('trap'); },
    has() { throw new Error('trap'); },
    ownKeys() { throw new Error('trap'); },
    getOwnPropertyDescriptor() { throw new Error('trap'); },
    getPrototypeOf() { throw new Error('trap'); },
  });
  for (const request of [null, 42, 'code', { code: 42 }, { code: '1', limits: { timeoutMs: -1 } }, cyclic, { code: 'input', input: deep }, throwing]) {
    const result = await run(pool, request);
    expectStatus(result, 'rejected');
    expect(result.rejection?.reasons.length).toBeGreaterThan(0);
  }
  await expectPoolServes(pool);
});

// engine: every builtin the in-isolate half might use for its caps, replaced before the output
test('output and result caps hold after the snippet poisons every builtin', async () => {
  const maxOutputBytes = 1_000;
  const result = await run(pool, { code: snippet('builtins-poisoned-before-output'), limits: { maxOutputBytes } });
  expectStatus(result, 'ok');
  expect(result.value).toEqual({ big: 'v', lines: 10_000 });
  expect(result.truncated.stdout).toBe(true);
  // 10 000 lines of `line N 😀\n`: 11 bytes plus the digits of N.
  expect(result.output.stdout.totalBytes).toBe(148_890);
  expect(Buffer.byteLength(result.stdout)).toBeLessThanOrEqual(maxOutputBytes + 256);
  expect(result.stdout.startsWith('line 0 😀\n')).toBe(true);
  expect(result.stdout.endsWith('line 9999 😀\n')).toBe(true);
  await expectPoolServes(pool);
});

// engine: the console called with the stack all but exhausted
test('printing at the edge of the stack keeps the console working', async () => {
  const result = await run(pool, { code: snippet('console-at-the-stack-edge') });
  expectStatus(result, 'ok');
  expect(result.value).toBe('number');
  expect(result.stdout).toMatch(/^(edge\n)+final\n$/);
  await expectPoolServes(pool);
});

// engine: an error whose cause is itself, and a value nested far deeper than any formatter goes
test('a self-caused error and a 100 000-deep object are described without recursion trouble', async () => {
  const cyclic = await run(pool, { code: "const error = new Error('a'); error.cause = error; throw error" });
  expectStatus(cyclic, 'error');
  expect(cyclic.error?.message).toBe('a');
  const deep = await run(pool, { code: "let node = {}; for (let i = 0; i < 1e5; i++) node = { node }; console.log(node); 'after'" });
  expectStatus(deep, 'ok');
  expect(deep.value).toBe('after');
  expect(Buffer.byteLength(deep.stdout)).toBeLessThan(1_000);
  await expectPoolServes(pool);
});

// engine: code nested past V8's own parser depth (no TypeScript involved)
test('JavaScript nested past the parser depth is a compile error, not a runtime one', async () => {
  const depth = 200_000;
  for (const code of [`${'('.repeat(depth)}1${')'.repeat(depth)}`, `${'['.repeat(depth)}${']'.repeat(depth)}.length`]) {
    const result = await run(pool, { code });
    expectStatus(result, 'error');
    // The snippet never ran a line: V8 could not parse it.
    expect(result.error?.phase, summary(result)).toBe('compile');
  }
  await expectPoolServes(pool);
});

// engine, caller side: results of concurrent jobs that share a caller-given id stay apart
test('concurrent jobs sharing one caller id each get their own result', async () => {
  const results = await Promise.all(
    Array.from({ length: 8 }, (_, index) => run(pool, { code: `console.log('job ${index}'); ${index}` })),
  );
  const shared = await Promise.all(
    Array.from({ length: 8 }, (_, index) => pool.execute({ code: `console.log('job ${index}'); ${index}` }, { id: 'same-id' })),
  );
  for (const [index, result] of [...results, ...shared].entries()) {
    expectStatus(result, 'ok');
    expect(result.value).toBe(index % 8);
    expect(result.stdout).toBe(`job ${index % 8}\n`);
  }
  await expectPoolServes(pool);
});

// engine, caller side: execute options that are not sane numbers must not poison the metrics
test('nonsense acceptedAt / attempt options are refused or yield sane metrics', async () => {
  const nonsense = [{ acceptedAt: Number.NaN }, { acceptedAt: 'soon' }, { attempt: Number.NaN }, { attempt: -5 }, { attempt: 1.5 }];
  for (const options of nonsense) {
    const named = Object.entries(options).map(([key, value]) => `${key}=${String(value)}`).join();
    let result;
    try {
      result = await pool.execute({ code: '1' }, options as never);
    } catch (error) {
      // Refusing a programming error outright is fine: it names the option.
      expect(String(error)).toMatch(/acceptedAt|attempt/);
      continue;
    }
    expectStatus(result, 'ok');
    expect(Number.isFinite(result.metrics.queueWaitMs), `queueWaitMs for ${named}: ${result.metrics.queueWaitMs}`).toBe(true);
    expect(result.metrics.queueWaitMs).toBeGreaterThanOrEqual(0);
    expect(Number.isInteger(result.metrics.attempt) && result.metrics.attempt >= 1, `attempt for ${named}: ${result.metrics.attempt}`).toBe(true);
  }
  await expectPoolServes(pool);
});

// engine: a snippet that words its own error as isolated-vm words its limits must not fake a status
test("errors worded like isolated-vm's memory-limit and timeout errors are the snippet's own, not limits", async () => {
  const memoryWords = "new Error('Isolate was disposed during execution due to memory limit')";
  const timeoutWords = "new Error('Script execution timed out.')";
  // Rejected and left unhandled, with a value already made: the value stands, as for any rejection.
  for (const words of [memoryWords, timeoutWords]) {
    for (const code of [`Promise.reject(${words}); 42`, `Promise.reject(${words});\nexport default 42;`]) {
      const result = await run(pool, { code });
      expectStatus(result, 'ok');
      expect(result.value).toBe(42);
    }
    // Thrown where only isolated-vm sees it (a module's top level): an error with its own message.
    const thrown = await run(pool, { code: `throw ${words};\nexport default 1;` });
    expectStatus(thrown, 'error');
    expect(thrown.error?.message).toBe(words.slice(11, -2));
    expect(thrown.metrics.heapUsedBytes).toBeLessThan(thrown.limits.memoryMb * 1024 * 1024);
  }
  // The real limits still read as limits.
  const memory = await run(pool, { code: 'const rows = []; for (;;) rows.push({ at: rows.length });\nexport default 1;', limits: { memoryMb: 16 } });
  expectStatus(memory, 'memory_limit');
  const wall = await run(pool, { code: 'for (;;) {}\nexport default 1;', limits: WALL_BOUND });
  expectStatus(wall, 'timeout');
  expect(wall.error?.limit).toBe('wall');
  await expectPoolServes(pool);
});

// engine: a huge BigInt thrown where isolated-vm hands it to the host, whose decimal text is slow
test('a module throwing a BigInt of 2^26 bits ends as an error, not in host CPU past its limits', async () => {
  // Printed in decimal, it took the thread past the job's deadline: answered `timeout`, thread lost.
  const result = await run(pool, { code: 'throw 1n << (1n << 26n);\nexport default 1;' });
  expectStatus(result, 'error');
  expect(result.error?.message).toMatch(/BigInt of more than \d+ bits/);
  await expectPoolServes(pool);
});
