// Console output at thread level (in-process, real isolated-vm): routing, formatting, head+tail
// capping on UTF-8 boundaries with byte counts, floods, and caps a snippet cannot subvert.
import ivm from 'isolated-vm';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { HARNESS_SOURCE, TAIL_FLUSH_INTERVAL_MS } from '../../workers/isolate-harness.ts';
import { IsolateRunner } from '../../workers/isolate.ts';
import { task, utf8Bytes, valueOf } from './isolate-helpers.ts';

let runner: IsolateRunner;
beforeAll(async () => {
  runner = new IsolateRunner({ sparesPerThread: 1 });
  await runner.ready();
});
afterAll(() => runner.close());

describe('routing and formatting', () => {
  test('log/info/debug go to stdout, warn/error/trace to stderr', async () => {
    const code = 'console.log("l"); console.info("i"); console.debug("d"); console.warn("w"); console.error("e"); console.trace("t");';
    const outcome = await runner.run(task(code));
    expect(outcome.stdout).toBe('l\ni\nd\n');
    expect(outcome.stderr.startsWith('w\ne\nTrace: t\n')).toBe(true);
    expect(outcome.stderr).toContain('snippet.js:1:');
    expect(outcome.stdoutTotalBytes).toBe(6);
  });

  test('strings as they are, other values inspect-like', async () => {
    const code = String.raw`
      console.log("plain", 1, -0, 5n, true, null, undefined, Symbol("s"));
      console.log({ a: 1, "b-c": "x", nested: { deep: { deeper: { deepest: 1 } } }, list: [1, "two", [3]] });
      console.log(new Map([["k", 1]]), new Set([1, 2]), [1, , 3], new Uint8Array([1, 2]));
      console.log(function named() {}, () => {}, class K {}, new Date(0), /re/g, Object.create(null));
      console.log(new (class Point { constructor() { this.x = 1; } })(), { get g() { throw new Error("never run"); } });
      console.log("%s is %d years and %i%%", "Ada", 36.6, 36.6, "extra");
      const err = new TypeError("bad"); console.log(err);
    `;
    const lines = (await runner.run(task(code))).stdout.split('\n');
    expect(lines[0]).toBe('plain 1 -0 5n true null undefined Symbol(s)');
    expect(lines[1]).toBe("{ a: 1, 'b-c': 'x', nested: { deep: { deeper: [Object] } }, list: [ 1, 'two', [ 3 ] ] }");
    expect(lines[2]).toBe("Map(1) { 'k' => 1 } Set(2) { 1, 2 } [ 1, <empty>, 3 ] Uint8Array(2) [ 1, 2 ]");
    expect(lines[3]).toBe('[Function: named] [Function (anonymous)] [Function: K] 1970-01-01T00:00:00.000Z /re/g [Object: null prototype] {}');
    expect(lines[4]).toBe('Point { x: 1 } { g: [Getter] }');
    expect(lines[5]).toBe('Ada is 36.6 years and 36% extra');
    expect(lines[6]).toBe('TypeError: bad');
    expect(lines[7]).toBe("    at snippet.js:8:19");
    expect(lines[8]).toBe("");
  });

  test('cycles, huge arrays and hostile objects format safely', async () => {
    const code = `
      const a = { name: 'a' }; a.self = a; console.log(a);
      console.log(new Array(1000).fill(7));
      console.log(new Proxy({}, { ownKeys() { throw new Error('trap'); } }));
      console.log({ toString() { throw new Error('no'); } });
      "ok"`;
    const outcome = await runner.run(task(code));
    expect(outcome.status).toBe('ok');
    const lines = outcome.stdout.split('\n');
    expect(lines[0]).toBe("{ name: 'a', self: [Circular] }");
    expect(lines[1]).toContain('... 900 more items');
    expect(lines[2]).toBe('[uninspectable value]');
    expect(lines[3]).toBe('{ toString: [Function: toString] }');
  });

  test('count, time and group', async () => {
    const code = 'console.count(); console.count(); console.count("x"); console.group("g"); console.log("in\\nside"); console.groupEnd(); console.log("out");';
    const outcome = await runner.run(task(code));
    expect(outcome.stdout).toBe('default: 1\ndefault: 2\nx: 1\ng\n  in\n  side\nout\n');
  });
});

