import { describe, expect, it } from 'vitest';
import { createToolRegistry, EXECUTE_CODE_TOOL, formatToolSpecs } from '../../src/tools.ts';

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
  });

  it('lists execute_code first, then registered tools, in both API shapes', () => {
    const specs = createToolRegistry([add]).specs();
    expect(specs.map((s) => s.name)).toEqual([EXECUTE_CODE_TOOL.name, 'add']);
    const openai = formatToolSpecs(specs, 'openai') as { type: string; function: { name: string; parameters: unknown } }[];
    expect(openai[1]).toEqual({ type: 'function', function: { name: 'add', description: add.description, parameters: add.inputSchema } });
  });
});
