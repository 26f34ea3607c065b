import { describe, expect, it } from 'vitest';
import { detectCodeForm, guessCodeForm } from '../../src/code-form.ts';
import { MAX_TYPESCRIPT_NESTING, stripTypes } from '../../src/typescript.ts';

describe('detectCodeForm', () => {
  it.each([
    ['export default function (input) { return input }', 'module'],
    ['export default 42', 'module'],
    ['const answer = 1;\nexport default async (input) => answer', 'module'],
    ['const value = await Promise.resolve(2);\nexport default value', 'module'],
    ['const f = () => 1;\nexport { f as default }', 'module'],
    ['class A {}\nexport default class extends A {}', 'module'],
    // Parses as neither, and a line starts like a module's: compiled as the module it was meant to be.
    ['export default {', 'module'],
    ['export default 1;\nlet let = 2;', 'module'],
  ])('module: %s', (code, form) => {
    expect(detectCodeForm(code)).toBe(form);
  });

  it.each([
    ['1 + 1'],
    ['const exported = 1; exported'],
    ['// export default nothing, only a comment\n1'],
    ["'export default is only a string'"],
    ['export const named = 1'],
    ['const text = "export default";\nlet let = 2;'],
    ['with (Math) { PI }'],
    [''],
  ])('script: %s', (code) => {
    expect(detectCodeForm(code)).toBe('script');
  });
});

describe('stripTypes', () => {
  it('erases types and keeps every position', () => {
    const source = 'const total: number = 1;\ninterface Shape { size: number }\nexport default (s: Shape): number => s.size + total';
    const result = stripTypes(source);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.code).not.toContain(': number');
    expect(result.code.length).toBe(source.length);
    expect(result.code.split('\n')[2]).toContain('=> s.size + total');
  });

  it('rewrites what stripping cannot erase (enum, parameter properties)', () => {
    const result = stripTypes('enum Color { Red, Green }\nclass P { constructor(public x: number) {} }\n[Color.Green, new P(3).x]');
    expect(result.ok).toBe(true);
    if (result.ok) expect(result.code).not.toContain('enum');
  });

  it('reports a syntax error with line and 1-based column', () => {
    const result = stripTypes('const a = 1;\nconst b: = 2;');
    expect(result).toMatchObject({ ok: false, error: { name: 'SyntaxError', line: 2, column: 10 } });
    if (!result.ok) expect(result.error.message).toMatch(/line 2, column 10/);
  });

  it('refuses bracket nesting deeper than the limit without calling the parser', () => {
    const depth = MAX_TYPESCRIPT_NESTING + 1;
    const result = stripTypes(`${'('.repeat(depth)}1${')'.repeat(depth)}`);
    expect(result).toMatchObject({ ok: false, error: { name: 'SyntaxError' } });
  });

  it('survives input that overflows the parser, and keeps working afterwards', () => {
    for (const hostile of ['!'.repeat(50_000) + 'x', `let x: ${'A<'.repeat(5_000)}B${'>'.repeat(5_000)} = 1`]) {
      expect(stripTypes(hostile).ok).toBe(false);
      expect(stripTypes('const ok: string = "yes"; ok')).toEqual({ ok: true, code: 'const ok         = "yes"; ok' });
    }
  });
});

describe('guessCodeForm (code too slow to parse: text only)', () => {
  it.each([
    ['export default 1;\nlet a, b;', 'module'],
    ['const f = 1;\n  export default f', 'module'],
    ['const f = 1; export { f as default };', 'module'],
    ['export { f as default, g }', 'module'],
    ['export const f = 1;', 'script'],
    ['const exported = "export default"; exported', 'script'],
    ['1 + 1', 'script'],
  ] as const)('%j is a %s', (code, form) => {
    expect(guessCodeForm(code)).toBe(form);
  });
});
