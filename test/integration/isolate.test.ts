// The isolate runner end to end at thread level (in-process, real isolated-vm): code forms, input,
// statuses and error descriptions.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { IsolateRunner } from '../../workers/isolate.ts';
import { task, valueOf } from './isolate-helpers.ts';

let runner: IsolateRunner;
beforeAll(async () => {
  runner = new IsolateRunner({ sparesPerThread: 1 });
  await runner.ready();
});
afterAll(() => runner.close());

describe('classic scripts', () => {
  test('the completion value is the result', async () => {
    const outcome = await runner.run(task('const a = 20; a + 22'));
    expect(outcome.status).toBe('ok');
    expect(valueOf(outcome)).toBe(42);
    expect(outcome.truncatedValue).toBe(false);
    expect(outcome.error).toBeUndefined();
  });

  test('a promise completion value is awaited', async () => {
    const outcome = await runner.run(task('(async () => { await null; return { done: [1, 2] }; })()'));
    expect(outcome.status).toBe('ok');
    expect(valueOf(outcome)).toEqual({ done: [1, 2] });
  });

  test('a thenable completion value is awaited', async () => {
    const outcome = await runner.run(task('({ then(resolve) { resolve("kept") } })'));
    expect(valueOf(outcome)).toBe('kept');
  });

  test('an undefined completion value gives no value', async () => {
    const outcome = await runner.run(task('let x = 1;'));
    expect(outcome.status).toBe('ok');
    expect(outcome.valueJson).toBeUndefined();
  });
});

describe('modules', () => {
  test('a default-exported function is called with input', async () => {
    const outcome = await runner.run(task('export default function (i) { return i.n * 2 }', { form: 'module', input: { n: 21 } }));
    expect(outcome.status).toBe('ok');
    expect(valueOf(outcome)).toBe(42);
  });

  test('an async default export is awaited, after top-level await', async () => {
    const code = 'const base = await Promise.resolve(40);\nexport default async (i) => { await null; return base + i; };';
    const outcome = await runner.run(task(code, { form: 'module', input: 2 }));
    expect(outcome.status).toBe('ok');
    expect(valueOf(outcome)).toBe(42);
  });

  test('a default-exported value is the result as is', async () => {
    const outcome = await runner.run(task('const x = { a: [1] };\nexport default x;', { form: 'module' }));
    expect(valueOf(outcome)).toEqual({ a: [1] });
  });

  test('no default export gives no value', async () => {
    const outcome = await runner.run(task('export const a = 1;', { form: 'module' }));
    expect(outcome.status).toBe('ok');
    expect(outcome.valueJson).toBeUndefined();
  });

  test('every import is refused with a clear compile error', async () => {
    const outcome = await runner.run(task('import fs from "node:fs";\nexport default fs;', { form: 'module' }));
    expect(outcome.status).toBe('error');
    expect(outcome.error).toMatchObject({ phase: 'compile', name: 'ImportError' });
    expect(outcome.error?.message).toContain("'node:fs'");
    const dynamic = await runner.run(task('export default await import("node:fs");', { form: 'module' }));
    expect(dynamic.status).toBe('error');
  });

  test('a module syntax error is a compile error with its location', async () => {
    const outcome = await runner.run(task('export default (', { form: 'module' }));
    expect(outcome.status).toBe('error');
    expect(outcome.error?.phase).toBe('compile');
    expect(outcome.error?.name).toBe('SyntaxError');
    expect(outcome.error?.message).toMatch(/snippet\.mjs:1:\d+/);
  });

  test('a module that throws while evaluating is a runtime error with snippet frames', async () => {
    const outcome = await runner.run(task('await null;\nthrow new RangeError("late");', { form: 'module' }));
    expect(outcome.status).toBe('error');
    expect(outcome.error).toMatchObject({ name: 'RangeError', message: 'late', phase: 'runtime' });
    expect(outcome.error?.stack).toContain('snippet.mjs:2');
  });

  test('a module that throws a non-Error is described as such', async () => {
    const object = await runner.run(task('throw { code: 1 };', { form: 'module' }));
    expect(object.error).toMatchObject({ name: 'NonError', phase: 'runtime' });
    const text = await runner.run(task('throw "text";', { form: 'module' }));
    expect(text.error).toMatchObject({ name: 'NonError', message: 'thrown value: text' });
  });

  test('a default export that throws is a runtime error', async () => {
    const outcome = await runner.run(task('export default () => { throw new TypeError("nope") }', { form: 'module' }));
    expect(outcome.error).toMatchObject({ name: 'TypeError', message: 'nope', phase: 'runtime' });
  });
});

