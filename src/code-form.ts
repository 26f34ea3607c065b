// Code form: decides whether a snippet runs as a classic script (its completion value is the
// result) or as a module (its default export is the result). Pure; called by the pool per job.
import { parse, type Program } from 'acorn';
import type { CodeForm } from '../workers/protocol.ts';

// Any `export` token, in code or not: a cheap superset test that lets most snippets skip parsing.
const EXPORT_WORD = /\bexport\b/;
// A line that starts the way only a module's can.
const MODULE_LINE = /^[ \t]*(?:import[ \t]*[\w{*'"]|export[ \t{*])/m;

/**
 * 'module' iff the snippet has a default export (`export default …` or `export { x as default }`);
 * otherwise 'script'. Snippets that do not parse as a module are 'script': the isolate compiles
 * them and reports the syntax error with its own positions, so no error is decided here. Except
 * code that parses as neither and has a line starting like a module's (`export default 1;` with a
 * mistake further down): it is compiled as the module it was meant to be, so that the error named
 * is its mistake, not "Unexpected token 'export'".
 */
export function detectCodeForm(code: string): CodeForm {
  if (!EXPORT_WORD.test(code)) return 'script';
  let program: Program;
  try {
    program = parse(code, { ecmaVersion: 'latest', sourceType: 'module' });
  } catch {
    // Unparseable as a module: run it as a script and let the isolate name the syntax error.
    return MODULE_LINE.test(code) && !parsesAsScript(code) ? 'module' : 'script';
  }
  return hasDefaultExport(program) ? 'module' : 'script';
}

// A line that starts a default export.
const DEFAULT_EXPORT_LINE = /^[ \t]*export[ \t]+default\b|\bas[ \t]+default[ \t]*[,}]/m;

/**
 * The form of code that could not be parsed in time: 'module' when a line starts a default export,
 * else 'script'. Text only, so it may be wrong for such code; the isolate then names its error.
 */
export function guessCodeForm(code: string): CodeForm {
  return EXPORT_WORD.test(code) && DEFAULT_EXPORT_LINE.test(code) ? 'module' : 'script';
}

function parsesAsScript(code: string): boolean {
  try {
    parse(code, { ecmaVersion: 'latest', sourceType: 'script' });
    return true;
  } catch {
    return false;
  }
}

function hasDefaultExport(program: Program): boolean {
  for (const node of program.body) {
    if (node.type === 'ExportDefaultDeclaration') return true;
    if (node.type === 'ExportNamedDeclaration') {
      for (const specifier of node.specifiers) {
        const exported = specifier.exported;
        const name = exported.type === 'Identifier' ? exported.name : exported.value;
        if (name === 'default') return true;
      }
    }
  }
  return false;
}
