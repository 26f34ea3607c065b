import { describe, expect, it } from 'vitest';
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

  it('passes input on key for key, an own "__proto__" key included', () => {
    const data = JSON.parse('{"code":"1","input":{"__proto__":{"a":1},"b":[{"__proto__":2}]}}') as unknown;
    const parsed = parseRequest(data);
    expect(parsed.ok).toBe(true);
    if (parsed.ok) expect(JSON.stringify(parsed.request.input)).toBe('{"__proto__":{"a":1},"b":[{"__proto__":2}]}');
  });

  it('caps what a rejection says: 20 issues at most, each message and field cut short', () => {
    const data: Record<string, unknown> = { code: 7 };
    for (let i = 0; i < 100_000; i++) data[`unknown${i}`] = i;
    for (let i = 0; i < 30; i++) data.limits = { ...(data.limits as object), [`k${i}`.repeat(100)]: 'x' };
    const parsed = parseRequest(data);
    expect(parsed.ok).toBe(false);
    if (parsed.ok) return;
    expect(parsed.issues.length).toBeLessThanOrEqual(20);
    for (const issue of parsed.issues) {
      expect(issue.message.length).toBeLessThanOrEqual(500);
      expect(issue.field.length).toBeLessThanOrEqual(200);
    }
    expect(parsed.issues.some((issue) => issue.message.endsWith('…'))).toBe(true);
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
