// Attacks on the pool's resources: CPU (sync loops, microtask floods, builtins that termination does
// not interrupt), memory (heap, single huge allocations, off-heap buffers), output and result size,
// and features that would let a snippet block a thread or watch the collector. Each must end in
// the status its limit promises and leave the pool serving.
import { expect, test } from 'vitest';
import {
  CPU_BOUND,
  WALL_BOUND,
  expectEveryRouteMeets,
  expectOneOf,
  expectPoolServes,
  expectStatus,
  type Pool,
  run,
  snippet,
  summary,
  useEscapePool,
} from './harness.ts';

let pool: Pool;
useEscapePool((started) => (pool = started));

const MEMORY_64 = Object.freeze({ memoryMb: 64, timeoutMs: 20_000, cpuTimeMs: 20_000 });
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
/** Builtins that ignore termination are stopped only by the executor's own deadline. */
const SHORT_WALL = Object.freeze({ timeoutMs: 1_000, cpuTimeMs: 1_000 });

// exhaustion: synchronous infinite loop, CPU clock first
test('while (true) {} is a CPU timeout', async () => {
  const result = await run(pool, { code: 'while (true) {}', limits: CPU_BOUND });
  expectStatus(result, 'timeout', 'cpu');
  await expectPoolServes(pool);
});

// exhaustion: synchronous infinite loop, wall clock first
test('for (;;) {} under a short wall limit is a wall timeout', async () => {
  const result = await run(pool, { code: 'for (;;) {}', limits: WALL_BOUND });
  expectStatus(result, 'timeout', 'wall');
  await expectPoolServes(pool);
});

// exhaustion: a loop inside a promise reaction
test('while (true) {} inside a then() is a CPU timeout', async () => {
  const result = await run(pool, { code: 'Promise.resolve().then(() => { while (true) {} })', limits: CPU_BOUND });
  expectStatus(result, 'timeout', 'cpu');
  await expectPoolServes(pool);
});

// exhaustion: the microtask queue never drains
test('a microtask flood is a CPU timeout', async () => {
  const result = await run(pool, { code: snippet('microtask-flood'), limits: CPU_BOUND });
  expectStatus(result, 'timeout', 'cpu');
  await expectPoolServes(pool);
});

// exhaustion: nothing left to run, nothing settles
test('a promise that never settles is a wall timeout', async () => {
  const result = await run(pool, { code: 'new Promise(() => {})', limits: WALL_BOUND });
  expectStatus(result, 'timeout', 'wall');
  await expectPoolServes(pool);
});

// exhaustion: async recursion that never yields to the host
test('async recursion is a CPU timeout', async () => {
  const result = await run(pool, { code: snippet('async-recursion'), limits: CPU_BOUND });
  expectStatus(result, 'timeout', 'cpu');
  await expectPoolServes(pool);
});

// exhaustion: unbounded recursion
test('deep recursion is a RangeError', async () => {
  const result = await run(pool, { code: 'function dive(depth) { return dive(depth + 1) + 1; }\ndive(0);' });
  expectStatus(result, 'error');
  expect(result.error?.name).toBe('RangeError');
  expect(result.error?.phase).toBe('runtime');
  await expectPoolServes(pool);
});

// exhaustion: catching its own stack overflow to recurse again
test('recursing again after each stack overflow is a CPU timeout', async () => {
  const result = await run(pool, { code: snippet('stack-overflow-retry-loop'), limits: CPU_BOUND });
  expectStatus(result, 'timeout', 'cpu');
  await expectPoolServes(pool);
});

// exhaustion: string doubling as ropes reaches V8's string length limit, not the heap
test('doubling a string without reading it is a RangeError', async () => {
  const result = await run(pool, { code: "let text = 'x'; for (;;) text += text;", limits: MEMORY_64 });
  expectStatus(result, 'error');
  expect(result.error?.name).toBe('RangeError');
  await expectPoolServes(pool);
});

// exhaustion: string doubling with every copy flattened and kept
test('doubling and keeping flat strings is memory_limit', async () => {
  const result = await run(pool, { code: snippet('string-doubling-flattened'), limits: MEMORY_64 });
  expectStatus(result, 'memory_limit');
  await expectPoolServes(pool);
});

// exhaustion: one flat 512 MiB string under a 64 MiB heap limit
test('a single half-gigabyte string under a 64 MiB limit is memory_limit', async () => {
  const result = await run(pool, { code: snippet('single-huge-string'), limits: MEMORY_64 });
  expectStatus(result, 'memory_limit');
  await expectPoolServes(pool);
});