describe('capping', () => {
  test('the head and the tail are kept, half each, with byte counts', async () => {
    const code = 'for (let i = 0; i < 100; i++) console.log("line " + String(i).padStart(2, "0"));';
    const outcome = await runner.run(task(code, { limits: { maxOutputBytes: 40 } }));
    // 100 lines of 8 bytes; the first 20 bytes and the last 20 bytes are kept.
    expect(outcome.stdoutTotalBytes).toBe(800);
    expect(outcome.stdout).toBe('line 00\nline 01\nline' + ' 97\nline 98\nline 99\n');
    expect(utf8Bytes(outcome.stdout)).toBe(40);
    expect(outcome.stdoutTotalBytes - utf8Bytes(outcome.stdout)).toBe(760);
  });

  test('cuts fall on UTF-8 boundaries, never inside a character', async () => {
    const code = 'console.log("€".repeat(10)); console.error("😀".repeat(10));';
    const outcome = await runner.run(task(code, { limits: { maxOutputBytes: 10 } }));
    expect(outcome.stdoutTotalBytes).toBe(31);
    expect(outcome.stderrTotalBytes).toBe(41);
    // Head: 5 bytes hold one '€' (3 bytes); the tail may use the rest: 7 bytes = '€€\n'.
    expect(outcome.stdout).toBe('€€€\n');
    // Head: 5 bytes hold one '😀' (4 bytes); the tail gets 6 bytes = '😀\n'.
    expect(outcome.stderr).toBe('😀😀\n');
    for (const text of [outcome.stdout, outcome.stderr]) {
      expect(utf8Bytes(text)).toBeLessThanOrEqual(10);
      expect(text).not.toContain('\uFFFD');
    }
  });

  test('output that fits is kept whole', async () => {
    const code = 'console.log("é".repeat(20))';
    const outcome = await runner.run(task(code, { limits: { maxOutputBytes: 41 } }));
    expect(outcome.stdout).toBe(`${'é'.repeat(20)}\n`);
    expect(outcome.stdoutTotalBytes).toBe(41);
  });

  test('a zero cap keeps nothing and still counts', async () => {
    const outcome = await runner.run(task('console.log("abc"); console.warn("de"); 1', { limits: { maxOutputBytes: 0 } }));
    expect(outcome.status).toBe('ok');
    expect(outcome.stdout).toBe('');
    expect(outcome.stdoutTotalBytes).toBe(4);
    expect(outcome.stderrTotalBytes).toBe(3);
  });

  test('a million console.log calls finish within the limits, capped', async () => {
    const code = 'for (let i = 0; i < 1e6; i++) console.log(i); "done"';
    const outcome = await runner.run(task(code, { limits: { timeoutMs: 20_000, cpuTimeMs: 20_000, maxOutputBytes: 1024 } }));
    expect(outcome.status).toBe('ok');
    expect(valueOf(outcome)).toBe('done');
    let expected = 0;
    for (let i = 0; i < 1e6; i++) expected += String(i).length + 1;
    expect(outcome.stdoutTotalBytes).toBe(expected);
    expect(utf8Bytes(outcome.stdout)).toBe(1024);
    expect(outcome.stdout.startsWith('0\n1\n2\n')).toBe(true);
    expect(outcome.stdout.endsWith('999998\n999999\n')).toBe(true);
  });

  test('formatting does not amplify past the cap: deep groups, huge stacks', async () => {
    // 10,000 levels of group, then 20 KB of newlines: indented in full, 400 M characters.
    const groups = await runner.run(task("for (let i = 0; i < 10000; i++) console.group(); console.log('\\n'.repeat(20000)); console.log('x'); 1"));
    expect(groups.status).toBe('ok');
    expect(utf8Bytes(groups.stdout)).toBeLessThanOrEqual(64 * 1024);
    // Indentation stops at 32 levels.
    expect(groups.stdout.endsWith(`${' '.repeat(64)}x\n`)).toBe(true);
    expect(groups.stdout.endsWith(`${' '.repeat(65)}x\n`)).toBe(false);
    expect(groups.heapUsedBytes).toBeLessThan(16 * 1024 * 1024);
    // An error whose stack is megabytes of frame lines.
    const stack = await runner.run(task("const e = new Error('m'); e.stack = 'Error: m\\n' + '    at f (snippet.js:1:1)\\n'.repeat(400000); console.log(e); 1"));
    expect(stack.status).toBe('ok');
    expect(utf8Bytes(stack.stdout)).toBeLessThanOrEqual(64 * 1024);
    expect(stack.stdout.startsWith('Error: m\n    at f (snippet.js:1:1)')).toBe(true);
    expect(stack.heapUsedBytes).toBeLessThan(40 * 1024 * 1024);
  });

  test('a snippet that poisons the builtins cannot break the cap', async () => {
    const code = `
      String.prototype.slice = function () { return 'x'.repeat(100000); };
      String.prototype.charCodeAt = function () { return 0; };
      String.prototype.indexOf = function () { return -1; };
      Array.prototype.push = function () { throw new Error('push'); };
      Object.defineProperty(Object.prototype, 'tail', { get() { return 'y'.repeat(100000); }, set() {} });
      Reflect.apply = function () { throw new Error('apply'); };
      JSON.stringify = () => '"forged"';
      for (let i = 0; i < 1000; i++) console.log('poisoned ' + i);
      ({ real: true })`;
    const outcome = await runner.run(task(code, { limits: { maxOutputBytes: 100 } }));
    expect(outcome.status).toBe('ok');
    expect(valueOf(outcome)).toEqual({ real: true });
    expect(utf8Bytes(outcome.stdout)).toBeLessThanOrEqual(100);
    expect(outcome.stdout.startsWith('poisoned 0\n')).toBe(true);
    expect(outcome.stdout.endsWith('poisoned 999\n')).toBe(true);
  });
});

