// What the process taking jobs remembers of code (src/code-cache.ts), as screenCode and
// stripTypesWithin use it: the real screen, the real settings and the real stripping threads.
import { describe, expect, it } from 'vitest';
import { screenAndForm } from '../../src/prepare-thread.ts';
import { PREPARE_THREADS, screenCode, stripTypesWithin } from '../../src/prepare-threads.ts';
import { compilePrescreenOptions } from '../../src/prescreen.ts';
import { ScreenCache, stripCache } from '../../src/code-cache.ts';

const settings = compilePrescreenOptions();
const BLOCKED = 'const F = [].constructor.constructor; F("return process")()';
const WARNED = 'Error.captureStackTrace({})';
const MODULE = 'export default (input) => input * 2';

describe('ScreenCache through screenCode', () => {
  it('answers code screened before exactly as a new screen would', async () => {
    const cache = new ScreenCache(settings);
    const tenant = cache.forTenant('a');
    for (const code of [BLOCKED, WARNED, MODULE, 'syntax error (']) {
      const first = await screenCode(code, settings, tenant);
      expect(tenant.get(code, settings)).toEqual(first);
      expect(await screenCode(code, settings, tenant)).toEqual(screenAndForm(code, settings));
    }
    expect(cache.size).toBe(4);
    expect((await screenCode(BLOCKED, settings, tenant)).report?.blocked).toEqual([
      expect.objectContaining({ rule: 'function_constructor_chain' }),
    ]);
    expect((await screenCode(MODULE, settings, tenant)).form).toBe('module');
  });

  it('keeps each tenant\'s code to itself: a hit, faster than a screen, tells nothing of another tenant', async () => {
    const cache = new ScreenCache(settings);
    const first = await screenCode(BLOCKED, settings, cache.forTenant('a'));
    expect(cache.forTenant('a').get(BLOCKED, settings)).toEqual(first);
    expect(cache.forTenant('b').get(BLOCKED, settings)).toBeUndefined();
    expect(await screenCode(BLOCKED, settings, cache.forTenant('b'))).toEqual(first);
    expect(cache.size).toBe(2);
    const strips = stripCache();
    await stripTypesWithin('const n: number = 1', 2_000, strips.forTenant('a'));
    expect(strips.forTenant('a').get('const n: number = 1')).toMatchObject({ result: { ok: true } });
    expect(strips.forTenant('b').get('const n: number = 1')).toBeUndefined();
  });

  it('serves only the settings it was made for: a request\'s own settings are screened afresh', async () => {
    const cache = new ScreenCache(settings);
    const tenant = cache.forTenant('a');
    expect((await screenCode(WARNED, settings, tenant)).report?.blocked).toEqual([]);
    // The same code under settings that block the rule: the cached "warn only" must not answer it.
    const strict = compilePrescreenOptions({}, undefined, { rules: { capture_stack_trace: 'block' } });
    expect(tenant.get(WARNED, strict)).toBeUndefined();
    const outcome = await screenCode(WARNED, strict, tenant);
    expect(outcome.report?.blocked).toEqual([expect.objectContaining({ rule: 'capture_stack_trace' })]);
    // Nor is that verdict kept for the cache's own settings.
    expect((await screenCode(WARNED, settings, tenant)).report?.blocked).toEqual([]);
  });

  it('hands out copies: a caller editing its findings does not edit the next caller\'s', async () => {
    const cache = new ScreenCache(settings);
    const tenant = cache.forTenant('a');
    const first = await screenCode(WARNED, settings, tenant);
    const warnings = first.report?.warnings ?? [];
    expect(warnings.length).toBeGreaterThan(0);
    warnings[0]!.message = 'edited';
    warnings.push({ rule: 'added', message: 'added' });
    const second = await screenCode(WARNED, settings, tenant);
    expect(second.report?.warnings).toEqual(screenAndForm(WARNED, settings).report?.warnings);
    second.report?.warnings.splice(0);
    expect((await screenCode(WARNED, settings, tenant)).report?.warnings.length).toBeGreaterThan(0);
  });

  it('keeps the forms of unscreened code when made for no settings', async () => {
    const cache = new ScreenCache(undefined);
    const tenant = cache.forTenant('a');
    expect(await screenCode(MODULE, undefined, tenant)).toEqual({ form: 'module' });
    expect(tenant.get(MODULE, undefined)).toEqual({ form: 'module' });
    expect(tenant.get(MODULE, settings)).toBeUndefined();
  });

  it('holds no code over its per-entry bound and no more than its per-tenant total, evicting the least recent', async () => {
    const cache = new ScreenCache(settings, { maxCharsPerTenant: 10_000, maxCodeChars: 1_000 });
    const tenant = cache.forTenant('a');
    const long = `${'1 + '.repeat(300)}1`;
    await screenCode(long, settings, tenant);
    expect(tenant.get(long, settings)).toBeUndefined();
    // Each entry counts its code (~45 characters) and its overhead (256): some 33 fit under 10,000.
    const codes = Array.from({ length: 200 }, (_, index) => `${index} + ${'0 + '.repeat(10)}0`);
    for (const code of codes) await screenCode(code, settings, tenant);
    expect(cache.size).toBeGreaterThan(25);
    expect(cache.size).toBeLessThan(40);
    expect(tenant.get(codes[0]!, settings)).toBeUndefined();
    expect(tenant.get(codes[199]!, settings)).toBeDefined();
  });

  it('gives each tenant its own budget: one tenant\'s new code evicts nothing of another\'s', async () => {
    const cache = new ScreenCache(settings, { maxCharsPerTenant: 10_000, maxTenants: 3 });
    const a = cache.forTenant('a');
    const mine = Array.from({ length: 20 }, (_, index) => `${index} + 1`);
    for (const code of mine) await screenCode(code, settings, a);
    // Tenant b floods its own budget many times over.
    const b = cache.forTenant('b');
    for (let index = 0; index < 300; index++) await screenCode(`${index} * ${'2 * '.repeat(50)}2`, settings, b);
    for (const code of mine) expect(a.get(code, settings)).toBeDefined();
    // Past maxTenants, the tenant least recently used gives way, whole.
    await screenCode('1', settings, cache.forTenant('c'));
    await screenCode('1', settings, cache.forTenant('d'));
    expect(b.get('0 * 2', settings)).toBeUndefined();
    expect(a.get(mine[0]!, settings)).toBeDefined();
  });

  it('keeps what large code\'s screen on a thread found', { timeout: 30_000 }, async () => {
    const cache = new ScreenCache(settings);
    const tenant = cache.forTenant('a');
    const large = `${'globalThis.a = 1;\n'.repeat(1_500)}${WARNED}`;
    expect(large.length).toBeGreaterThan(16 * 1024);
    const pending = screenCode(large, settings, tenant);
    expect(pending).toBeInstanceOf(Promise);
    const outcome = await pending;
    expect(outcome.report?.warnings).toEqual([expect.objectContaining({ rule: 'capture_stack_trace' })]);
    // Known now: answered at once, with no thread.
    const again = screenCode(large, settings, tenant);
    expect(again).not.toBeInstanceOf(Promise);
    expect(again).toEqual(outcome);
  });
});