// exhaustion: a 1e8-element array (slow, and its fill is not interruptible)
test('new Array(1e8).fill(0) ends in a clear non-ok status', async () => {
  const result = await run(pool, { code: 'new Array(1e8).fill(0).length', limits: { memoryMb: 64, timeoutMs: 2_000, cpuTimeMs: 2_000 } });
  expectOneOf(result, ['memory_limit', 'timeout', 'error']);
  await expectPoolServes(pool);
});

// exhaustion: a Map of strings grown past the heap
test('a Map of strings grown without end is memory_limit', async () => {
  const result = await run(pool, { code: snippet('map-of-strings-fills-heap'), limits: MEMORY_64 });
  expectStatus(result, 'memory_limit');
  await expectPoolServes(pool);
});

// exhaustion: a Set of strings grown past the heap
test('a Set of strings grown without end is memory_limit', async () => {
  const result = await run(pool, { code: snippet('set-of-strings-fills-heap'), limits: MEMORY_64 });
  expectStatus(result, 'memory_limit');
  await expectPoolServes(pool);
});

// exhaustion: an array of objects grown past the heap
test('an array of objects grown without end is memory_limit', async () => {
  const code = 'const rows = []; for (let index = 0; ; index++) rows.push({ index, label: `row-${index}` });';
  const result = await run(pool, { code, limits: MEMORY_64 });
  expectStatus(result, 'memory_limit');
  await expectPoolServes(pool);
});

// exhaustion: JSON.parse of a 60 MB text into a 30-million-element array (240 MB of elements)
test('JSON.parse of a huge text into a huge array is memory_limit', async () => {
  const code = "const text = '[' + '1,'.repeat(3e7) + '1]'; JSON.parse(text).length";
  const result = await run(pool, { code, limits: MEMORY_64 });
  expectStatus(result, 'memory_limit');
  await expectPoolServes(pool);
});

// exhaustion: a sort builtin over four billion claimed elements, deaf to termination
test('sorting a sparse array-like of length 2^32-1 is a timeout', async () => {
  const result = await run(pool, { code: snippet('sparse-array-like-sort'), limits: SHORT_WALL });
  expectStatus(result, 'timeout');
  await expectPoolServes(pool);
});

// exhaustion: an indexOf builtin over 2^53-1 claimed elements, deaf to termination
test('indexOf over an array-like of length 2^53-1 is a timeout', async () => {
  const result = await run(pool, { code: snippet('sparse-array-like-index-of'), limits: SHORT_WALL });
  expectStatus(result, 'timeout');
  await expectPoolServes(pool);
});

// exhaustion: regular-expression catastrophic backtracking
test('catastrophic regex backtracking is a CPU timeout', async () => {
  const result = await run(pool, { code: "/^(a+)+$/.test('a'.repeat(40) + 'b')", limits: CPU_BOUND });
  expectStatus(result, 'timeout', 'cpu');
  await expectPoolServes(pool);
});

// exhaustion: one ArrayBuffer far past the heap limit
test('a 1 GiB ArrayBuffer under a 64 MiB limit is refused', async () => {
  const result = await run(pool, { code: 'new ArrayBuffer(2 ** 30).byteLength', limits: MEMORY_64 });
  // isolated-vm counts array buffers against the limit: a RangeError inside, or the isolate ended.
  expectOneOf(result, ['error', 'memory_limit']);
  if (result.status === 'error') expect(result.error?.name).toBe('RangeError');
  await expectPoolServes(pool);
});

// exhaustion: a resizable ArrayBuffer commits its pages outside the memory isolated-vm counts
test('a resizable ArrayBuffer grown to 1 GiB under a 64 MiB limit is refused', async () => {
  const code = 'const buffer = new ArrayBuffer(0, { maxByteLength: 2 ** 30 }); buffer.resize(2 ** 30); new Uint8Array(buffer).fill(1); buffer.byteLength';
  const result = await run(pool, { code, limits: MEMORY_64 });
  expectStatus(result, 'error');
  expect(result.error?.name).toBe('TypeError');
  expect(result.error?.message).toContain('resizable ArrayBuffers (maxByteLength) are not available');
  await expectPoolServes(pool);
});

// exhaustion: the original ArrayBuffer constructor sought through its prototype, subclasses, Reflect
test('no route to an ArrayBuffer constructor makes a resizable buffer', async () => {
  const result = await run(pool, { code: snippet('resizable-array-buffer-routes'), limits: MEMORY_64 });
  expectEveryRouteMeets(result, 9, 'TypeError');
  await expectPoolServes(pool);
});

