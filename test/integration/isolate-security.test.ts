// What a snippet can reach and keep, at thread level (in-process, real isolated-vm): the globals
// of a fresh context, nothing shared between jobs, nothing of the host, and spare isolates used
// once each.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { IsolateRunner } from '../../workers/isolate.ts';
import { task, valueOf } from './isolate-helpers.ts';

let runner: IsolateRunner;
beforeAll(async () => {
  runner = new IsolateRunner({ sparesPerThread: 1 });
  await runner.ready();
});
afterAll(() => runner.close());

const HOST_NAMES = [
  'process', 'require', 'module', 'exports', 'global', 'Buffer', 'setImmediate', 'fetch',
  'performance', 'ivm', '_ivm', 'harness', 'flushHost', 'settleHost',
];
const REMOVED = ['WebAssembly', 'FinalizationRegistry', 'WeakRef', 'SharedArrayBuffer', 'Atomics'];

describe('globals', () => {
  test('globals that defeat the limits are absent', async () => {
    const outcome = await runner.run(task(`${JSON.stringify(REMOVED)}.filter((name) => name in globalThis || typeof globalThis[name] !== 'undefined')`));
    expect(valueOf(outcome)).toEqual([]);
  });

  test('ArrayBuffer makes fixed-length buffers as before, and refuses a maxByteLength', async () => {
    const code = `const buffer = new ArrayBuffer(16);
      class Sub extends ArrayBuffer {}
      const sub = new Sub(4);
      let refused = 'made';
      try { new ArrayBuffer(0, { maxByteLength: 64 }); } catch (error) { refused = error.name + ': ' + error.message; }
      let withoutNew = 'made';
      try { ArrayBuffer(8); } catch (error) { withoutNew = error.name; }
      ({
        instances: [buffer instanceof ArrayBuffer, new Uint8Array(2).buffer instanceof ArrayBuffer, sub instanceof Sub, sub instanceof ArrayBuffer],
        sizes: [sub.byteLength, buffer.slice(2).byteLength, buffer.transfer(32).byteLength, new ArrayBuffer(8, {}).byteLength, new ArrayBuffer(8, { maxByteLength: undefined }).resizable],
        identity: [ArrayBuffer.prototype.constructor === ArrayBuffer, ArrayBuffer[Symbol.species] === ArrayBuffer, Object.getPrototypeOf(sub) === Sub.prototype],
        shape: [ArrayBuffer.name, ArrayBuffer.length, Object.getOwnPropertyNames(ArrayBuffer).sort().join(), Object.prototype.toString.call(sub), ArrayBuffer.isView(new DataView(new ArrayBuffer(1)))],
        refused,
        withoutNew,
      })`;
    expect(valueOf(await runner.run(task(code)))).toEqual({
      instances: [true, true, true, true],
      sizes: [4, 14, 32, 8, false],
      identity: [true, true, true],
      shape: ['ArrayBuffer', 1, 'isView,length,name,prototype', '[object ArrayBuffer]', true],
      refused: "TypeError: resizable ArrayBuffers (maxByteLength) are not available in sandpool: their memory is not counted against the job's memory limit",
      withoutNew: 'TypeError',
    });
  });

  test('Intl keeps working for ordinary use, constructors and prototypes as before', async () => {
    const code = `const currency = new Intl.NumberFormat('en', { style: 'currency', currency: 'EUR' });
      const date = Intl.DateTimeFormat('en', { timeZone: 'UTC' });
      class Sorter extends Intl.Collator {}
      const sorter = new Sorter('de');
      let withoutNew = 'made';
      try { Intl.PluralRules('en'); } catch (error) { withoutNew = error.name; }
      ({
        formatted: [currency.format(1234.5), date.format(0), sorter.compare('a', 'b'), new Intl.PluralRules('en').select(1), new Intl.Locale('en').maximize().toString()],
        identity: [sorter instanceof Intl.Collator, sorter instanceof Sorter, currency instanceof Intl.NumberFormat, Object.getPrototypeOf(currency).constructor === Intl.NumberFormat, Object.prototype.toString.call(currency)],
        shape: [Intl.NumberFormat.name, Intl.NumberFormat.length, Intl.DisplayNames.length, Object.getOwnPropertyNames(Intl.NumberFormat).sort().join(), Intl.Locale.prototype.maximize.name],
        withoutNew,
        // Not Intl objects: no budget spent.
        locale: [(1234.5).toLocaleString('de'), 'a'.localeCompare('b'), new Date(0).toLocaleString('en', { timeZone: 'UTC' })],
      })`;
    expect(valueOf(await runner.run(task(code)))).toEqual({
      formatted: ['€1,234.50', '1/1/1970', -1, 'one', 'en-Latn-US'],
      identity: [true, true, true, true, '[object Intl.NumberFormat]'],
      shape: ['NumberFormat', 0, 2, 'length,name,prototype,supportedLocalesOf', 'maximize'],
      withoutNew: 'TypeError',
      locale: ['1.234,5', -1, '1/1/1970, 12:00:00 AM'],
    });
  });

  test('each job may make 1000 Intl objects, toLocaleString not counted', async () => {
    const code = `let made = 0;
      try { for (;;) { new Intl.NumberFormat('en'); made++; } } catch (error) { made += ' then ' + error.name; }
      [made, (1).toLocaleString('en', { style: 'percent' })]`;
    expect(valueOf(await runner.run(task(code)))).toEqual(['1000 then RangeError', '100%']);
    // The next job has a budget of its own.
    expect(valueOf(await runner.run(task(code)))).toEqual(['1000 then RangeError', '100%']);
  });

  test('nothing of the host is on the global', async () => {
    const outcome = await runner.run(task(`${JSON.stringify(HOST_NAMES)}.filter((name) => name in globalThis)`));
    expect(valueOf(outcome)).toEqual([]);
  });

  test('the only non-standard globals are console and input', async () => {
    const code = `Object.getOwnPropertyNames(globalThis).filter((name) => !/^[A-Z]/.test(name))`;
    const names = valueOf(await runner.run(task(code))) as string[];
    const standard = ['globalThis', 'parseFloat', 'parseInt', 'decodeURI', 'decodeURIComponent', 'encodeURI',
      'encodeURIComponent', 'escape', 'unescape', 'eval', 'isFinite', 'isNaN', 'undefined', 'console', 'input',
      'setTimeout', 'setInterval', 'clearTimeout', 'clearInterval', 'queueMicrotask'];
    expect(names.filter((name) => !standard.includes(name))).toEqual([]);
  });

  test('reaching for the host through constructors finds only the isolate', async () => {
    const code = `[
      typeof Function('return this')().process,
      console.log.constructor('return typeof process')(),
      (() => { try { return typeof (async () => {}).constructor('return this')().require; } catch (e) { return e.name; } })(),
    ]`;
    expect(valueOf(await runner.run(task(code)))).toEqual(['undefined', 'undefined', 'undefined']);
  });

  test('the timer functions are made inside the isolate, not bridged from the host', async () => {
    const code = `[setTimeout, setInterval, clearTimeout, clearInterval, queueMicrotask].map((f) => Object.getOwnPropertyNames(f).sort().join())`;
    expect(valueOf(await runner.run(task(code)))).toEqual(Array(5).fill('length,name'));
  });

  test('console functions hold no host references a snippet can walk to', async () => {
    const code = `Object.getOwnPropertyNames(console).map((k) => typeof console[k]).every((t) => t === 'function') &&
      Object.getOwnPropertyNames(console.log).sort().join()`;
    expect(valueOf(await runner.run(task(code)))).toBe('length,name');
  });
});

