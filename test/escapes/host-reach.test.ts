// Attacks that try to reach the host from inside the sandbox: Node's globals, constructor chains,
// stack-trace CallSites, eval, Reflect/Proxy, the engine's own promise handling and the thrown-value
// and result channels. Each runs with pre-screening off and must leave the pool serving.
import { expect, test } from 'vitest';
import {
  CPU_BOUND,
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

const UNDEFINED = 'undefined';

// host reach: the Node globals
test('calling process.exit is a ReferenceError, not an exit', async () => {
  const result = await run(pool, { code: 'process.exit(1)' });
  expectStatus(result, 'error');
  expect(result.error?.name).toBe('ReferenceError');
  await expectPoolServes(pool);
});

// host reach: require
test('require of child_process is a ReferenceError', async () => {
  const result = await run(pool, { code: "require('child_process').execSync('id').toString()" });
  expectStatus(result, 'error');
  expect(result.error?.name).toBe('ReferenceError');
  await expectPoolServes(pool);
});

// host reach: every Node global by name
test('no Node global exists inside the sandbox', async () => {
  const result = await run(pool, { code: snippet('node-globals-are-absent') });
  expectStatus(result, 'ok');
  const probes = result.value as Record<string, string>;
  expect(Object.keys(probes).length).toBeGreaterThan(10);
  for (const [name, type] of Object.entries(probes)) expect(type, name).toBe(UNDEFINED);
  await expectPoolServes(pool);
});

// host reach: isolated-vm handles or foreign-realm functions left on the global graph
test('nothing reachable from the global is an isolated-vm handle or a foreign function', async () => {
  const result = await run(pool, { code: snippet('global-scan-finds-no-host-objects') });
  expectStatus(result, 'ok');
  expect(result.value).toEqual([]);
  await expectPoolServes(pool);
});

// host reach: Function('return this')()
test("Function('return this')() is the sandbox's own global", async () => {
  const result = await run(pool, { code: snippet('function-constructor-reaches-only-sandbox-global') });
  expectStatus(result, 'ok');
  expect(result.value).toEqual([true, UNDEFINED, UNDEFINED, UNDEFINED]);
  await expectPoolServes(pool);
});

// host reach: `this` in a sloppy function
test('`this` of a sloppy function is the sandbox global', async () => {
  const result = await run(pool, { code: snippet('sloppy-this-is-sandbox-global') });
  expectStatus(result, 'ok');
  expect(result.value).toEqual([true, UNDEFINED, UNDEFINED]);
  await expectPoolServes(pool);
});

// host reach: eval, direct and indirect
test('eval reaches only the sandbox realm (or is refused outright)', async () => {
  const result = await run(pool, { code: snippet('eval-reaches-only-sandbox-global') });
  // An engine may forbid code generation from strings; then eval is an EvalError, also safe.
  if (result.status === 'error') {
    expect(result.error?.name, summary(result)).toBe('EvalError');
  } else {
    expectStatus(result, 'ok');
    expect(result.value).toEqual([UNDEFINED, UNDEFINED, true]);
  }
  await expectPoolServes(pool);
});

// host reach: Reflect / Proxy / with over the global
test('Reflect and Proxy probes of the global find nothing of the host', async () => {
  const result = await run(pool, { code: snippet('reflect-proxy-probe') });
  expectStatus(result, 'ok');
  expect(result.value).toEqual({ hostNamesOnPrototypes: [], viaWith: UNDEFINED, viaProxy: UNDEFINED, hasProcess: false });
  await expectPoolServes(pool);
});

// host reach: dynamic import() from a classic script
test("dynamic import('fs') from a script fails as the snippet's error", async () => {
  const result = await run(pool, { code: "import('fs').then((fs) => fs.readFileSync('/etc/passwd', 'utf8'))" });
  expectStatus(result, 'error');
  await expectPoolServes(pool);
});

// host reach: Error.prepareStackTrace CallSites (vm2 CVE-2023-29017 style)
test('prepareStackTrace CallSites expose only sandbox frames, whose this/function lead nowhere', async () => {
  const result = await run(pool, { code: snippet('prepare-stack-trace-callsites') });
  expectStatus(result, 'ok');
  const value = result.value as { frames: number; reached: boolean; files: string[] };
  expect(value.reached).toBe(false);
  await expectPoolServes(pool);
});

// host reach: CallSites of errors raised at the host boundary (console with hostile arguments)
test('errors raised at the host boundary carry no host frames or host objects', async () => {
  const result = await run(pool, { code: snippet('prepare-stack-trace-at-host-boundary') });
  expectStatus(result, 'ok');
  expect((result.value as { reached: boolean }).reached).toBe(false);
  await expectPoolServes(pool);
});

// host reach: Error.captureStackTrace on a plain object
test('Error.captureStackTrace records only sandbox frames', async () => {
  const result = await run(pool, { code: 'const holder = {}; Error.captureStackTrace(holder); String(holder.stack)' });
  expectStatus(result, 'ok');
  expect(typeof result.value).toBe('string');
  await expectPoolServes(pool);
});

// host reach: the error stack handed back to the caller
test("a thrown error's stack holds only sandbox frames", async () => {
  const result = await run(pool, { code: "function inner() { throw new Error('boom'); }\ninner();" });
  expectStatus(result, 'error');
  expect(result.error?.name).toBe('Error');
  expect(result.error?.message).toBe('boom');
  expect(result.error?.phase).toBe('runtime');
  await expectPoolServes(pool);
});

// host reach: constructor chain from the global
test("this.constructor.constructor('return process')() finds no process", async () => {
  const result = await run(pool, { code: "this.constructor.constructor('return process')()" });
  expectStatus(result, 'error');
  expect(result.error?.name).toBe('ReferenceError');
  await expectPoolServes(pool);
});

// host reach: constructor chain through AsyncFunction
test('the AsyncFunction constructor chain finds no process', async () => {
  const result = await run(pool, { code: "(async function () {}).constructor('return process')()" });
  expectStatus(result, 'error');
  expect(result.error?.name).toBe('ReferenceError');
  await expectPoolServes(pool);
});

// host reach: constructor chain through GeneratorFunction
test('the GeneratorFunction constructor chain finds no process', async () => {
  const result = await run(pool, { code: "(function* () {}).constructor('return process')().next()" });
  expectStatus(result, 'error');
  expect(result.error?.name).toBe('ReferenceError');
  await expectPoolServes(pool);
});

// host reach: constructor chains of errors thrown at the host boundary and by V8
test('constructor chains of every catchable error end in the sandbox realm', async () => {
  const result = await run(pool, { code: snippet('host-boundary-error-constructor-chain') });
  expectStatus(result, 'ok');
  const value = result.value as { caught: number; reached: boolean };
  expect(value.caught).toBeGreaterThan(4);
  expect(value.reached).toBe(false);
  await expectPoolServes(pool);
});

// host reach: functions the engine hands to Promise#then or builds through Symbol.species
test("the engine's promise handling hands the snippet no host function", async () => {
  const result = await run(pool, { code: snippet('promise-species-and-then-capture') });
  expectStatus(result, 'ok');
  expect((result.value as { reached: boolean }).reached).toBe(false);
  await expectPoolServes(pool);
});

// host reach / exhaustion: a thrown Proxy whose traps spin
test('a thrown Proxy with looping traps costs the job its time, not a thread', async () => {
  const result = await run(pool, { code: snippet('proxy-thrown-with-looping-traps'), limits: CPU_BOUND });
  // Describing the error spins in the trap: the CPU clock should stop it, the wall backstop may.
  expectStatus(result, 'timeout');
  expect(['cpu', 'wall']).toContain(result.error?.limit);
  await expectPoolServes(pool);
});

// host reach: a thrown Proxy whose traps throw more such Proxies
test('a thrown Proxy with throwing traps is a clear error', async () => {
  const result = await run(pool, { code: snippet('proxy-thrown-with-throwing-traps'), limits: CPU_BOUND });
  expectStatus(result, 'error');
  expect(typeof result.error?.name).toBe('string');
  expect(typeof result.error?.message).toBe('string');
  await expectPoolServes(pool);
});

// host reach via the result channel: toJSON that never returns
test('a result whose toJSON loops is a CPU timeout', async () => {
  const result = await run(pool, { code: snippet('hostile-tojson-result'), limits: CPU_BOUND });
  expectStatus(result, 'timeout', 'cpu');
  await expectPoolServes(pool);
});

// host reach via the result channel: a getter that never returns
test('a result whose getter loops is a CPU timeout', async () => {
  const result = await run(pool, { code: snippet('hostile-getter-result'), limits: CPU_BOUND });
  expectStatus(result, 'timeout', 'cpu');
  await expectPoolServes(pool);
});

// host reach via the result channel: valueOf of a Number wrapper that never returns
test('a result whose valueOf loops is a CPU timeout (or copied without calling it)', async () => {
  const result = await run(pool, { code: snippet('hostile-valueof-result'), limits: CPU_BOUND });
  // JSON serialisation calls valueOf (timeout); a structured copy reads the wrapped 1 (ok).
  if (result.status === 'ok') expect(result.value).toBe(1);
  else expectStatus(result, 'timeout', 'cpu');
  await expectPoolServes(pool);
});

// host reach via the result channel: a Proxy result whose traps throw
test('a result that cannot be read is an error in the result phase', async () => {
  const code = "new Proxy({}, { ownKeys() { throw new Error('no keys'); }, get() { throw new Error('no get'); } })";
  const result = await run(pool, { code });
  expectStatus(result, 'error');
  expect(result.error?.phase).toBe('result');
  await expectPoolServes(pool);
});

// host reach via the result channel: cycles and BigInts cannot be copied out
test('a cyclic result is an error in the result phase', async () => {
  const result = await run(pool, { code: 'const node = { name: "loop" }; node.self = node; node' });
  expectStatus(result, 'error');
  expect(result.error?.phase).toBe('result');
  await expectPoolServes(pool);
});

test('a BigInt result is an error in the result phase', async () => {
  const result = await run(pool, { code: '2n ** 70n' });
  expectStatus(result, 'error');
  expect(result.error?.phase).toBe('result');
  await expectPoolServes(pool);
});

// host reach: a __proto__ key in the input must not pollute the sandbox or the host
test('a __proto__ key in the input pollutes neither the sandbox nor the host', async () => {
  const input = JSON.parse('{"__proto__": {"polluted": "yes"}, "plain": 1}') as Record<string, unknown>;
  const result = await run(pool, { code: "[({}).polluted === undefined, input.plain]", input: input as never });
  expectStatus(result, 'ok');
  expect(result.value).toEqual([true, 1]);
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  await expectPoolServes(pool);
});

// host reach: a __proto__ key in the result must not pollute the host that parses it
test('a __proto__ key in the result does not pollute the host', async () => {
  const result = await run(pool, { code: 'JSON.parse(\'{"__proto__": {"polluted": "yes"}, "plain": 1}\')' });
  expectStatus(result, 'ok');
  expect((result.value as { plain: number }).plain).toBe(1);
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  expect(Object.prototype.hasOwnProperty.call(Object.prototype, 'polluted')).toBe(false);
  await expectPoolServes(pool);
});

// host reach: a lazily formatted stack that never returns
test('an error whose stack formatter loops is a clear status', async () => {
  const result = await run(pool, { code: snippet('prepare-stack-trace-loops-on-throw'), limits: CPU_BOUND });
  // Reading error.stack runs the formatter: timeout if the engine reads it, error if it does not.
  expectOneOf(result, ['timeout', 'error']);
  if (result.status === 'error') expect(result.error?.message).toBe('unreadable stack');
  await expectPoolServes(pool);
});

// host reach: a stack that is a hostile object rather than a string
test('an error whose stack is a hostile object is still a clear error', async () => {
  const result = await run(pool, { code: snippet('prepare-stack-trace-returns-hostile-object') });
  expectStatus(result, 'error');
  expect(result.error?.message).toBe('odd stack');
  if (result.error?.stack !== undefined) expect(typeof result.error.stack).toBe('string');
  await expectPoolServes(pool);
});

// host reach: fn.caller from hooks the engine calls (then, toJSON) must not be an engine function
test('functions the engine calls see a null caller, never an engine function', async () => {
  const result = await run(pool, { code: snippet('caller-of-engine-called-hooks') });
  expectStatus(result, 'ok');
  expect(result.value).toEqual(['null', 'null']);
  await expectPoolServes(pool);
});