// exhaustion: typed arrays kept until something refuses
test('typed arrays kept past the heap limit are refused', async () => {
  const result = await run(pool, { code: snippet('typed-arrays-beyond-heap'), limits: MEMORY_64 });
  expectOneOf(result, ['error', 'memory_limit']);
  if (result.status === 'error') expect(result.error?.name).toBe('RangeError');
  await expectPoolServes(pool);
});

// exhaustion: kept Intl objects hold ICU memory the heap limit does not count, and the executor keeps it
test('keeping 40,000 Intl.DateTimeFormats is a RangeError at the Intl budget', async () => {
  const code = "globalThis.keep = []; for (let i = 0; i < 40000; i++) keep.push(new Intl.DateTimeFormat('en')); keep.length";
  const result = await run(pool, { code, limits: MEMORY_64 });
  expectStatus(result, 'error');
  expect(result.error?.name).toBe('RangeError');
  expect(result.error?.message).toContain('Intl budget exceeded: a job may make at most 1000 Intl objects');
  await expectPoolServes(pool);
});

// exhaustion: the original Intl constructors sought through instances, subclasses, Reflect, Locale methods
test('no route to an Intl constructor makes an object past the Intl budget', async () => {
  const result = await run(pool, { code: snippet('intl-budget-routes'), limits: MEMORY_64 });
  expectEveryRouteMeets(result, 16, 'RangeError');
  await expectPoolServes(pool);
});

// exhaustion: output flood of a million lines
test('a million console.log lines are ok, truncated, and counted exactly', { timeout: 90_000 }, async () => {
  const code = "for (let index = 0; index < 1e6; index++) console.log('line'); 'printed'";
  const maxOutputBytes = 4_096;
  const result = await run(pool, { code, limits: { maxOutputBytes, timeoutMs: 60_000, cpuTimeMs: 60_000 } });
  expectStatus(result, 'ok');
  expect(result.value).toBe('printed');
  expect(result.truncated.stdout).toBe(true);
  expect(result.output.stdout.totalBytes).toBe(5_000_000);
  expect(result.output.stdout.omittedBytes).toBeGreaterThanOrEqual(5_000_000 - maxOutputBytes);
  // Head and tail are kept; a short marker may sit between them.
  expect(result.stdout.startsWith('line\nline\n')).toBe(true);
  expect(result.stdout.endsWith('line\nline\n')).toBe(true);
  expect(Buffer.byteLength(result.stdout)).toBeLessThanOrEqual(maxOutputBytes + 256);
  await expectPoolServes(pool);
});

// exhaustion: one giant console.log
test('one 20 MB console.log is ok, truncated, and counted exactly', async () => {
  const code = "console.log('y'.repeat(20e6)); console.error('e'.repeat(3e6)); 'printed'";
  const result = await run(pool, { code, limits: { maxOutputBytes: 65_536, memoryMb: 128 } });
  expectStatus(result, 'ok');
  expect(result.value).toBe('printed');
  expect(result.truncated.stdout).toBe(true);
  expect(result.truncated.stderr).toBe(true);
  expect(result.output.stdout.totalBytes).toBe(20_000_001);
  expect(result.output.stderr.totalBytes).toBe(3_000_001);
  expect(Buffer.byteLength(result.stdout)).toBeLessThanOrEqual(65_536 + 256);
  expect(Buffer.byteLength(result.stderr)).toBeLessThanOrEqual(65_536 + 256);
  await expectPoolServes(pool);
});

// exhaustion: output cut on character boundaries, never half a surrogate pair
test('an output flood of astral characters is cut on character boundaries', async () => {
  const result = await run(pool, { code: snippet('output-flood-of-astral-characters'), limits: { maxOutputBytes: 1_001 } });
  expectStatus(result, 'ok');
  expect(result.truncated).toEqual({ stdout: true, stderr: true, value: false });
  expect(result.output.stdout.totalBytes).toBe(29 * 1e5);
  expect(result.output.stderr.totalBytes).toBe(31 * 1e5);
  for (const text of [result.stdout, result.stderr]) {
    expect(text).not.toMatch(LONE_SURROGATE);
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(1_001 + 256);
  }
  await expectPoolServes(pool);
});