describe('input', () => {
  test('input is a deep copy parsed inside the isolate', async () => {
    const input = { list: [1, { deep: 'x' }], text: 'é😀' };
    const inputJson = JSON.stringify(input);
    const t = { ...task('input.list[1].deep = "changed"; input.list.push(3); input'), inputJson };
    const outcome = await runner.run(t);
    expect(valueOf(outcome)).toEqual({ list: [1, { deep: 'changed' }, 3], text: 'é😀' });
    expect(t.inputJson).toBe(inputJson);
  });

  test('input is undefined (not missing) when the request has none', async () => {
    const outcome = await runner.run(task('[typeof input, "input" in globalThis]'));
    expect(valueOf(outcome)).toEqual(['undefined', true]);
  });
});

describe('errors', () => {
  test('a syntax error is a compile error with V8 location', async () => {
    const outcome = await runner.run(task('let x = ;'));
    expect(outcome.status).toBe('error');
    expect(outcome.error).toMatchObject({ name: 'SyntaxError', phase: 'compile' });
    expect(outcome.error?.message).toMatch(/snippet\.js:1:\d+/);
  });

  test('code nested deeper than the parser can go is a compile error', async () => {
    const outcome = await runner.run(task(`${'['.repeat(100_000)}${']'.repeat(100_000)}.length`));
    expect(outcome.status).toBe('error');
    expect(outcome.error).toEqual({ name: 'RangeError', message: 'Maximum call stack size exceeded', phase: 'compile' });
  });

  test('an error thrown with no stack frames is still a runtime error', async () => {
    const outcome = await runner.run(task('Error.stackTraceLimit = 0; throw new RangeError("frameless")'));
    expect(outcome.error).toMatchObject({ name: 'RangeError', message: 'frameless', phase: 'runtime' });
  });

  test('a SyntaxError thrown at run time is a runtime error', async () => {
    const outcome = await runner.run(task('JSON.parse("{")'));
    expect(outcome.error).toMatchObject({ name: 'SyntaxError', phase: 'runtime' });
  });

  test('the stack keeps snippet frames only', async () => {
    const code = 'function inner() { throw new TypeError("deep"); }\nfunction outer() { [1].map(inner); }\nouter();';
    const outcome = await runner.run(task(code));
    expect(outcome.error?.name).toBe('TypeError');
    const stack = outcome.error?.stack ?? '';
    expect(stack.split('\n')[0]).toBe('TypeError: deep');
    expect(stack).toContain('at inner (snippet.js:1:26)');
    expect(stack).toContain('at snippet.js:3:1');
    for (const hostly of ['sandpool:', 'isolated-vm', 'file:', 'node:', '/work', '(<isolated-vm']) {
      expect(stack).not.toContain(hostly);
    }
  });

  test('an async rejection keeps its snippet frames', async () => {
    const outcome = await runner.run(task('(async () => { await null; throw new Error("async boom"); })()'));
    expect(outcome.error).toMatchObject({ name: 'Error', message: 'async boom', phase: 'runtime' });
    expect(outcome.error?.stack).toMatch(/^Error: async boom\n {4}at .*snippet\.js:1:\d+/);
  });

  test('non-Error throws are described safely', async () => {
    const text = await runner.run(task('throw "plain text"'));
    expect(text.error).toMatchObject({ name: 'NonError', message: 'thrown value: plain text', phase: 'runtime' });
    const object = await runner.run(task('throw { code: 7, nested: { a: [1] } }'));
    expect(object.error?.name).toBe('NonError');
    expect(object.error?.message).toContain('code: 7');
    const nullish = await runner.run(task('throw null'));
    expect(nullish.error?.message).toBe('thrown value: null');
  });

  test('a hostile thrown object is described without running its traps on the host', async () => {
    const code = `throw new Proxy({}, {
      get() { while (true) {} },
      getOwnPropertyDescriptor() { throw new Error('no descriptors'); },
    })`;
    const outcome = await runner.run(task(code));
    expect(outcome.status).toBe('error');
    expect(outcome.error?.name).toBe('NonError');
  });

  test('an error whose getters throw is still described', async () => {
    const code = `const e = new Error('x'); Object.defineProperty(e, 'message', { get() { throw e } }); throw e;`;
    const outcome = await runner.run(task(code));
    expect(outcome.status).toBe('error');
    expect(outcome.error?.message).toContain('could not be described');
  });

  test('the message is capped at 4 KiB', async () => {
    const outcome = await runner.run(task('throw new Error("é".repeat(10000))'));
    expect(Buffer.byteLength(outcome.error?.message ?? '', 'utf8')).toBeLessThanOrEqual(4096);
    expect(outcome.error?.message.startsWith('éé')).toBe(true);
  });

  test('an unhandled rejection with no result to come is the error', async () => {
    const outcome = await runner.run(task('Promise.reject(new RangeError("unhandled")); new Promise(() => {})'));
    expect(outcome.status).toBe('error');
    expect(outcome.error).toMatchObject({ name: 'RangeError', message: 'unhandled', phase: 'runtime' });
    expect(outcome.error?.stack ?? '').not.toMatch(/isolated-vm|file:|node:/);
  });

  test('a module that throws a hostile object ends within the limits', async () => {
    const code = 'throw new Proxy({}, { get() { for (;;) {} }, getPrototypeOf() { for (;;) {} } });';
    const outcome = await runner.run(task(code, { form: 'module', limits: { timeoutMs: 200 } }));
    expect(['error', 'timeout']).toContain(outcome.status);
    const next = await runner.run(task('"still serving"'));
    expect(valueOf(next)).toBe('still serving');
  });

  test('an unhandled rejection does not replace a finished result', async () => {
    const outcome = await runner.run(task('Promise.reject(new Error("floating")); 5'));
    expect(outcome.status).toBe('ok');
    expect(valueOf(outcome)).toBe(5);
  });

  test('nor a module\'s (its default export still runs); a module\'s own throw is still its error', async () => {
    const floating = 'Promise.reject(new Error("floating"));';
    for (const [code, value] of [
      [`${floating} export default 7;`, 7],
      [`await 0; ${floating} export default (input) => input + 1;`, 8],
    ] as const) {
      const outcome = await runner.run(task(code, { form: 'module', input: 7 }));
      expect(outcome.status).toBe('ok');
      expect(valueOf(outcome)).toBe(value);
    }
    const thrown = await runner.run(task('await 0; throw new Error("top"); export default 1;', { form: 'module' }));
    expect(thrown).toMatchObject({ status: 'error', error: { message: 'top', phase: 'runtime' } });
    // Both: an error (isolated-vm reports the floating rejection, the first to go unhandled).
    const both = await runner.run(task(`${floating} await 0; throw new Error("top"); export default 1;`, { form: 'module' }));
    expect(both).toMatchObject({ status: 'error', error: { phase: 'runtime' } });
    const inner = await runner.run(task(`${floating} export default () => { throw new Error("inner"); };`, { form: 'module' }));
    expect(inner).toMatchObject({ status: 'error', error: { message: 'inner' } });
  });
});

