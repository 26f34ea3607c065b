import { describe, expect, it } from 'vitest';
import { compilePrescreenOptions, prescreen, type PrescreenReport } from '../../src/prescreen.ts';

const defaults = compilePrescreenOptions();

function screen(code: string, options = defaults): PrescreenReport {
  return prescreen(code, options);
}

/** Every finding as `rule@line:column`, blocks and warnings apart. */
function hits(code: string): { blocked: string[]; warnings: string[] } {
  const report = screen(code);
  const show = (f: { rule: string; line?: number; column?: number }) => `${f.rule}@${f.line}:${f.column}`;
  return { blocked: report.blocked.map(show), warnings: report.warnings.map(show) };
}

function expectClean(code: string): void {
  expect(screen(code), code).toMatchObject({ blocked: [], warnings: [], parsed: true });
}

describe('parsing', () => {
  it('screens scripts and reports modules with or without a default export', () => {
    expect(screen('1 + 1')).toMatchObject({ parsed: true, sourceType: 'script' });
    expect(screen('export default (input) => input')).toMatchObject({
      parsed: true,
      sourceType: 'module',
      hasDefaultExport: true,
    });
    expect(screen('const x = 1;\nexport { x as default }')).toMatchObject({ sourceType: 'module', hasDefaultExport: true });
    expect(screen('export const x = 1')).toMatchObject({ sourceType: 'module', hasDefaultExport: false });
    expect(screen('const v = await Promise.resolve(1); export default v')).toMatchObject({ sourceType: 'module' });
  });

  it('accepts top-level await and return in scripts, which the engine may wrap', () => {
    expect(screen('const r = await fetchIt(); r')).toMatchObject({ parsed: true, sourceType: 'script' });
    expect(screen('return 42')).toMatchObject({ parsed: true });
  });

  it('leaves unparseable code to the engine: no findings, parsed false', () => {
    expect(screen('function (')).toEqual({ blocked: [], warnings: [], parsed: false });
    expect(screen('this.constructor.constructor(')).toEqual({ blocked: [], warnings: [], parsed: false });
  });

  it('does nothing when the operator turned it off', () => {
    const off = compilePrescreenOptions({ mode: 'off' });
    expect(prescreen('this.constructor.constructor("return 1")()', off)).toEqual({ blocked: [], warnings: [], parsed: false });
  });

  it('ignores strings, comments and properties that merely mention dangerous names', () => {
    expectClean(`
      const fs = { readFileSync() {} };   // a variable named fs
      const note = "process.exit() and require('fs') and eval";
      /* this.constructor.constructor('return process')() */
      const obj = { process: 1, require: 2, eval: 3 };
      obj.process + obj.require;
      class Point { constructor(x) { this.x = x } }
      new Point(1).constructor.name;
      const s = \`template mentions process and \${note}\`;
    `);
  });

  it('reports line and column 1-based, after CRLF line breaks too', () => {
    expect(hits('\r\n\r\n  x.constructor.constructor').blocked).toEqual(['function_constructor_chain@3:17']);
  });
});