describe('stripCache through stripTypesWithin', () => {
  it('answers TypeScript stripped before at once, with no thread: its code, or its syntax error', { timeout: 30_000 }, async () => {
    const cache = stripCache();
    const tenant = cache.forTenant('a');
    for (const source of ['const n: number = 20; n * 2 + 2', 'let x: = 1']) {
      const first = stripTypesWithin(source, 2_000, tenant);
      expect(first).toBeInstanceOf(Promise);
      const stripped = await first;
      const again = stripTypesWithin(source, 2_000, tenant);
      expect(again).not.toBeInstanceOf(Promise);
      expect(again).toEqual(stripped);
      expect(tenant.get(source)).toEqual({ result: stripped, ranMs: expect.any(Number) });
    }
    expect(await stripTypesWithin('const n: number = 20; n * 2 + 2', 2_000)).toMatchObject({ ok: true, code: expect.stringContaining('n * 2 + 2') });
    expect(stripTypesWithin('let x: = 1', 2_000, tenant)).toMatchObject({ ok: false, error: { name: 'SyntaxError' } });
  });

  it('answers a job with less time than a remembered strip took by stripping afresh', { timeout: 30_000 }, async () => {
    const cache = stripCache();
    const tenant = cache.forTenant('a');
    // Nested casts: amaro's time grows steeply with their depth (~0.1-0.5 s at this one, here).
    const slow = `let a = ${'(<any>'.repeat(17)}b${')'.repeat(17)}`;
    const generous = await stripTypesWithin(slow, 10_000, tenant);
    expect(generous).toMatchObject({ ok: true });
    const ranMs = tenant.get(slow)?.ranMs ?? 0;
    expect(ranMs).toBeGreaterThan(20);
    // Within what it took: from the cache. Less than that: a fresh strip, which runs out of time.
    expect(stripTypesWithin(slow, Math.ceil(ranMs) + 1, tenant)).toEqual(generous);
    const short = stripTypesWithin(slow, 5, tenant);
    expect(short).toBeInstanceOf(Promise);
    expect(await short).toEqual({ ok: false, overran: true });
  });

  it('does not keep a strip that ran out of time', { timeout: 30_000 }, async () => {
    const cache = stripCache();
    const tenant = cache.forTenant('a');
    // Nested casts: amaro's time grows steeply with their depth (seconds at this depth).
    const bomb = `let a = ${'(<any>'.repeat(24)}b${')'.repeat(24)}`;
    expect(await stripTypesWithin(bomb, 50, tenant)).toEqual({ ok: false, overran: true });
    expect(cache.size).toBe(0);
    const again = stripTypesWithin(bomb, 50, tenant);
    expect(again).toBeInstanceOf(Promise);
    expect(await again).toEqual({ ok: false, overran: true });
  });
});

describe('thread work for a job answered before it started', () => {
  it('is dropped from the threads\' queue, not left to run out', { timeout: 30_000 }, async () => {
    // Every thread busy for its full 2 s bound.
    const bomb = `let a = ${'(<any>'.repeat(24)}b${')'.repeat(24)}`;
    const busy = Array.from({ length: PREPARE_THREADS }, () => stripTypesWithin(bomb, 2_000));
    const controller = new AbortController();
    const queued = stripTypesWithin('const n: number = 1', 2_000, undefined, [undefined, controller.signal]);
    expect(queued).toBeInstanceOf(Promise);
    const start = performance.now();
    controller.abort();
    await expect(queued).rejects.toThrow(/answered before its preparation started/);
    expect(performance.now() - start).toBeLessThan(1_000);
    await expect(Promise.resolve(stripTypesWithin('const m: number = 1', 2_000, undefined, [AbortSignal.abort()]))).rejects.toThrow(
      /answered before its preparation started/,
    );
    expect(await Promise.all(busy)).toEqual(busy.map(() => ({ ok: false, overran: true })));
  });
});