describe('metrics', () => {
  test('every outcome carries its metrics', async () => {
    const before = performance.timeOrigin + performance.now();
    const outcome = await runner.run(task('let s = 0; for (let i = 0; i < 1e5; i++) s += i; s'));
    expect(outcome.startedAt).toBeGreaterThanOrEqual(before);
    expect(outcome.setupMs).toBeGreaterThanOrEqual(0);
    expect(outcome.wallTimeMs).toBeGreaterThan(0);
    expect(outcome.cpuTimeMs).toBeGreaterThan(0);
    expect(outcome.heapUsedBytes).toBeGreaterThan(0);
    expect(outcome.thread).toBe(0); // in-process: the main thread
  });
});

describe('spares', () => {
  test('a spare primed while it waited runs its job as a never-used isolate would', async () => {
    const own = new IsolateRunner({ sparesPerThread: 1 });
    try {
      await own.ready();
      expect(own.stats()).toMatchObject({ sparesReady: 1, sparesPrimed: 1 });
      const outcome = await own.run(
        task('console.log(typeof input, Object.keys(globalThis).length); input.n + 1', { input: { n: 41 } }),
      );
      expect(outcome.status).toBe('ok');
      expect(valueOf(outcome)).toBe(42);
      // Priming printed and settled nothing the job can see: its output is its own, from the start.
      const fresh = await own.run(task('console.log(typeof input, Object.keys(globalThis).length); 0', { limits: { memoryMb: 64 } }));
      expect(fresh.stdout).toBe(outcome.stdout.replace('object', 'undefined'));
      expect(outcome.stdout).toMatch(/^object \d+\n$/);
      expect(own.stats().sparesTaken).toBe(1);
    } finally {
      own.close();
    }
  });

  test('with two spares, a job right after another still finds one ready while the other is remade', async () => {
    const own = new IsolateRunner({ sparesPerThread: 2 });
    try {
      await own.ready();
      expect(own.stats()).toMatchObject({ sparesReady: 2, sparesPrimed: 2 });
      expect((await own.run(task('1'))).status).toBe('ok');
      // The used isolate is disposed and its replacement made after the outcome left: not yet.
      expect(own.stats()).toMatchObject({ sparesReady: 1, sparesTaken: 1, inlineMade: 0 });
      const next = await own.run(task('2'));
      expect(valueOf(next)).toBe(2);
      expect(own.stats()).toMatchObject({ sparesTaken: 2, inlineMade: 0 });
      await own.ready();
      expect(own.stats()).toMatchObject({ sparesReady: 2, sparesMade: 4 });
    } finally {
      own.close();
    }
  });
});