describe('function_constructor_chain', () => {
  it('blocks .constructor.constructor with its position', () => {
    const report = screen('const f = 1;\nthis.constructor.constructor("return process")()');
    expect(report.blocked).toEqual([
      expect.objectContaining({ rule: 'function_constructor_chain', line: 2, column: 18 }),
    ]);
    expect(report.blocked[0]?.message).toMatch(/Function constructor/);
  });

  it('blocks the constructor of function, arrow, async and generator literals', () => {
    expect(hits('(function(){}).constructor').blocked).toEqual(['function_constructor_chain@1:16']);
    expect(hits('(() => 1).constructor').blocked).toEqual(['function_constructor_chain@1:11']);
    expect(hits('(async () => {}).constructor').blocked).toEqual(['function_constructor_chain@1:18']);
    expect(hits('(function*(){}).constructor').blocked).toEqual(['function_constructor_chain@1:17']);
    expect(hits('Object.getPrototypeOf(async function(){}).constructor').blocked).toHaveLength(1);
    expect(hits('[].filter.constructor("return 1")()').blocked).toEqual(['function_constructor_chain@1:11']);
    expect(hits('Math.max.constructor').blocked).toEqual(['function_constructor_chain@1:10']);
    expect(hits('function f() {}\nf.constructor').blocked).toEqual(['function_constructor_chain@2:3']);
    expect(hits('const g = async () => {};\nconst F = g.constructor').blocked).toEqual(['function_constructor_chain@2:13']);
  });

  it('blocks computed and destructured forms', () => {
    expect(hits('x["constructor"]["constructor"]').blocked).toEqual(['function_constructor_chain@1:18']);
    expect(hits('const { constructor: F } = () => 1').blocked).toEqual(['function_constructor_chain@1:9']);
    expect(hits('var c = "constructor";\n[][c][c]("return this")()').blocked).toEqual(['function_constructor_chain@2:7']);
    expect(hits('let c = "constructor"; c = "x";\n[][c][c]').blocked).toEqual([]);
    expect(hits('Reflect.get(Reflect.get(f, "constructor"), "constructor")').blocked).toEqual(['function_constructor_chain@1:1']);
    expect(hits('Reflect.get(() => 1, "constructor")').blocked).toEqual(['function_constructor_chain@1:1']);
    expectClean('Reflect.get(obj, "constructor")');
    expect(hits('obj.constructor("return this")').blocked).toEqual(['function_constructor_chain@1:1']);
    // The constructor of whatever is destructured, destructured again: Function, from any object.
    expect(hits('const { constructor: { constructor: F } } = {}').blocked).toEqual(['function_constructor_chain@1:9']);
    expect(hits('(({ constructor: { constructor: F } }) => F)({})').blocked).toEqual(['function_constructor_chain@1:5']);
    expect(hits("const { '\\x63onstructor': { 'constructor': F } } = {}").blocked).toContain('function_constructor_chain@1:9');
    expectClean('const { constructor: { name } } = value');
  });

  it('does not flag ordinary uses of .constructor', () => {
    expectClean('if (value.constructor === Object) {}');
    expectClean('class A { clone() { return new this.constructor(this.x) } }');
    expectClean('function F() {}\nF.prototype.constructor = F');
    expectClean('Child.prototype = Object.create(Parent.prototype); Child.prototype.constructor = Child');
    expectClean('const name = err.constructor.name');
    expectClean('const C = x.constructor; new C(1)');
    // A builtin's data is no function: its constructor is Number's, String's.
    expectClean('const kind = Number.MAX_SAFE_INTEGER.constructor.name');
    expectClean("const kind = ''.length.constructor.name");
    // Its methods are: their constructor is Function.
    expect(hits('Math.max.constructor').blocked).toEqual(['function_constructor_chain@1:10']);
    expect(hits("''.at.constructor").blocked).toEqual(['function_constructor_chain@1:7']);
    expect(hits('Math[k].constructor').blocked).toEqual(['function_constructor_chain@1:9']);
  });
});

describe('obfuscated_name', () => {
  it('blocks a sensitive key spelt with escapes in an object literal, brackets or not', () => {
    expect(hits("const o = { '\\x63onstructor': C }").blocked).toEqual(['obfuscated_name@1:13']);
    expectClean("const o = { 'constructor': C }");
  });

  it('blocks sensitive names assembled from pieces, char codes, escapes, base64 and reversals', () => {
    expect(hits('f["constr" + "uctor"]').blocked).toEqual(['obfuscated_name@1:3']);
    expect(hits('f[String.fromCharCode(95,95,112,114,111,116,111,95,95)] = 1').blocked).toEqual(['obfuscated_name@1:3']);
    expect(hits('f["\\x63onstructor"]').blocked).toEqual(['obfuscated_name@1:3']);
    expect(hits('f[atob("Y29uc3RydWN0b3I=")]').blocked).toEqual(['obfuscated_name@1:3']);
    expect(hits('f["rotcurtsnoc".split("").reverse().join("")]').blocked).toEqual(['obfuscated_name@1:3']);
    expect(hits('const k = `con${"struct"}or`;\nf[k]').blocked).toEqual(['obfuscated_name@2:3']);
    // Spread parts fold too.
    expect(hits('f[String.fromCharCode(...[99, 111, 110, 115, 116, 114, 117, 99, 116, 111, 114])]').blocked).toEqual(['obfuscated_name@1:3']);
    expect(hits("f[[...'rotcurtsnoc'].reverse().join('')]").blocked).toEqual(['obfuscated_name@1:3']);
    // Where nothing uses it as a name, a string that happens to spell one is ordinary.
    expectClean("const table = 'Process'.toLowerCase(); const a = 'proto', b = 'type'; const t = a + b, m = ['module'].join(''), e = 'evaluation'.slice(0, 4)");
    expect(hits('globalThis["pro" + "cess"]').blocked).toEqual(['obfuscated_name@1:12']);
    expect(hits('Reflect.get(f, "con" + "structor")').blocked).toEqual(['obfuscated_name@1:16']);
  });

  it('does not flag plain keys or assembled names that are not sensitive', () => {
    expectClean('obj["constructor"]; obj["on" + "click"]; obj[String.fromCharCode(65)]; obj[key + 1]');
    expectClean('const label = "pro" + "cessing"; console.log("con" + "structor is " + label)');
  });
});

