import { describe, expect, it } from 'vitest';
import { runInNewContext } from 'node:vm';
import { z } from 'zod';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { parseRequest, requestJsonSchema } from '../../src/request.ts';

describe('parseRequest', () => {
  it('applies defaults to a minimal code request', () => {
    const parsed = parseRequest({ code: '1 + 1' });
    expect(parsed).toEqual({ ok: true, request: { code: '1 + 1', language: 'javascript', tenantId: 'default' } });
  });

  it('names every bad field of malformed data straight from a producer', () => {
    const parsed = parseRequest({ code: 42, tenantId: 'no spaces allowed', limits: { timeoutMs: -1, bogus: 1 } });
    expect(parsed.ok).toBe(false);
    if (parsed.ok) return;
    const fields = parsed.issues.map((issue) => issue.field);
    expect(fields).toEqual(expect.arrayContaining(['code', 'tenantId', 'limits.timeoutMs', 'limits']));
  });

  it('requires exactly one of code and tool', () => {
    expect(parseRequest({})).toMatchObject({ ok: false, issues: [{ field: 'code' }] });
    expect(parseRequest({ code: '1', tool: 'x' })).toMatchObject({ ok: false, issues: [{ field: 'tool' }] });
    expect(parseRequest({ tool: 'add', input: { a: 1 } }).ok).toBe(true);
  });

  it('refuses non-JSON input and unknown top-level fields', () => {
    expect(parseRequest({ code: '1', input: { f: () => 1 } }).ok).toBe(false);
    expect(parseRequest({ code: '1', input: Number.NaN }).ok).toBe(false);
    expect(parseRequest({ code: '1', extra: true })).toMatchObject({ ok: false });
  });

  it('accepts as input exactly what z.json() accepts, and names the path of what it refuses', () => {
    class Point {
      x = 1;
    }
    const sparse: unknown[] = [1];
    sparse[2] = 3;
    const withSymbol = { a: 1, [Symbol('s')]: 2 };
    const hiddenSymbol = Object.defineProperty({ a: 1 }, Symbol('h'), { value: 2, enumerable: false });
    const nullProto = Object.assign(Object.create(null) as object, { a: [1, 'b', null, true, { c: -0 }] });
    const values: unknown[] = [
      null, true, 'text', 0, -1.5, 1e308, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY,
      () => 1, Symbol('x'), 10n, [], {}, [1, [2, [3]]], { a: { b: [{ c: 'd' }] } }, nullProto,
      sparse, [1, undefined], { a: undefined }, new Date(0), new Map(), new Point(), /re/, new Uint8Array(2),
      withSymbol, hiddenSymbol, { nested: { bad: [0, Number.NaN] } }, JSON.parse('{"a":1e400}'),
      // Plain objects of another realm, and under a prototype with no constructor.
      runInNewContext('({ a: [1, { b: 2 }] })'), Object.create(Object.create(null)),
    ];
    for (const value of values) {
      const expected = z.json().safeParse(value).success;
      const parsed = parseRequest({ code: '1', input: value });
      expect({ value, ok: parsed.ok }).toEqual({ value, ok: expected });
    }
    expect(parseRequest({ code: '1', input: { nested: { bad: [0, Number.NaN] } } })).toEqual({
      ok: false,
      issues: [{ field: 'input.nested.bad.1', message: 'expected a finite number, got NaN' }],
    });
    expect(parseRequest({ code: '1', input: [new Point()] })).toMatchObject({ ok: false, issues: [{ field: 'input.0' }] });
    expect(parseRequest({ code: '1', input: { f: () => 1 } })).toMatchObject({ ok: false, issues: [{ field: 'input.f', message: 'expected JSON data, got function' }] });
  });

  it('refuses input nested deeper than 1000 levels, or cyclic, and names it with the other bad fields', () => {
    const nest = (levels: number): unknown => {
      let value: unknown = 0;
      for (let level = 0; level < levels; level++) value = { a: [value] };
      return value;
    };
    // Each level is two containers, an object and an array: 1000 nested containers pass, 1001 do not.
    expect(parseRequest({ code: '1', input: nest(500) }).ok).toBe(true);
    expect(parseRequest({ code: '1', input: [nest(500)] })).toMatchObject({ ok: false, issues: [{ message: 'nested deeper than 1000 levels (or cyclic)' }] });
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    const parsed = parseRequest({ code: 7, input: cyclic });
    expect(parsed.ok).toBe(false);
    if (parsed.ok) return;
    expect(parsed.issues.map((issue) => issue.field)).toEqual(['input', 'code']);
  });

  it('passes input on key for key, an own "__proto__" key included', () => {
    const data = JSON.parse('{"code":"1","input":{"__proto__":{"a":1},"b":[{"__proto__":2}]}}') as unknown;
    const parsed = parseRequest(data);
    expect(parsed.ok).toBe(true);
    if (parsed.ok) expect(JSON.stringify(parsed.request.input)).toBe('{"__proto__":{"a":1},"b":[{"__proto__":2}]}');
  });

  it('caps what a rejection says: 20 issues at most, each message and field cut short', () => {
    const data: Record<string, unknown> = { code: 7 };
    for (let i = 0; i < 20; i++) data[`unknown${i}`.repeat(100)] = i;
    // Thirty labels, each one wrong twice over: sixty issues.
    data.labels = Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`k${i}`.repeat(100), 'v'.repeat(300)]));
    const parsed = parseRequest(data);
    expect(parsed.ok).toBe(false);
    if (parsed.ok) return;
    expect(parsed.issues).toHaveLength(20);
    for (const issue of parsed.issues) {
      expect(issue.message.length).toBeLessThanOrEqual(500);
      expect(issue.field.length).toBeLessThanOrEqual(200);
    }
    expect(parsed.issues.some((issue) => issue.field.endsWith('…'))).toBe(true);
    // zod names every unknown key in one message: cut.
    const unknown = parseRequest(Object.fromEntries(Object.entries(data).filter(([key]) => key !== 'labels')));
    expect(unknown.ok).toBe(false);
    if (unknown.ok) return;
    const listed = unknown.issues.find((issue) => issue.message.includes('Unrecognized keys'));
    expect(listed?.message).toHaveLength(500);
    expect(listed?.message.endsWith('…')).toBe(true);
  });

  it('rejects non-objects of any kind without throwing', () => {
    for (const data of [null, undefined, 'code', 7, [], true]) {
      expect(parseRequest(data)).toMatchObject({ ok: false, issues: [{ field: '(root)' }] });
    }
  });

  it('publishes a JSON Schema that names the request fields', () => {
    const schema = requestJsonSchema() as { properties: Record<string, unknown>; additionalProperties: boolean };
    expect(Object.keys(schema.properties)).toEqual(
      expect.arrayContaining(['code', 'tool', 'input', 'language', 'limits', 'tenantId', 'idempotencyKey', 'labels']),
    );
    expect(schema.additionalProperties).toBe(false);
  });
});

