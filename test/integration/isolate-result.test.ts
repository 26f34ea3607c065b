// Result values at thread level (in-process, real isolated-vm): JSON semantics, hostile results
// made JSON-safe inside the isolate under the job's limits, and truncation at maxResultBytes.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { IsolateRunner } from '../../workers/isolate.ts';
import { task, utf8Bytes, valueOf } from './isolate-helpers.ts';

let runner: IsolateRunner;
beforeAll(async () => {
  runner = new IsolateRunner({ sparesPerThread: 1 });
  await runner.ready();
});
afterAll(() => runner.close());

describe('JSON semantics', () => {
  test('functions, symbols and undefined are dropped in objects and null in arrays', async () => {
    const code = '({ keep: 1, fn() {}, sym: Symbol("s"), undef: undefined, list: [() => 1, Symbol("t"), undefined, NaN], date: new Date(0) })';
    const outcome = await runner.run(task(code));
    expect(outcome.status).toBe('ok');
    expect(valueOf(outcome)).toEqual({ keep: 1, list: [null, null, null, null], date: '1970-01-01T00:00:00.000Z' });
  });

  test('a top-level function or symbol gives no value', async () => {
    for (const code of ['(function f() {})', 'Symbol("s")', 'undefined']) {
      const outcome = await runner.run(task(code));
      expect(outcome.status).toBe('ok');
      expect(outcome.valueJson).toBeUndefined();
    }
  });

  test('toJSON runs inside the isolate', async () => {
    const outcome = await runner.run(task('({ toJSON() { return { converted: typeof input } } })'));
    expect(valueOf(outcome)).toEqual({ converted: 'undefined' });
  });

  test('Map, Set and class instances copy as JSON would', async () => {
    const outcome = await runner.run(task('[new Map([[1, 2]]), new Set([1]), new (class P { constructor() { this.x = 1 } })()]'));
    expect(valueOf(outcome)).toEqual([{}, {}, { x: 1 }]);
  });
});