describe('escaped_identifier', () => {
  it('blocks ASCII letters written as unicode escapes', () => {
    expect(hits('\\u0065val("1")').blocked).toEqual(['escaped_identifier@1:1']);
    expect(hits('x.\\u{63}onstructor').blocked).toEqual(['escaped_identifier@1:3']);
  });

  it('does not flag escapes of non-ASCII letters or escapes inside strings', () => {
    expectClean('const caf\\u00e9 = 1; const s = "\\u0065"');
  });
});

describe('stack_trace_tampering and capture_stack_trace', () => {
  it('blocks installing prepareStackTrace, by assignment, defineProperty or object literal', () => {
    expect(hits('Error.prepareStackTrace = (e, s) => s').blocked).toEqual(['stack_trace_tampering@1:1']);
    expect(hits('Object.defineProperty(Error, "prepareStackTrace", { value: f })').blocked).toEqual([
      'stack_trace_tampering@1:30',
    ]);
    expect(hits('Object.assign(Error, { prepareStackTrace: f })').blocked).toEqual(['stack_trace_tampering@1:24']);
  });

  it.each([
    ['a destructuring assignment', '[Error.prepareStackTrace] = [f]'],
    ['an object pattern', '({ a: Error.prepareStackTrace } = { a: f })'],
    ['a for-of target', 'for (Error.prepareStackTrace of [f]);'],
    ['a quoted key', "Object.assign(Error, { 'prepareStackTrace': f })"],
    ['a computed key', "Object.assign(Error, { ['prepareStackTrace']: f })"],
    ['defineProperties', "Object.defineProperties(Error, { 'prepareStackTrace': { value: f } })"],
    ['Reflect.set', "Reflect.set(Error, 'prepareStackTrace', f)"],
    ['__defineGetter__', "Error.__defineGetter__('prepareStackTrace', () => f)"],
    ['a constant name', "const k = 'prepareStackTrace'; Reflect.set(Error, k, f)"],
    ['an entry', "Object.assign(Error, Object.fromEntries([['prepareStackTrace', f]]))"],
    ['a static member', 'class H { static prepareStackTrace(e, s) { return s } }; Object.setPrototypeOf(Error, H)'],
    ['an array key', "Error[['prepareStackTrace']] = f"],
    ['an array key to a writer', "Reflect.defineProperty(Error, ['prepareStackTrace'], { value: f })"],
  ])('blocks installing prepareStackTrace through %s', (_, code) => {
    expect(hits(code).blocked.filter((finding) => finding.startsWith('stack_trace_tampering'))).toHaveLength(1);
  });

  it('does not flag reading prepareStackTrace', () => {
    expectClean('const previous = Error.prepareStackTrace');
    expectClean('const { prepareStackTrace } = Error');
    expectClean("const described = Object.getOwnPropertyDescriptor(Error, 'prepareStackTrace'); keys.includes('prepareStackTrace')");
  });

  it('warns on captureStackTrace onto anything but this', () => {
    expect(hits('Error.captureStackTrace(target)').warnings).toEqual(['capture_stack_trace@1:1']);
    expectClean('class E extends Error { constructor() { super(); Error.captureStackTrace(this, E) } }');
  });
});

describe('caller_chain', () => {
  it('blocks arguments.callee.caller and .caller.caller', () => {
    expect(hits('function f() { return arguments.callee.caller }').blocked).toEqual(['caller_chain@1:40']);
    expect(hits('g.caller.caller').blocked).toEqual(['caller_chain@1:10']);
  });

  it('does not flag a property named caller', () => {
    expectClean('const who = options.caller; f(ctx.caller)');
  });
});