describe('one job, one isolate', () => {
  test('a global and a poisoned builtin set by one job are absent in the next', async () => {
    const first = await runner.run(task('globalThis.leak = 1; Array.prototype.poisoned = true; Object.freeze(JSON); "set"'));
    expect(first.status).toBe('ok');
    const second = await runner.run(task('[typeof leak, typeof [].poisoned, Object.isFrozen(JSON)]'));
    expect(valueOf(second)).toEqual(['undefined', 'undefined', false]);
  });

  test('a module job and a script job share nothing either', async () => {
    await runner.run(task('globalThis.fromModule = 1; export default 1;', { form: 'module' }));
    const next = await runner.run(task('typeof fromModule'));
    expect(valueOf(next)).toBe('undefined');
  });

  test('a replaced console in one job is the real one in the next', async () => {
    await runner.run(task('console.log = () => {}; delete globalThis.console;'));
    const next = await runner.run(task('console.log("fresh")'));
    expect(next.stdout).toBe('fresh\n');
  });
});

describe('spares', () => {
  test('a ready spare is taken, and refilled after the outcome', async () => {
    const local = new IsolateRunner({ sparesPerThread: 1 });
    try {
      await local.ready();
      expect(local.stats()).toMatchObject({ sparesMade: 1, sparesReady: 1, sparesTaken: 0, inlineMade: 0 });
      const outcome = await local.run(task('1'));
      expect(outcome.status).toBe('ok');
      expect(local.stats()).toMatchObject({ sparesTaken: 1, inlineMade: 0 });
      await local.ready();
      expect(local.stats()).toMatchObject({ sparesMade: 2, sparesReady: 1 });
    } finally {
      local.close();
    }
  });

  test('a job arriving while a spare is being prepared takes that one', async () => {
    const local = new IsolateRunner({ sparesPerThread: 1 });
    try {
      await new Promise((resolve) => setImmediate(resolve)); // the refill has started, not finished
      expect(local.stats().sparesReady).toBe(0);
      const outcome = await local.run(task('"claimed"'));
      expect(valueOf(outcome)).toBe('claimed');
      expect(local.stats()).toMatchObject({ sparesTaken: 1, inlineMade: 0 });
      await local.ready();
      expect(local.stats().sparesReady).toBe(1);
    } finally {
      local.close();
    }
  });

  test('a job with another memory limit makes its isolate inline', async () => {
    const local = new IsolateRunner({ sparesPerThread: 1 });
    try {
      await local.ready();
      const outcome = await local.run(task('1', { limits: { memoryMb: 32 } }));
      expect(outcome.status).toBe('ok');
      expect(local.stats()).toMatchObject({ sparesTaken: 0, inlineMade: 1, sparesReady: 1 });
    } finally {
      local.close();
    }
  });

  test('with no spares every job makes its isolate inline', async () => {
    const local = new IsolateRunner({ sparesPerThread: 0 });
    try {
      await local.run(task('1'));
      await local.run(task('2'));
      expect(local.stats()).toMatchObject({ sparesTaken: 0, sparesMade: 0, inlineMade: 2 });
    } finally {
      local.close();
    }
  });

  test('jobs back to back never reuse an isolate', async () => {
    const local = new IsolateRunner({ sparesPerThread: 2 });
    try {
      await local.ready();
      const outcomes = await Promise.all(
        Array.from({ length: 4 }, () => local.run(task('const seen = globalThis.mark; globalThis.mark = 1; seen === undefined'))),
      );
      expect(outcomes.map(valueOf)).toEqual([true, true, true, true]);
      const stats = local.stats();
      expect(stats.sparesTaken + stats.inlineMade).toBe(4);
      expect(stats.sparesTaken).toBeGreaterThanOrEqual(2);
    } finally {
      local.close();
    }
  });
});
