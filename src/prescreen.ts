// Pre-screen: explainable rules over the parsed snippet, run before a job is queued or run. Pure and
// synchronous; the pool and the client call prescreen() with options from compilePrescreenOptions().
// It is a filter, not the boundary: the sandbox stays safe with screening off.
//
// TypeScript is screened after type stripping (which keeps positions), so the caller passes
// JavaScript. Code that does not parse yields no findings: the engine reports it as a compile error.
import { parse, type Options, type Program } from 'acorn';
import type { RejectionReason, Warning } from './result.ts';
import { checkBounds } from './prescreen-bounds.ts';
import type { CompiledPrescreenOptions } from './prescreen-options.ts';
import type { RuleId } from './prescreen-rules.ts';
import { screenProgram, type FindingSink } from './prescreen-walk.ts';

export { RULES, RULE_IDS, isRuleId, type PrescreenRule, type RuleId, type RuleSeverity } from './prescreen-rules.ts';
export {
  DEFAULT_PRESCREEN,
  PrescreenOptionsSchema,
  compilePrescreenOption,
  compilePrescreenOptions,
  requestPrescreen,
  type CompiledPrescreenOptions,
  type PrescreenLayer,
  type PrescreenMode,
  type PrescreenOptions,
} from './prescreen-options.ts';

export interface PrescreenReport {
  /** Findings that reject the job (empty in report mode). */
  blocked: RejectionReason[];
  /** Findings that travel on the Result. */
  warnings: Warning[];
  /** Whether the code was parsed (false: screening off, a bound crossed, or a syntax error). */
  parsed: boolean;
  sourceType?: 'script' | 'module';
  /** Module code only: whether it has a default export. */
  hasDefaultExport?: boolean;
}

/** Findings listed per rule; past it one summary finding counts the rest. */
const MAX_FINDINGS_PER_RULE = 20;
/** How deep eval('eval("...")') is followed. */
const MAX_NESTED_SCREENS = 2;

/**
 * Screens `code` (JavaScript) under compiled options. Never throws on any input: hostile code gets
 * findings, bounds violations get `prescreen_too_large` / `prescreen_too_deep` findings. Line and
 * column are 1-based; columns count UTF-16 units.
 */
export function prescreen(code: string, options: CompiledPrescreenOptions): PrescreenReport {
  if (options.mode === 'off') return { blocked: [], warnings: [], parsed: false };
  const findings = new Findings(code, options);

  const bound = checkBounds(code, options);
  if (bound !== undefined) {
    findings.add(bound.rule, bound.message, bound.offset);
    return findings.report({ parsed: false });
  }
  const parsed = parseCode(code);
  if (parsed.kind === 'too_deep') {
    findings.add('prescreen_too_deep', 'the code is nested too deeply to screen', parsed.offset);
    return findings.report({ parsed: false });
  }
  if (parsed.kind === 'syntax_error') return findings.report({ parsed: false });

  // Work stays linear in the input: constant folding may produce 4× its length in characters, and
  // nested screens may parse as much code as the snippet holds (a constant given to eval ten times
  // is not screened ten times).
  const budget = { chars: 4 * code.length + 64 * 1024 };
  let nestedChars = code.length + 16 * 1024;
  const screen = (program: Program, source: string, sink: FindingSink, level: number): void => {
    screenProgram(program, source, sink, (inner, what, offset) => {
      const nestedSink: FindingSink = {
        add: (rule, message) => sink.add(rule, `in the code given to ${what}: ${message}`, offset),
      };
      if (level >= MAX_NESTED_SCREENS) {
        nestedSink.add('eval_usage', 'code is nested in eval too deeply to screen', 0);
        return;
      }
      if (inner.length > nestedChars) {
        sink.add('eval_usage', `more code is given to ${what} than this screen reads; the rest is not screened`, offset);
        return;
      }
      nestedChars -= inner.length;
      const innerBound = checkBounds(inner, options);
      if (innerBound !== undefined) return nestedSink.add(innerBound.rule, innerBound.message, 0);
      const innerParsed = parseCode(inner);
      if (innerParsed.kind === 'too_deep') return nestedSink.add('prescreen_too_deep', 'nested too deeply to screen', 0);
      // Unparseable constant code throws a SyntaxError at run time: nothing to screen.
      if (innerParsed.kind === 'parsed') screen(innerParsed.program, inner, nestedSink, level + 1);
    }, budget);
  };
  screen(parsed.program, code, findings, 0);

  const report: Parameters<Findings['report']>[0] = { parsed: true, sourceType: parsed.sourceType };
  if (parsed.sourceType === 'module') report.hasDefaultExport = hasDefaultExport(parsed.program);
  return findings.report(report);
}

/**
 * The report for code whose screening was ended at its time bound (on a thread: see
 * src/prepare-threads.ts): one `prescreen_too_slow` finding, under the options' severity and mode.
 */
export function unscreenedReport(code: string, options: CompiledPrescreenOptions, boundMs: number): PrescreenReport {
  const findings = new Findings(code, options);
  if (options.mode !== 'off') findings.add('prescreen_too_slow', `the code could not be screened within ${boundMs} ms`);
  return findings.report({ parsed: false });
}

type ParseOutcome =
  | { kind: 'parsed'; program: Program; sourceType: 'script' | 'module' }
  | { kind: 'syntax_error' }
  | { kind: 'too_deep'; offset?: number };