// exhaustion: a truncated result cut on a character boundary
test('a truncated result of astral characters holds no half surrogate pair', async () => {
  const maxResultBytes = 1_003;
  const result = await run(pool, { code: "'a😀'.repeat(1e5)", limits: { maxResultBytes } });
  expectStatus(result, 'ok');
  expect(result.truncated.value).toBe(true);
  const text = JSON.stringify(result.value ?? null);
  expect(text).not.toMatch(LONE_SURROGATE);
  expect(Buffer.byteLength(text)).toBeLessThanOrEqual(maxResultBytes);
  await expectPoolServes(pool);
});

// exhaustion: a result far past maxResultBytes
test('a 5 MB result under a 64 KiB cap is ok with truncated.value', async () => {
  const maxResultBytes = 65_536;
  const result = await run(pool, { code: "'z'.repeat(5e6)", limits: { maxResultBytes } });
  expectStatus(result, 'ok');
  expect(result.truncated.value, summary(result)).toBe(true);
  const carried = result.value === undefined ? 0 : Buffer.byteLength(JSON.stringify(result.value));
  expect(carried).toBeLessThanOrEqual(maxResultBytes);
  await expectPoolServes(pool);
});

// exhaustion: a result small as text that parses into ~20x its size in the caller's heap
test('an 8 MiB result of 2.7 million empty objects is an error in the result phase', async () => {
  const result = await run(pool, { code: 'new Array(2_700_000).fill({})', limits: { maxResultBytes: 8 * 1024 * 1024 } });
  expectStatus(result, 'error');
  expect(result.error?.phase).toBe('result');
  expect(result.error?.message).toContain('the result holds more than 524288 objects and arrays');
  expect(result.value).toBeUndefined();
  await expectPoolServes(pool);
});

// exhaustion: a large input parsed inside the isolate
test('a 2 MB JSON input is parsed and usable', async () => {
  const input = Array.from({ length: 250_000 }, (_, index) => index);
  const result = await run(pool, { code: 'input.length + input[input.length - 1]', input });
  expectStatus(result, 'ok');
  expect(result.value).toBe(250_000 + 249_999);
  await expectPoolServes(pool);
});

// exhaustion: an input past the operator's size limit never reaches an isolate
test('an input larger than the size limit is rejected', async () => {
  const result = await run(pool, { code: 'input.length', input: 'i'.repeat(5 * 1024 * 1024) });
  expectStatus(result, 'rejected');
  expect(result.rejection?.reasons.length).toBeGreaterThan(0);
  await expectPoolServes(pool);
});

// exhaustion: code past the operator's size limit never reaches an isolate
test('code larger than the size limit is rejected', async () => {
  const result = await run(pool, { code: `/*${'c'.repeat(1024 * 1024)}*/ 1` });
  expectStatus(result, 'rejected');
  await expectPoolServes(pool);
});

// exhaustion: a module's top-level throw crosses to the host as a copy, whatever its size
test('a module that throws a 400 MB message ends error, the message capped, and the next jobs are answered', async () => {
  const result = await run(pool, { code: "throw new Error('y'.repeat(4e8)); export default 1", limits: { timeoutMs: 20_000, cpuTimeMs: 20_000 } });
  expectStatus(result, 'error');
  expect(Buffer.byteLength(result.error?.message ?? '')).toBeLessThanOrEqual(4096);
  await expectPoolServes(pool);
});

// exhaustion: features that block a thread or observe the collector are absent
test('WebAssembly, SharedArrayBuffer, Atomics.wait, WeakRef, FinalizationRegistry and Intl segmenters are absent', async () => {
  const result = await run(pool, { code: snippet('weak-and-shared-memory-are-absent') });
  expectStatus(result, 'ok');
  expect(result.value).toEqual({
    WebAssembly: 'undefined',
    SharedArrayBuffer: 'undefined',
    AtomicsWait: 'undefined',
    WeakRef: 'undefined',
    FinalizationRegistry: 'undefined',
    IntlSegmenter: 'undefined',
    IntlV8BreakIterator: 'undefined',
  });
  await expectPoolServes(pool);
});

// exhaustion: clocks and locale are harmless to read
test('Date, performance and Intl probes are harmless', async () => {
  const result = await run(pool, { code: snippet('date-and-performance-probes') });
  expectStatus(result, 'ok');
  const value = result.value as Record<string, string>;
  expect(value.now).toBe('number');
  expect(value.iso).toBe('string');
  expect(['undefined', 'number']).toContain(value.performance);
  await expectPoolServes(pool);
});