describe('eval_usage and function_from_string', () => {
  it('screens constant code given to eval, Function and string timers', () => {
    expectClean('var root = Function("return this")()');
    expectClean('const add = new Function("a", "b", "return a + b")');
    expectClean('eval("1 + 1")');
    const nested = screen('eval("this.constructor.constructor(\'return 1\')()")');
    expect(nested.blocked).toEqual([
      expect.objectContaining({ rule: 'function_constructor_chain', line: 1, column: 1 }),
    ]);
    expect(nested.blocked[0]?.message).toMatch(/^in the code given to eval: /);
    expect(hits('setTimeout("process.exit()", 1)').warnings).toEqual(['host_only_name@1:1']);
    expect(hits('new Function("return " + "process")').warnings).toEqual(['host_only_name@1:1']);
  });

  it('warns when the code is built at run time', () => {
    expect(hits('eval(source)').warnings).toEqual(['eval_usage@1:1']);
    expect(hits('const e = eval;').warnings).toEqual(['eval_usage@1:11']);
    expect(hits('(0, eval)(x)').warnings).toEqual(['eval_usage@1:1']);
    expect(hits('(0, eval)("typeof process")').warnings).toEqual([]);
    expect(hits('(0, eval)("process.exit()")').warnings).toEqual(['host_only_name@1:1']);
    expect(hits('new Function("data", body)').warnings).toEqual(['function_from_string@1:1']);
    expect(hits('Function.apply(null, args)').warnings).toEqual(['function_from_string@1:1']);
    expect(hits('Reflect.construct(Function, [src])').warnings).toEqual(['function_from_string@1:1']);
    expect(hits('Reflect.construct(Function, ["return process"])').warnings).toEqual(['host_only_name@1:1']);
  });

  it('does not flag Function used as a value', () => {
    expectClean('f instanceof Function; Function.prototype.call.bind(Object.prototype.hasOwnProperty)');
    expectClean('function run(eval2) { const evaluate = (x) => x; return evaluate(eval2) }');
  });
});

describe('dynamic_import and module_import', () => {
  it('warns on import(), static imports, re-exports and import.meta', () => {
    const report = screen('const m = await import("fs")');
    expect(report.warnings).toEqual([expect.objectContaining({ rule: 'dynamic_import', line: 1, column: 17 })]);
    expect(report.warnings[0]?.message).toMatch(/modules are not available in the sandbox/);
    expect(hits('import fs from "node:fs";\nexport default 1').warnings).toEqual(['module_import@1:1']);
    expect(hits('export * from "x"').warnings).toEqual(['module_import@1:1']);
    expect(hits('export default import.meta.url').warnings).toEqual(['module_import@1:16']);
  });
});

describe('host_only_name', () => {
  it('warns on host-only names used as free variables, with a useful message', () => {
    const report = screen('const fs = require("fs");\nprocess.exit(1)');
    expect(report.blocked).toEqual([]);
    expect(report.warnings).toEqual([
      expect.objectContaining({ rule: 'host_only_name', line: 1, column: 12 }),
      expect.objectContaining({ rule: 'host_only_name', line: 2, column: 1 }),
    ]);
    expect(report.warnings[0]?.message).toMatch(/modules are not available in the sandbox/);
    expect(hits('module.exports = 1; Buffer.from(""); global.x; __dirname').warnings).toHaveLength(4);
    expect(hits('globalThis.process.exit(); self["require"]("fs"); globalThis.WebAssembly').warnings).toEqual([
      'host_only_name@1:1',
      'host_only_name@1:28',
      'limit_defeating_global@1:51',
    ]);
  });

  it('does not flag local bindings, properties, keys or typeof checks', () => {
    expectClean('function f(process) { return process.x }');
    expectClean('const require = (x) => x; require("a")');
    expectClean('obj.process; ({ module: 1 }); class A { global() {} }');
    expectClean('if (typeof process !== "undefined" && typeof module === "object") {}');
    expectClean('if (typeof globalThis.process === "object") {}');
    expectClean('try {} catch (Buffer) { Buffer }');
  });

  it('follows scopes: a name bound in one function is still the global everywhere else', () => {
    expect(hits('function run(process) { return process.x }\nprocess.env.HOME').warnings).toEqual(['host_only_name@2:1']);
    expect(hits('function unused(Reflect) {}\nReflect.get(() => 0, "constructor")').blocked).toEqual(['function_constructor_chain@2:1']);
    expect(hits('{ let Function; }\nFunction("return " + input.code)()').warnings).toContain('function_from_string@2:1');
    expect(hits('function unused(eval) {}\neval(input.code)').warnings).toContain('eval_usage@2:1');
    expect(hits('function unused(String) {}\nf[String.fromCharCode(99, 111, 110, 115, 116, 114, 117, 99, 116, 111, 114)]').blocked).toEqual([
      'obfuscated_name@2:3',
    ]);
    // Where the binding does reach, the name is the snippet's own.
    expectClean('function f(Reflect) { return Reflect.get(() => 0, "constructor") }');
  });
});