// ranges: the scope analysis (eslint-scope, prescreen-walk.ts) reads node ranges.
const BASE_OPTIONS = { ecmaVersion: 'latest', allowHashBang: true, ranges: true } as const satisfies Partial<Options>;
const GOALS: Readonly<Record<'script' | 'loose' | 'module', Options>> = {
  script: { ...BASE_OPTIONS, sourceType: 'script' },
  // The engine may wrap a script (top-level await and return); screen what it could run.
  loose: { ...BASE_OPTIONS, sourceType: 'script', allowAwaitOutsideFunction: true, allowReturnOutsideFunction: true },
  module: { ...BASE_OPTIONS, sourceType: 'module' },
};
const MODULE_HINT = /^[ \t]*(?:import[ \t]*[\w{*'"]|export[ \t{*])/m;

function parseCode(code: string): ParseOutcome {
  // Script first, as most snippets are scripts; module first when a line starts like a module.
  const order = MODULE_HINT.test(code) ? (['module', 'script', 'loose'] as const) : (['script', 'loose', 'module'] as const);
  for (const goal of order) {
    try {
      const program = parse(code, GOALS[goal]);
      return { kind: 'parsed', program, sourceType: goal === 'module' ? 'module' : 'script' };
    } catch (error) {
      // acorn reports its own stack exhaustion as a SyntaxError; V8 may still run such code, so it
      // is a bound crossed, never "unparseable".
      if (error instanceof RangeError || (error instanceof Error && error.message.startsWith('Not enough stack space'))) {
        const pos = (error as { pos?: unknown }).pos;
        return typeof pos === 'number' ? { kind: 'too_deep', offset: pos } : { kind: 'too_deep' };
      }
      // Otherwise a syntax error under this goal: try the next one.
    }
  }
  return { kind: 'syntax_error' };
}

function hasDefaultExport(program: Program): boolean {
  return program.body.some(
    (statement) =>
      statement.type === 'ExportDefaultDeclaration' ||
      (statement.type === 'ExportNamedDeclaration' &&
        statement.specifiers.some((specifier) => exportedName(specifier.exported) === 'default')),
  );
}

function exportedName(node: { type: string; name?: string; value?: unknown }): string | undefined {
  return node.type === 'Identifier' ? node.name : typeof node.value === 'string' ? node.value : undefined;
}

/** Collects findings: applies severities and mode, positions, de-duplication and the per-rule cap. */
class Findings implements FindingSink {
  readonly #code: string;
  readonly #options: CompiledPrescreenOptions;
  readonly #blocked: RejectionReason[] = [];
  readonly #warnings: Warning[] = [];
  readonly #seen = new Set<string>();
  readonly #counts = new Map<RuleId, number>();
  #lineStarts: number[] | undefined;

  constructor(code: string, options: CompiledPrescreenOptions) {
    this.#code = code;
    this.#options = options;
  }

  add(rule: RuleId, message: string, offset?: number): void {
    const severity = this.#options.severities[rule];
    if (severity === 'off') return;
    const key = `${rule}\u0000${offset ?? ''}\u0000${message}`;
    if (this.#seen.has(key)) return;
    this.#seen.add(key);
    const count = (this.#counts.get(rule) ?? 0) + 1;
    this.#counts.set(rule, count);
    if (count > MAX_FINDINGS_PER_RULE) return;
    const enforced = this.#options.mode === 'enforce';
    // Report mode is how operators try rules out: say which findings enforce mode would reject.
    const finding: Warning = { rule, message: severity === 'block' && !enforced ? `${message} (rejected in enforce mode)` : message };
    if (offset !== undefined) Object.assign(finding, this.#position(offset));
    if (severity === 'block' && enforced) this.#blocked.push(finding);
    else this.#warnings.push(finding);
  }

  report(extra: Omit<PrescreenReport, 'blocked' | 'warnings'>): PrescreenReport {
    for (const [rule, count] of this.#counts) {
      if (count <= MAX_FINDINGS_PER_RULE) continue;
      const summary = { rule, message: `${count - MAX_FINDINGS_PER_RULE} more findings of this rule not listed` };
      const listedAsBlock = this.#blocked.some((finding) => finding.rule === rule);
      (listedAsBlock ? this.#blocked : this.#warnings).push(summary);
    }
    const byPosition = (a: Warning, b: Warning): number =>
      (a.line ?? Infinity) - (b.line ?? Infinity) || (a.column ?? Infinity) - (b.column ?? Infinity);
    return {
      blocked: this.#blocked.sort(byPosition),
      warnings: [...this.#options.notices, ...this.#warnings.sort(byPosition)],
      ...extra,
    };
  }

  #position(offset: number): { line: number; column: number } {
    this.#lineStarts ??= lineStarts(this.#code);
    const starts = this.#lineStarts;
    let low = 0;
    let high = starts.length - 1;
    while (low < high) {
      const middle = (low + high + 1) >> 1;
      if ((starts[middle] as number) <= offset) low = middle;
      else high = middle - 1;
    }
    return { line: low + 1, column: offset - (starts[low] as number) + 1 };
  }
}

function lineStarts(code: string): number[] {
  const starts = [0];
  for (const match of code.matchAll(/\r\n?|[\n\u2028\u2029]/g)) starts.push(match.index + match[0].length);
  return starts;
}