describe('parseRequest on what a caller or producer can make of a request', () => {
  it('reads each field once: a getter cannot answer validation one thing and the run another', () => {
    let reads = 0;
    const data = {
      code: 'input',
      get input() {
        reads++;
        return reads === 1 ? 1 : () => 0;
      },
    };
    const parsed = parseRequest(data);
    expect(parsed).toMatchObject({ ok: true, request: { input: 1 } });
    expect(reads).toBe(1);
  });

  it('counts labels and rule overrides before walking them', () => {
    // Past the count nothing is read: a walk would have hit the throwing getter.
    const labels: Record<string, string> = Object.fromEntries(Array.from({ length: 32 }, (_, i) => [`l${i}`, 'v']));
    Object.defineProperty(labels, 'trap', { enumerable: true, get: () => { throw new Error('walked'); } });
    expect(parseRequest({ code: '1', labels })).toEqual({ ok: false, issues: [{ field: 'labels', message: 'at most 32 labels' }] });
    const rules = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`rule_${i}`, 'off']));
    expect(parseRequest({ code: '1', prescreen: { rules } })).toEqual({
      ok: false,
      issues: [{ field: 'prescreen.rules', message: 'at most 64 rule overrides' }],
    });
    // Unknown fields too: zod would list every one of them.
    const many = (count: number) => Object.fromEntries(Array.from({ length: count }, (_, i) => [`f${i}`, 0]));
    expect(parseRequest({ code: '1', ...many(31) })).toMatchObject({ ok: false, issues: [{ field: '(root)', message: expect.stringContaining('Unrecognized keys') }] });
    expect(parseRequest({ code: '1', ...many(32) })).toEqual({ ok: false, issues: [{ field: '(root)', message: 'at most 32 fields (a request has 10)' }] });
    expect(parseRequest({ code: '1', limits: many(33) })).toEqual({ ok: false, issues: [{ field: 'limits', message: 'at most 32 fields (limits has 5)' }] });
    expect(parseRequest({ code: '1', prescreen: many(33) })).toEqual({ ok: false, issues: [{ field: 'prescreen', message: 'at most 32 fields (prescreen has 2)' }] });
  });

  it('publishes in its JSON Schema what it checks: code or tool, and the counts', () => {
    const ajv = new Ajv2020({ strict: false });
    const validate = ajv.compile(requestJsonSchema());
    const labels = Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`l${i}`, 'v']));
    for (const request of [{}, { code: '1', tool: 'add' }, { code: '1', labels }]) {
      expect(validate(request), JSON.stringify(request)).toBe(false);
      expect(parseRequest(request).ok).toBe(false);
    }
    expect(validate({ code: '1' })).toBe(true);
    expect(validate({ tool: 'add', input: { a: 1 } })).toBe(true);
  });
});
