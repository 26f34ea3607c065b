import { describe, expect, it } from 'vitest';
import { createToolRegistry, EXECUTE_CODE_TOOL, formatToolSpecs } from '../../src/tools.ts';
import { compilePoolOptions } from '../../src/pool-options.ts';

const add = {
  name: 'add',
  description: 'Adds two numbers',
  inputSchema: {
    type: 'object',
    properties: { a: { type: 'number' }, b: { type: 'number' } },
    required: ['a', 'b'],
    additionalProperties: false,
  },
  code: 'export default ({ a, b }) => a + b;',
};

describe('tool registry', () => {
  it('resolves a registered tool to its code when the input matches its schema', () => {
    const registry = createToolRegistry([add]);
    const resolved = registry.resolve({ tool: 'add', input: { a: 1, b: 2 } });
    expect(resolved).toEqual({ ok: true, tool: { code: add.code, language: 'javascript', limits: undefined } });
  });

  it('rejects input that breaks the schema, naming the field', () => {
    const registry = createToolRegistry([add]);
    const resolved = registry.resolve({ tool: 'add', input: { a: 'one', b: 2 } });
    expect(resolved.ok).toBe(false);
    if (resolved.ok) return;
    expect(resolved.reasons).toContainEqual(
      expect.objectContaining({ rule: 'tool_input_invalid', field: 'input.a' }),
    );
  });

  it('rejects an unknown tool', () => {
    const resolved = createToolRegistry([add]).resolve({ tool: 'nope', input: {} });
    expect(resolved).toMatchObject({ ok: false, reasons: [{ rule: 'unknown_tool', field: 'tool' }] });
  });

  it('fails start-up on a bad definition, naming the tool and field', () => {
    expect(() => createToolRegistry([{ ...add, name: '1bad' }])).toThrow(/tools\[0\]\.name/);
    expect(() => createToolRegistry([add, add])).toThrow(/already defined/);
    expect(() => createToolRegistry([{ ...add, name: 'execute_code' }])).toThrow(/already defined/);
    expect(() => createToolRegistry([{ ...add, inputSchema: { type: 'object', bogus: 1 } }])).toThrow(
      /tools\[0\]\.inputSchema/,
    );
    expect(() => createToolRegistry([{ ...add, limits: { memoryMb: 1 } }])).toThrow(
      "tool 'add': tools[0].limits.memoryMb: 1 is below the floor of 8: no job runs with less",
    );
  });

  it('refuses, under ceilingMode reject, a tool whose own limit is above the ceiling: every call would be rejected', () => {
    const slow = { ...add, limits: { timeoutMs: 30_000 } };
    expect(() => compilePoolOptions({ ceilings: { timeoutMs: 2_000 }, ceilingMode: 'reject', tools: [slow] })).toThrow(
      "options.tools: tool 'add': limits.timeoutMs: 30000 is above the ceiling of 2000: every call would be rejected (options.ceilings, or its default, with ceilingMode 'reject')",
    );
    expect(() => compilePoolOptions({ ceilings: { timeoutMs: 2_000 }, ceilingMode: 'reject', tools: createToolRegistry([slow]) })).toThrow(/limits\.timeoutMs: 30000/);
    // Under clamp its calls run at the ceiling, as a request's would.
    expect(() => compilePoolOptions({ ceilings: { timeoutMs: 2_000 }, tools: [slow] })).not.toThrow();
    expect(() => compilePoolOptions({ ceilings: { timeoutMs: 30_000 }, ceilingMode: 'reject', tools: [slow] })).not.toThrow();
  });

  it('lists execute_code first, then registered tools, in both API shapes', () => {
    const specs = createToolRegistry([add]).specs();
    expect(specs.map((s) => s.name)).toEqual([EXECUTE_CODE_TOOL.name, 'add']);
    const openai = formatToolSpecs(specs, 'openai') as { type: string; function: { name: string; parameters: unknown } }[];
    expect(openai[1]).toEqual({ type: 'function', function: { name: 'add', description: add.description, parameters: add.inputSchema } });
  });

  describe('input checks stay linear in the input', () => {
    const tool = (name: string, inputSchema: Record<string, unknown>) => ({ ...add, name, inputSchema });

    it('matches patterns without backtracking, and keeps each pattern apart', () => {
      // With JavaScript's own engine this input holds the check for hours.
      const registry = createToolRegistry([
        tool('slug', { type: 'object', properties: { s: { type: 'string', pattern: '^([a-z0-9]+)*$' } } }),
        tool('headers', { type: 'object', patternProperties: { '^x-': { type: 'number' }, '^y-': { type: 'string' } } }),
      ]);
      expect(registry.resolve({ tool: 'slug', input: { s: `${'a'.repeat(40)}!` } })).toMatchObject({
        ok: false,
        reasons: [{ rule: 'tool_input_invalid', field: 'input.s' }],
      });
      expect(registry.resolve({ tool: 'slug', input: { s: 'abc123' } }).ok).toBe(true);
      expect(registry.resolve({ tool: 'headers', input: { 'x-a': 1, 'y-b': 'two' } }).ok).toBe(true);
      expect(registry.resolve({ tool: 'headers', input: { 'x-a': 'one' } })).toMatchObject({ ok: false, reasons: [{ field: 'input.x-a' }] });
      expect(registry.resolve({ tool: 'headers', input: { 'y-b': 2 } })).toMatchObject({ ok: false, reasons: [{ field: 'input.y-b' }] });
    });

    it('refuses a pattern RE2 cannot match in linear time, naming the tool', () => {
      expect(() => createToolRegistry([tool('look', { type: 'string', pattern: '^(?=a)a+$' })])).toThrow(
        /tools\[0\]\.inputSchema: .*'\^\(\?=a\)a\+\$' is not supported/,
      );
      expect(() => createToolRegistry([tool('back', { type: 'string', pattern: '(a)\\1' })])).toThrow(/not supported/);
    });

    it('allows uniqueItems over scalar items and refuses it where every pair would be compared', () => {
      const tags = createToolRegistry([tool('tags', { type: 'array', items: { type: 'string' }, uniqueItems: true })]);
      expect(tags.resolve({ tool: 'tags', input: ['a', 'b'] }).ok).toBe(true);
      expect(tags.resolve({ tool: 'tags', input: ['a', 'a'] }).ok).toBe(false);
      expect(() =>
        createToolRegistry([tool('rows', { type: 'object', properties: { rows: { type: 'array', items: { type: 'object' }, uniqueItems: true } } })]),
      ).toThrow(/tools\[0\]\.inputSchema\.properties\.rows\.uniqueItems: .*quadratic/);
      expect(() => createToolRegistry([tool('any', { type: 'array', uniqueItems: true })])).toThrow(/uniqueItems/);
    });

    it('refuses $refs that expand past 10,000 schemas per value: a chain using each next level twice doubles per level', () => {
      const chain = (depth: number) => {
        const $defs: Record<string, unknown> = { [`l${depth}`]: { type: 'string' } };
        for (let k = 0; k < depth; k++) $defs[`l${k}`] = { allOf: [{ $ref: `#/$defs/l${k + 1}` }, { $ref: `#/$defs/l${k + 1}` }] };
        return { type: 'array', items: { $ref: '#/$defs/l0' }, $defs };
      };
      expect(createToolRegistry([tool('shallow', chain(8))]).resolve({ tool: 'shallow', input: ['a'] }).ok).toBe(true);
      expect(() => createToolRegistry([tool('deep', chain(28))])).toThrow(
        /^tool 'deep': tools\[0\]\.inputSchema: its \$refs add \d+ schemas to check per value \(each use counting the schema it points to\), more than the 10000 allowed$/,
      );
      // Written out in full, a schema costs what its text does: 2,500 properties, no $ref.
      const properties = Object.fromEntries(Array.from({ length: 2_500 }, (_, i) => [`p${i}`, { type: 'object', properties: { v: { type: 'string' } } }]));
      expect(createToolRegistry([tool('wide', { type: 'object', properties })]).has('wide')).toBe(true);
    });

    it('names the tool and the field of a $ref whose escape is malformed', () => {
      expect(() => createToolRegistry([tool('pct', { type: 'object', properties: { a: { $ref: '#/definitions/100%' } }, definitions: {} })])).toThrow(
        "tool 'pct': tools[0].inputSchema.properties.a.$ref: only a '#/json/pointer' to a schema in the same document is supported",
      );
    });

    it('follows local $refs, and refuses recursion and references it cannot follow', () => {
      const shared = createToolRegistry([
        tool('point', {
          $defs: { coordinate: { type: 'number' } },
          type: 'object',
          properties: { x: { $ref: '#/$defs/coordinate' }, y: { $ref: '#/$defs/coordinate' } },
        }),
      ]);
      expect(shared.resolve({ tool: 'point', input: { x: 1, y: 2 } }).ok).toBe(true);
      expect(shared.resolve({ tool: 'point', input: { x: 1, y: 'two' } }).ok).toBe(false);
      const tree = { $defs: { node: { type: 'object', properties: { children: { type: 'array', items: { $ref: '#/$defs/node' } } } } }, $ref: '#/$defs/node' };
      expect(() => createToolRegistry([tool('tree', tree)])).toThrow(/refers back into itself/);
      expect(() => createToolRegistry([tool('self', { type: 'object', properties: { next: { $ref: '#' } } })])).toThrow(/recursion/);
      expect(() => createToolRegistry([tool('remote', { $ref: 'https://example.com/schema.json' })])).toThrow(/json\/pointer/);
      expect(() => createToolRegistry([tool('anchor', { $defs: { a: { $anchor: 'a', type: 'string' } } })])).toThrow(/\$anchor/);
    });

    it('refuses a schema nested beyond reason, naming the bound rather than running out of stack', () => {
      let deep: Record<string, unknown> = { type: 'string' };
      for (let level = 0; level < 20_000; level++) deep = { type: 'object', properties: { a: deep } };
      expect(() => createToolRegistry([tool('deep', deep)])).toThrow(/tools\[0\]\.inputSchema: nested deeper than 64 schemas/);
    });
  });
});
