// Which attacks of the escape catalogue (test/escapes/*.test.ts, run there with screening off) the
// default pre-screen would block, which it only warns about, and which it leaves to the sandbox.
// Reads each test's `code:` (a literal, a constant template or snippet('name')) from the test
// sources, so new attacks are picked up without a list here.
// Usage: node bench/corpus/prescreen-escapes.ts [--markdown]
import { readFileSync, readdirSync } from 'node:fs';
import { parse, type AnyNode } from 'acorn';
import { compilePrescreenOptions, prescreen } from '../../src/prescreen.ts';
import { stripTypes } from '../../src/typescript.ts';

const escapesDir = new URL('../../test/escapes/', import.meta.url);
const snippetsDir = new URL('../../test/fixtures/snippets/', import.meta.url);
const markdown = process.argv.includes('--markdown');
const options = compilePrescreenOptions();

interface Attack {
  file: string;
  title: string;
  code: string | undefined;
  typescript: boolean;
}

/** `const NAME = <init>` declarations of a test body, to follow `{ code }` to its text. */
type Bindings = ReadonlyMap<string, AnyNode>;

function codeOf(value: AnyNode, bindings: Bindings): string | undefined {
  if (value.type === 'Identifier') {
    const init = bindings.get(value.name);
    return init === undefined ? undefined : codeOf(init, new Map());
  }
  // ['line', 'line'].join('\n')
  if (
    value.type === 'CallExpression' &&
    value.callee.type === 'MemberExpression' &&
    value.callee.object.type === 'ArrayExpression' &&
    value.callee.property.type === 'Identifier' &&
    value.callee.property.name === 'join'
  ) {
    const parts = value.callee.object.elements.map((element) => (element === null ? undefined : codeOf(element, bindings)));
    const separator = value.arguments[0] === undefined ? ',' : codeOf(value.arguments[0], bindings);
    return parts.every((part) => part !== undefined) && separator !== undefined ? parts.join(separator) : undefined;
  }
  if (value.type === 'Literal' && typeof value.value === 'string') return value.value;
  if (value.type === 'TemplateLiteral' && value.expressions.length === 0) return value.quasis[0]?.value.cooked ?? undefined;
  if (
    value.type === 'CallExpression' &&
    value.callee.type === 'Identifier' &&
    value.callee.name === 'snippet' &&
    value.arguments[0]?.type === 'Literal'
  ) {
    return readFileSync(new URL(`${String(value.arguments[0].value)}.js`, snippetsDir), 'utf8');
  }
  return undefined;
}

function isProperty(node: AnyNode, name: string): node is Extract<AnyNode, { type: 'Property' }> {
  return node.type === 'Property' && !node.computed && node.key.type === 'Identifier' && node.key.name === name;
}

/** Every `code:` property under a node, in source order, with whether it is TypeScript. */
function codesUnder(root: AnyNode): { code: string | undefined; typescript: boolean }[] {
  const found: { code: string | undefined; typescript: boolean }[] = [];
  const bindings = new Map<string, AnyNode>();
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(visit);
    if (typeof node !== 'object' || node === null || typeof (node as { type?: unknown }).type !== 'string') return;
    const typed = node as AnyNode;
    if (typed.type === 'VariableDeclarator' && typed.id.type === 'Identifier' && typed.init) bindings.set(typed.id.name, typed.init);
    if (typed.type === 'ObjectExpression') {
      const code = typed.properties.find((property) => isProperty(property as AnyNode, 'code'));
      if (code !== undefined && code.type === 'Property') {
        const language = typed.properties.find((property) => isProperty(property as AnyNode, 'language'));
        const typescript = language?.type === 'Property' && codeOf(language.value, bindings) === 'typescript';
        found.push({ code: codeOf(code.value, bindings), typescript });
      }
    }
    for (const [key, child] of Object.entries(typed)) if (key !== 'type') visit(child);
  };
  visit(root);
  return found;
}

function attacksIn(file: string): Attack[] {
  const stripped = stripTypes(readFileSync(new URL(file, escapesDir), 'utf8'));
  if (!stripped.ok) throw new Error(`cannot strip types of ${file}`);
  const program = parse(stripped.code, { ecmaVersion: 'latest', sourceType: 'module' });
  const attacks: Attack[] = [];
  for (const statement of program.body) {
    if (statement.type !== 'ExpressionStatement' || statement.expression.type !== 'CallExpression') continue;
    const call = statement.expression;
    if (call.callee.type !== 'Identifier' || (call.callee.name !== 'test' && call.callee.name !== 'it')) continue;
    const [title, body] = call.arguments;
    if (title === undefined || body === undefined || title.type === 'SpreadElement' || body.type === 'SpreadElement') continue;
    const name = codeOf(title, new Map()) ?? '(untitled)';
    const codes = codesUnder(body);
    if (codes.length === 0) attacks.push({ file, title: name, code: undefined, typescript: false });
    codes.forEach(({ code, typescript }, index) =>
      attacks.push({ file, title: codes.length > 1 ? `${name} [${index + 1}]` : name, code, typescript }),
    );
  }
  return attacks;
}

const attacks = readdirSync(escapesDir)
  .filter((file) => file.endsWith('.test.ts'))
  .sort()
  .flatMap(attacksIn);

const counts = { blocked: 0, warned: 0, contained: 0, unread: 0 };
const rows: string[][] = [];
for (const attack of attacks) {
  if (attack.code === undefined) {
    counts.unread++;
    rows.push([attack.file, attack.title, 'not read (code built in the test)', '']);
    continue;
  }
  // TypeScript is screened after type stripping, as the engine does.
  const stripped = attack.typescript ? stripTypes(attack.code) : { ok: true as const, code: attack.code };
  if (!stripped.ok) {
    counts.contained++;
    rows.push([attack.file, attack.title, 'not screened: TypeScript the stripper refuses (a compile error)', '']);
    continue;
  }
  const report = prescreen(stripped.code, options);
  const rules = (findings: { rule: string }[]) => [...new Set(findings.map((finding) => finding.rule))].join(', ');
  if (report.blocked.length > 0) {
    counts.blocked++;
    rows.push([attack.file, attack.title, 'blocked', rules(report.blocked)]);
  } else if (report.warnings.length > 0) {
    counts.warned++;
    rows.push([attack.file, attack.title, 'warned, contained by the sandbox', rules(report.warnings)]);
  } else {
    counts.contained++;
    rows.push([attack.file, attack.title, 'contained by the sandbox', '']);
  }
}

if (markdown) {
  console.log('| test file | attack | pre-screen | rules |\n| --- | --- | --- | --- |');
  for (const row of rows) console.log(`| ${row.map((cell) => cell.replaceAll('|', '\\|')).join(' | ')} |`);
} else {
  for (const row of rows) console.log(row.join('  ·  '));
}
console.log(
  `\n${attacks.length} attacks: ${counts.blocked} blocked by the default pre-screen, ${counts.warned} warned, ` +
    `${counts.contained} left to the sandbox alone, ${counts.unread} not read from the test source`,
);