describe('values that cannot be copied', () => {
  test('a cycle is an error in the result phase', async () => {
    const outcome = await runner.run(task('const a = { b: {} }; a.b.a = a; a'));
    expect(outcome.status).toBe('error');
    expect(outcome.error?.phase).toBe('result');
    expect(outcome.error?.message).toMatch(/not JSON-serialisable: Converting circular structure to JSON/);
  });

  test('nesting past 1000 levels is an error in the result phase (hosts serialise recursively); strings do not count', async () => {
    for (const open of ['[', '{"a":']) {
      const close = open === '[' ? ']' : '}';
      const deep = await runner.run(task(`JSON.parse('${open.repeat(20_000)}0${close.repeat(20_000)}')`));
      expect(deep).toMatchObject({ status: 'error', error: { phase: 'result', message: expect.stringContaining('1000 levels') } });
    }
    // 1000 levels exactly (the object and 999 arrays), with quotes, backslashes and brackets in strings.
    const fine = await runner.run(task(`let v = 'a\\\\"b[{'; for (let i = 0; i < 999; i++) v = [v]; ({ text: '['.repeat(5000), list: v })`));
    expect(fine.status).toBe('ok');
    expect(JSON.stringify(valueOf(fine)).length).toBeGreaterThan(7_000);
  });

  test('more objects and arrays than one per 16 bytes of maxResultBytes is an error in the result phase; strings do not count', async () => {
    // 1 MiB allows 65,536: the outer array and 65,535 inside it, then one more.
    const limits = { maxResultBytes: 1024 * 1024 };
    const fits = await runner.run(task('new Array(65_535).fill([])', { limits }));
    expect(fits.status).toBe('ok');
    expect((valueOf(fits) as unknown[]).length).toBe(65_535);
    for (const filler of ['[]', '{}']) {
      const many = await runner.run(task(`new Array(65_536).fill(${filler})`, { limits }));
      expect(many).toMatchObject({ status: 'error', error: { name: 'RangeError', phase: 'result' } });
      expect(many.error?.message).toContain('more than 65536 objects and arrays (one per 16 bytes of maxResultBytes, at least 10000)');
    }
    // Brackets inside strings are text; a small cap still allows 10,000.
    const text = await runner.run(task(`['{'.repeat(300_000), '[]'.repeat(100_000)]`, { limits }));
    expect(text.status).toBe('ok');
    const floor = await runner.run(task('new Array(9_999).fill({})', { limits: { maxResultBytes: 32 * 1024 } }));
    expect(floor.status).toBe('ok');
    // The review's case: 2.7 million empty objects fit 8 MiB as text and would parse into ~170 MiB.
    const amplified = await runner.run(task('new Array(2_700_000).fill({})', { limits: { maxResultBytes: 8 * 1024 * 1024 } }));
    expect(amplified.error?.message).toContain('more than 524288 objects and arrays');
  });

  test('a BigInt is an error in the result phase', async () => {
    const outcome = await runner.run(task('({ big: 10n })'));
    expect(outcome.status).toBe('error');
    expect(outcome.error?.phase).toBe('result');
    expect(outcome.error?.message).toContain('BigInt');
  });

  test('a getter that throws is an error in the result phase', async () => {
    const outcome = await runner.run(task('({ get boom() { throw new RangeError("from getter") } })'));
    expect(outcome.status).toBe('error');
    expect(outcome.error).toMatchObject({ name: 'RangeError', phase: 'result' });
    expect(outcome.error?.message).toContain('from getter');
  });

  test('a then getter that throws is an error in the result phase', async () => {
    const outcome = await runner.run(task('({ get then() { throw new Error("then") } })'));
    expect(outcome.error?.phase).toBe('result');
  });

  test('a toJSON that loops ends at the wall limit', async () => {
    const outcome = await runner.run(task('({ toJSON() { for (;;) {} } })', { limits: { timeoutMs: 100 } }));
    expect(outcome.status).toBe('timeout');
    expect(outcome.error?.limit).toBe('wall');
  });

  test('a toJSON that loops after an await ends at the wall limit', async () => {
    const outcome = await runner.run(task('Promise.resolve({ toJSON() { for (;;) {} } })', { limits: { timeoutMs: 100 } }));
    expect(outcome.status).toBe('timeout');
  });

  test('a Proxy result runs its traps inside the isolate', async () => {
    const plain = await runner.run(task('new Proxy({ a: 1 }, {})'));
    expect(valueOf(plain)).toEqual({ a: 1 });
    const hostile = await runner.run(task('new Proxy({}, { ownKeys() { throw new Error("trap") } })'));
    expect(hostile.status).toBe('error');
    expect(hostile.error).toMatchObject({ phase: 'result' });
    const looping = await runner.run(task('new Proxy({}, { ownKeys() { for (;;) {} } })', { limits: { timeoutMs: 100 } }));
    expect(looping.status).toBe('timeout');
  });

  test('a rejected promise result is a runtime error', async () => {
    const outcome = await runner.run(task('Promise.reject(new TypeError("rejected"))'));
    expect(outcome.error).toMatchObject({ name: 'TypeError', message: 'rejected', phase: 'runtime' });
  });
});