describe('output around limits', () => {
  test('output printed before a CPU kill is kept as far as it was handed over', async () => {
    const code = 'console.log("x".repeat(20000)); while (true) {}';
    const outcome = await runner.run(task(code, { limits: { cpuTimeMs: 50, timeoutMs: 10_000 } }));
    expect(outcome.error?.limit).toBe('cpu');
    expect(outcome.stdoutTotalBytes).toBe(20001);
    expect(outcome.stdout).toBe(`${'x'.repeat(20000)}\n`);
  });

  test('while the host is held in a synchronous call, the tail is handed over ever less often', async () => {
    // The harness itself, with callbacks that count its handovers. The calls here are asynchronous
    // so that each handover arrives as it is made; 'hostHeld' is what the harness is told.
    const printMs = 12 * TAIL_FLUSH_INTERVAL_MS;
    const code = `const end = Date.now() + ${printMs}; let i = 0; while (Date.now() < end) console.log('line ' + i++ + '.'.repeat(1000)); i`;
    const tails = async (hostHeld: boolean) => {
      const isolate = new ivm.Isolate({ memoryLimit: 64 });
      try {
        const context = await isolate.createContext();
        const handed: string[] = [];
        const flush = new ivm.Callback((stream: number, kind: string, text: string) => {
          if (stream === 0 && kind === 'tail') handed.push(text);
        }, { ignored: true });
        const settle = new ivm.Callback(() => {}, { ignored: true });
        const harness = (await context.evalClosure(HARNESS_SOURCE, [flush, settle], { result: { reference: true } })) as ivm.Reference;
        const outcome = (await harness.apply(undefined, ['script', code, undefined, 64 * 1024, 1024, hostHeld], { result: { copy: true } })) as {
          stdoutTail: string;
        };
        await new Promise((resolve) => setTimeout(resolve, 50)); // the last ignored callbacks
        return { handed, finalTail: outcome.stdoutTail };
      } finally {
        isolate.dispose();
      }
    };
    const free = await tails(false);
    const held = await tails(true);
    // Every 100 ms over 1.2 s against at 0, 100, 300 and 700 ms (then 1.5 s): O(log time), not O(time).
    expect(free.handed.length).toBeGreaterThanOrEqual(9);
    expect(held.handed.length).toBeGreaterThanOrEqual(4);
    expect(held.handed.length).toBeLessThanOrEqual(5);
    // Each handover is a real tail of what was printed so far, and the outcome has the last one.
    for (const tail of held.handed) expect(tail).toMatch(/line \d+\.{1000}\n$/);
    expect(held.finalTail).toMatch(/line \d+\.{1000}\n$/);
    expect(held.finalTail).not.toBe(held.handed.at(-1));
  });

  test('nothing printed after the job ended reaches the next job', async () => {
    const first = await runner.run(task('Promise.resolve().then(() => console.log("late")); "first"'));
    expect(first.stdout).toBe('late\n');
    const second = await runner.run(task('"second"'));
    expect(second.stdout).toBe('');
  });
});
