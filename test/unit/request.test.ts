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