describe('limit_defeating_global', () => {
  it('warns on globals the sandbox removes', () => {
    expect(hits('new SharedArrayBuffer(8); WebAssembly.compile(b); Atomics.wait(a, 0, 0)').warnings).toEqual([
      'limit_defeating_global@1:5',
      'limit_defeating_global@1:27',
      'limit_defeating_global@1:51',
    ]);
    expect(hits('new FinalizationRegistry(f); new WeakRef(o)').warnings).toHaveLength(2);
  });

  it('does not flag typeof guards or local names', () => {
    expectClean('if (typeof WeakRef === "function") {}\nconst Atomics = {}; Atomics.x');
  });
});

describe('builtin_prototype_write', () => {
  it('warns on writes to built-in prototypes and __proto__ assignment', () => {
    expect(hits('Array.prototype.last = function () {}').warnings).toEqual(['builtin_prototype_write@1:1']);
    expect(hits('Object.defineProperty(Object.prototype, "x", {})').warnings).toEqual(['builtin_prototype_write@1:1']);
    expect(hits('a.__proto__ = b').warnings).toEqual(['builtin_prototype_write@1:1']);
  });

  it('does not flag __proto__ literals, reads, or prototypes of own classes', () => {
    expectClean('const dict = { __proto__: null }; const p = o.__proto__; Foo.prototype.bar = 1');
  });
});

describe('with_statement', () => {
  it('warns on with', () => {
    expect(hits('with (Math) { max(1, 2) }').warnings).toEqual(['with_statement@1:1']);
  });
});

describe('findings are bounded', () => {
  it('lists at most 20 findings per rule and counts the rest', () => {
    const report = screen(Array.from({ length: 30 }, () => 'process.x;').join('\n'));
    expect(report.warnings).toHaveLength(21);
    expect(report.warnings.at(-1)).toEqual({ rule: 'host_only_name', message: '10 more findings of this rule not listed' });
  });

  it('never throws on hostile folding: self-referencing constants and doubling chains', () => {
    const doubling = ['const a0 = "";', ...Array.from({ length: 60 }, (_, i) => `const a${i + 1} = a${i} + a${i};`)];
    expect(screen(`${doubling.join('\n')}\neval(a60)`).parsed).toBe(true);
    expect(screen('const a = b; const b = a; x[a]').blocked).toEqual([]);
  });
});

describe('TypeScript', () => {
  it('screens stripped TypeScript at the positions of the TypeScript source', async () => {
    const { stripTypes } = await import('../../src/typescript.ts');
    const source = 'const n: number = 1;\nconst f = (x: unknown): unknown => (x as any).constructor.constructor;';
    const stripped = stripTypes(source);
    expect(stripped.ok).toBe(true);
    if (!stripped.ok) return;
    // The second `.constructor` of line 2, located in the TypeScript source itself.
    const line = source.split('\n')[1] ?? '';
    const column = line.lastIndexOf('constructor') + 1;
    expect(hits(stripped.code).blocked).toEqual([`function_constructor_chain@2:${column}`]);
  });
});

describe('hostile and odd input', () => {
  it('never throws, whatever the text', () => {
    const inputs = [
      '',
      '// only a comment',
      '#!/usr/bin/env node\nprocess.argv',
      'a\u2028process\u2029b',
      '"\ud800" + x["\udc00"]',
      '<!-- html comment\nx',
      'class A { #x = 1; static has(o) { return #x in o } }',
      'label: for (;;) { break label }',
      'x?.constructor?.constructor',
      '`${`${`${1}`}`}`',
      '/[/]/.test(a) ? /(/ : 1',
      'a = b\n/c/g',
      '@decorator class A {}',
      '\\u{110000}',
      'eval("eval(\\"eval(`1`)\\")")',
      'new Function(...args)',
      'Function(1, 2)',
      'x[`${a}`]',
      'const {[k]: v} = o; [a, ...b] = c',
    ];
    for (const code of inputs) expect(() => prescreen(code, defaults), JSON.stringify(code)).not.toThrow();
  });

  it('screens a constant given to eval again and again only up to the snippet\'s own size', () => {
    const body = `const v${'x'.repeat(30_000)} = 1;`;
    const report = screen(`const code = "${body}";\n${'eval(code);\n'.repeat(10)}`);
    expect(report.blocked).toEqual([]);
    expect(report.warnings.length).toBeGreaterThan(0);
    expect(report.warnings.every((warning) => /more code is given to eval/.test(warning.message))).toBe(true);
  });

  it('follows eval of eval only two levels deep, and says so', () => {
    const report = screen('eval("eval(\\"eval(\'process\')\\")")');
    expect(report.warnings).toEqual([
      expect.objectContaining({ rule: 'eval_usage', message: expect.stringMatching(/nested in eval too deeply/) }),
    ]);
  });
});