describe('maxResultBytes', () => {
  test('a value within the cap is whole', async () => {
    const outcome = await runner.run(task('"x".repeat(18)', { limits: { maxResultBytes: 20 } }));
    expect(outcome.truncatedValue).toBe(false);
    expect(valueOf(outcome)).toBe('x'.repeat(18));
  });

  test('a larger value becomes the head of its JSON text, as a JSON string within the cap', async () => {
    const outcome = await runner.run(task('({ list: Array.from({ length: 1000 }, (_, i) => i) })', { limits: { maxResultBytes: 100 } }));
    expect(outcome.status).toBe('ok');
    expect(outcome.truncatedValue).toBe(true);
    expect(utf8Bytes(outcome.valueJson ?? '')).toBeLessThanOrEqual(100);
    const head = valueOf(outcome);
    expect(typeof head).toBe('string');
    expect(JSON.stringify({ list: Array.from({ length: 1000 }, (_, i) => i) }).startsWith(head as string)).toBe(true);
    expect((head as string).length).toBeGreaterThan(60);
  });

  test('values whose text dwarfs their heap are truncated, never serialised in full', async () => {
    // Each of these is a few bytes to a few MB of heap, and 100 MB to terabytes of JSON text, which
    // the native serialiser builds outside the heap limit (the first took an executor to 1.5 GiB).
    const cases: [string, string][] = [
      ['const a = []; a[1e8] = 1; a', '[null,null,'],
      ["'x'.repeat(35e6)", '"xxxx'],
      ["let x = 'ab'.repeat(500); for (let i = 0; i < 40; i++) x = [x, x]; x", '[[[[['],
      ["const o = {}; for (let i = 0; i < 1000; i++) Object.defineProperty(o, 'k' + i, { enumerable: true, get: () => 'y'.repeat(1e6) }); o", '{"k0":"yyyy'],
      ["({ toJSON() { return Array.from({ length: 1000 }, () => ({ toJSON: () => 'z'.repeat(5e5) })) } })", '["zzzz'],
      // A function's toJSON is called too, and a String object is written as its toString says.
      ['Object.assign(function f() {}, { toJSON() { const a = []; a[1e8] = 1; return a } })', '[null,null,'],
      ["const big = 'w'.repeat(1 << 20); const S = new String(''); S.toString = () => big; Array(400).fill(S)", '["wwww'],
      ["Array(400).fill(new String('v'.repeat(1 << 20)))", '["vvvv'],
      // Numbers are counted at their length, commas included.
      ["new Proxy([], { get: (t, k) => k === 'length' ? 8 * 1024 * 1024 : -1.2345678901234567e-300 })", '[-1.23456789012345'],
      // A toJSON that prints with %j runs a pass of its own inside this one; this one keeps its cap.
      ["const s = 'u'.repeat(15000); const r = { toJSON() { console.log('%j', {}); return 0 } }; const a = []; for (let i = 0; i < 35000; i++) a.push(s, r); a", '["uuuu'],
    ];
    for (const [code, start] of cases) {
      const outcome = await runner.run(task(code, { limits: { maxResultBytes: 64 * 1024 } }));
      expect(outcome.status, code).toBe('ok');
      expect(outcome.truncatedValue, code).toBe(true);
      expect(utf8Bytes(outcome.valueJson ?? '')).toBeLessThanOrEqual(64 * 1024);
      const head = valueOf(outcome) as string;
      expect(head.startsWith(start), code).toBe(true);
      expect(head.length, code).toBeGreaterThan(60_000);
      // Far below the text's size: the heap held the value and the head, not the text.
      expect(outcome.heapUsedBytes).toBeLessThan(48 * 1024 * 1024);
    }
    // The head is the text's own head for ordinary values, nested objects and omitted members included.
    const code = "Array.from({ length: 5000 }, (_, i) => ({ i, s: 'v' + i, skip: undefined, f() {}, d: new Date(i), n: [new Number(i), new String('s'), new Boolean(false), null, () => 1] }))";
    const outcome = await runner.run(task(code, { limits: { maxResultBytes: 4096 } }));
    expect(outcome.truncatedValue).toBe(true);
    const full = JSON.stringify(Array.from({ length: 5000 }, (_, i) => ({ i, s: `v${i}`, d: new Date(i), n: [i, 's', false, null, null] })));
    expect(full.startsWith(valueOf(outcome) as string)).toBe(true);
    expect((valueOf(outcome) as string).length).toBeGreaterThan(3000); // its quotes take two bytes each as a JSON string
  });

  test('boxed primitives are written as their primitives, and do not count as objects', async () => {
    const code = "[new Number(5), new String('s'), new Boolean(false), Object.assign(new String('t'), { toString: () => 'told' }), Object.assign(new Number(1), { valueOf: () => 7 })]";
    expect(valueOf(await runner.run(task(code)))).toEqual([5, 's', false, 'told', 7]);
    // 70,000 Number objects are plain numbers in the text: not over the 65,536 objects and arrays a 1 MiB cap allows.
    const many = await runner.run(task('Array(70000).fill(new Number(1))'));
    expect(many.status).toBe('ok');
    expect((valueOf(many) as number[]).length).toBe(70_000);
  });

  test("console.log('%j') of such a value prints a bounded head", async () => {
    const outcome = await runner.run(task("const a = []; a[1e8] = 1; console.log('%j', a); 1"));
    expect(outcome.status).toBe('ok');
    expect(outcome.stdout.startsWith('[null,null,')).toBe(true);
    expect(outcome.stdout.length).toBeLessThan(20_000);
  });

  test('the cut never splits a character', async () => {
    const outcome = await runner.run(task('"😀é".repeat(100)', { limits: { maxResultBytes: 50 } }));
    expect(outcome.truncatedValue).toBe(true);
    expect(utf8Bytes(outcome.valueJson ?? '')).toBeLessThanOrEqual(50);
    const head = valueOf(outcome) as string;
    expect(head).not.toContain('\uFFFD');
    expect(`"${'😀é'.repeat(100)}"`.startsWith(head)).toBe(true);
  });
});
