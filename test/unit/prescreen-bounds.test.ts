import { describe, expect, it } from 'vitest';
import { compilePrescreenOptions, prescreen } from '../../src/prescreen.ts';
import { findDeepNesting } from '../../src/prescreen-bounds.ts';

// The speed of these rejections is measured in bench/prescreen.ts; here only their outcome.
const defaults = compilePrescreenOptions();

describe('size bound', () => {
  it('rejects a 1 MB snippet without parsing it', () => {
    const report = prescreen(`// ${'x'.repeat(1024 * 1024)}\n1`, defaults);
    expect(report.parsed).toBe(false);
    expect(report.blocked).toEqual([
      expect.objectContaining({ rule: 'prescreen_too_large', message: expect.stringMatching(/at most 262144/) }),
    ]);
  });

  it('rejects a million-token line by size', () => {
    const report = prescreen(`[${'1,'.repeat(1_000_000)}]`, defaults);
    expect(report.blocked.map((finding) => finding.rule)).toEqual(['prescreen_too_large']);
  });

  it('counts UTF-8 bytes, not characters', () => {
    const options = compilePrescreenOptions({ maxBytes: 1000 });
    expect(prescreen(`"${'é'.repeat(400)}"`, options).blocked).toEqual([]);
    expect(prescreen(`"${'é'.repeat(600)}"`, options).blocked.map((finding) => finding.rule)).toEqual(['prescreen_too_large']);
  });
});

describe('line length bound', () => {
  it('is off by default', () => {
    expect(prescreen(`const s = "${'a'.repeat(100_000)}"`, defaults).blocked).toEqual([]);
  });

  it('rejects a long line at its position when configured', () => {
    const options = compilePrescreenOptions({ maxLineLength: 1000 });
    const report = prescreen(`1;\nconst s = "${'a'.repeat(5000)}"`, options);
    expect(report.blocked).toEqual([expect.objectContaining({ rule: 'prescreen_line_too_long', line: 2, column: 1 })]);
  });
});

describe('depth bound', () => {
  it('rejects pathologically deep brackets before parsing, at the bracket that crossed the bound', () => {
    const report = prescreen(`${'['.repeat(100_000)}${']'.repeat(100_000)}`, defaults);
    expect(report.parsed).toBe(false);
    expect(report.blocked).toEqual([expect.objectContaining({ rule: 'prescreen_too_deep', line: 1, column: 257 })]);
  });

  it('accepts nesting up to the bound', () => {
    expect(prescreen(`${'['.repeat(200)}${']'.repeat(200)}`, defaults)).toMatchObject({ parsed: true, blocked: [] });
  });

  it('reports the parser running out of stack as too deep, never as unparseable', () => {
    for (const code of [`${'!'.repeat(100_000)}x`, `a${'+a'.repeat(100_000)}`, `${'-'.repeat(50_000)} x`]) {
      const report = prescreen(code, defaults);
      expect(report.parsed).toBe(false);
      expect(report.blocked.map((finding) => finding.rule)).toEqual(['prescreen_too_deep']);
    }
  });

  it('does not count brackets in strings, comments, regular expressions or template text', () => {
    const opens = '('.repeat(1000);
    const code = [
      `const s = "${opens}";`,
      `const t = '${opens}';`,
      `// ${opens}`,
      `/* ${opens} */`,
      `const u = \`${opens}\`;`,
      ...Array.from({ length: 400 }, () => 'x = /[(]{2}/.test(y);'),
    ].join('\n');
    expect(findDeepNesting(code, 10)).toBeUndefined();
    expect(prescreen(code, defaults)).toMatchObject({ parsed: true, blocked: [] });
  });

  it('counts template substitutions as nesting', () => {
    const nested = `${'`${'.repeat(300)}1${'}`'.repeat(300)}`;
    expect(findDeepNesting(nested, 256)).toBeDefined();
    expect(findDeepNesting('`a${ {b: [1]} }c${ (2) }`', 3)).toBeUndefined();
    expect(findDeepNesting('`a${ {b: [1]} }c`', 2)).toBe(9);
  });

  it('bounds code given to eval like the snippet itself', () => {
    const inner = `${'['.repeat(300)}${']'.repeat(300)}`;
    const report = prescreen(`eval("${inner}")`, defaults);
    expect(report.blocked).toEqual([
      expect.objectContaining({ rule: 'prescreen_too_deep', message: expect.stringMatching(/^in the code given to eval/) }),
    ]);
  });
});

describe('constant folding bound', () => {
  // Each fold's result is bounded before it is built: one join or replaceAll of bounded parts used
  // to ask V8 for a string past its longest (the screen threw, and the job ended internal_error)
  // or for hundreds of MB just under it.
  const a = 'x'.repeat(11_700);
  it.each([
    ['join', `const a = '${a}';\nf((a + a).split('').join(a + a));`],
    ['replaceAll', `const a = '${a}';\nf((a + a).replaceAll('', a + a));`],
  ])('a %s past the bound is left unfolded; the screen answers', (_, code) => {
    expect(prescreen(code, defaults)).toMatchObject({ parsed: true, blocked: [] });
  });

  it('still folds what fits: a name joined from parts is seen', () => {
    const report = prescreen(`const k = ['con', 'struc', 'tor'].join(''); ({})[k][k]('return 1')()`, defaults);
    expect(report.blocked.map((finding) => finding.rule)).toContain('obfuscated_name');
  });
});
