// Attacks that try to reach the next job: prototype and builtin pollution, globals, and output that
// keeps coming after the job's result. A fresh isolate per job means nothing of one job is ever
// visible to another, whichever thread runs it.
import { expect, test } from 'vitest';
import { expectOneOf, expectPoolServes, expectStatus, type Pool, run, snippet, useEscapePool } from './harness.ts';

let pool: Pool;
useEscapePool((started) => (pool = started));

const CLEAN_PROBE = {
  polluted: false,
  push: 1,
  toString: true,
  trim: 'x',
  random: true,
  now: true,
  leaked: 'undefined',
  leakedVar: 'undefined',
  leakedFunction: 'undefined',
};

// cross-job: Object.prototype / builtin pollution
test('prototype and builtin pollution in one job is invisible to the jobs after it', async () => {
  const polluter = await run(pool, { code: snippet('prototype-pollution') });
  expectStatus(polluter, 'ok');
  expect(polluter.value).toBe('polluted');
  // Several probes, so every thread of the executor gets asked.
  const probes = await Promise.all([1, 2, 3, 4].map(() => run(pool, { code: snippet('prototype-pollution-probe') })));
  for (const probe of probes) {
    expectStatus(probe, 'ok');
    expect(probe.value).toEqual(CLEAN_PROBE);
  }
  await expectPoolServes(pool);
});

// cross-job: pollution and a probe running side by side
test('a polluting job running alongside another does not reach it', async () => {
  const [polluter, probe] = await Promise.all([
    run(pool, { code: snippet('prototype-pollution') }),
    run(pool, { code: snippet('prototype-pollution-probe') }),
  ]);
  expectStatus(polluter, 'ok');
  expectStatus(probe, 'ok');
  expect(probe.value).toEqual(CLEAN_PROBE);
  await expectPoolServes(pool);
});

// cross-job: globals set by one job
test('globals set by one job are not defined in the next', async () => {
  const setter = await run(pool, { code: "globalThis.secret = 'left behind'; var alsoSecret = 1; 'set'" });
  expectStatus(setter, 'ok');
  const probes = await Promise.all([1, 2, 3].map(() => run(pool, { code: '[typeof secret, typeof alsoSecret]' })));
  for (const probe of probes) {
    expectStatus(probe, 'ok');
    expect(probe.value).toEqual(['undefined', 'undefined']);
  }
  await expectPoolServes(pool);
});

// cross-job: the serialiser of one job replaced, the next job's result must be intact
test("a job that replaces JSON.stringify cannot corrupt another job's result", async () => {
  const hijacker = await run(pool, { code: snippet('result-channel-hijack') });
  // Its own result: the engine kept its own serialiser (ok), or the broken one showed (error).
  expectOneOf(hijacker, ['ok', 'error']);
  if (hijacker.status === 'ok') expect(hijacker.value).toEqual({ answer: 42 });
  else expect(hijacker.error?.phase).toBe('result');
  const next = await run(pool, { code: '({ answer: JSON.parse(JSON.stringify({ n: 41 })).n + 1 })' });
  expectStatus(next, 'ok');
  expect(next.value).toEqual({ answer: 42 });
  await expectPoolServes(pool);
});

// cross-job: output after the job "ended"
test('output printed after a job produced its result never reaches the next job', async () => {
  const early = await run(pool, { code: snippet('prints-after-result') });
  expectStatus(early, 'ok');
  expect(early.value).toBe('done');
  // The late lines belong to the first job or to nobody.
  const followers = await Promise.all([1, 2, 3].map((n) => run(pool, { code: `console.log('follower ${n}'); ${n}` })));
  followers.forEach((follower, index) => {
    expectStatus(follower, 'ok');
    expect(follower.stdout).toBe(`follower ${index + 1}\n`);
    expect(follower.stderr).toBe('');
  });
  await expectPoolServes(pool);
});
