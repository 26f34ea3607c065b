// The pre-screen's rule table: every id a pre-screen finding can carry, its default severity and
// the reason a user reads. Pure data; docs/prescreen-rules.md is generated from it and a unit test
// fails when they disagree. Ids are API: never renamed, never reused.

export type RuleSeverity = 'block' | 'warn' | 'off';

/** What a rule looks at: the code's syntax tree, or the bounds checked before parsing. */
export type RuleKind = 'syntax' | 'bound' | 'notice';

export interface PrescreenRule {
  readonly id: string;
  readonly kind: RuleKind;
  /** Severity under the default rule set. */
  readonly severity: Exclude<RuleSeverity, 'off'>;
  /** One line: what the rule catches. */
  readonly title: string;
  /** Why the rule exists and why it has this severity; shown in the docs, not in each finding. */
  readonly why: string;
}

export const RULES = Object.freeze([
  {
    id: 'function_constructor_chain',
    kind: 'syntax',
    severity: 'block',
    title:
      'Reaching the Function constructor through `.constructor`: `x.constructor.constructor` (read or destructured), the constructor of a function, arrow, async or generator literal or builtin method, or `x.constructor("code")`',
    why: 'The classic sandbox-escape opening: it turns a string into code from any object, without naming `Function`. Ordinary code reads `.constructor` to compare classes, not to build functions; `new err.constructor(message)` cannot be told from it, so write the class (`new TypeError(message)`).',
  },
  {
    id: 'obfuscated_name',
    kind: 'syntax',
    severity: 'block',
    title:
      'A sensitive name (`constructor`, `__proto__`, `prepareStackTrace`, `eval`, `process`, ...) assembled at run time: concatenation, `String.fromCharCode`, escapes, `split/reverse/join`, `atob`',
    why: 'Constant parts are folded as a reader would, so a name hidden from a text search is still seen where it is used as one (a property, a key, a call\'s argument), through constants never assigned again. Ordinary code writes such names plainly or not at all. Names made from values that change or that the code computes (a loop, a function, input) are not seen: the screen is a filter.',
  },
  {
    id: 'escaped_identifier',
    kind: 'syntax',
    severity: 'block',
    title: 'An identifier or property name whose ASCII letters are written as `\\u` escapes (`\\u0065val`)',
    why: 'The only use of escaping a plain ASCII letter in a name is hiding the name from readers and text filters. Escapes of non-ASCII letters are not flagged.',
  },
  {
    id: 'stack_trace_tampering',
    kind: 'syntax',
    severity: 'block',
    title:
      'Installing a V8 stack-trace hook: writing `Error.prepareStackTrace` by assignment, destructuring or a for-of target; as an object literal key, an entry (`[name, value]`) or a static class member; or through `defineProperty`, `Reflect.set` or `__defineGetter__`',
    why: 'The hook hands out raw call-site objects (receivers and functions of every frame), the second step of most isolate escapes. Snippets have no reason to format stack traces themselves. Reading it is not flagged; a name computed at run time is not followed.',
  },
  {
    id: 'caller_chain',
    kind: 'syntax',
    severity: 'block',
    title: 'Walking the call stack through `arguments.callee.caller` or `.caller.caller`',
    why: 'Reaches the functions that called the snippet, which in a sandbox belong to the host. Forbidden in strict code and unused by ordinary code.',
  },
  {
    id: 'dynamic_import',
    kind: 'syntax',
    severity: 'warn',
    title: 'Dynamic `import(...)`',
    why: 'The sandbox has no module loader: `import()` rejects there, so it cannot reach host modules as it did in vm-based sandboxes. A warning, not a block: libraries load optional parts lazily with it (CLI entry points of marked and yaml do).',
  },
  {
    id: 'capture_stack_trace',
    kind: 'syntax',
    severity: 'warn',
    title: '`Error.captureStackTrace` on anything other than `this`',
    why: 'Together with a stack-trace hook it fetches call sites; alone it is harmless, and `Error.captureStackTrace(this, ...)` in error classes is common, so only unusual targets warn.',
  },
  {
    id: 'eval_usage',
    kind: 'syntax',
    severity: 'warn',
    title: '`eval` of a string the screen cannot read (built at run time), or an indirect reference to `eval`',
    why: 'eval runs inside the same sandbox and reaches nothing more, but code built at run time escapes this screen. A constant argument is parsed and screened instead, so `eval("1+1")` raises nothing.',
  },
  {
    id: 'function_from_string',
    kind: 'syntax',
    severity: 'warn',
    title: '`Function(...)` / `new Function(...)` with a body the screen cannot read (built at run time)',
    why: 'Template engines and global lookups (`Function("return this")()`) use it legitimately, and it reaches nothing beyond the sandbox. Constant bodies are parsed and screened; only dynamic bodies warn that they go unscreened.',
  },
  {
    id: 'host_only_name',
    kind: 'syntax',
    severity: 'warn',
    title: 'Host-only names used as free variables: `process`, `require`, `module`, `exports`, `global`, `Buffer`, `__dirname`, `__filename`',
    why: 'They do not exist in the sandbox, so the code will fail there; the warning says so before it runs. A local variable with such a name, a property (`obj.process`) or a `typeof` check is not flagged.',
  },
  {
    id: 'module_import',
    kind: 'syntax',
    severity: 'warn',
    title: 'Static `import` declarations, `export ... from` and `import.meta`',
    why: 'ES imports of anything outside the snippet are not available in the sandbox; linking will fail. A warning, not a block: the engine already reports the failure, and module code is ordinary code.',
  },
  {
    id: 'limit_defeating_global',
    kind: 'syntax',
    severity: 'warn',
    title: '`WebAssembly`, `SharedArrayBuffer`, `Atomics`, `FinalizationRegistry`, `WeakRef`',
    why: 'They can defeat memory or time limits or observe the garbage collector, so the sandbox removes them: safety comes from the removal, not from this rule. A warning because libraries reference them in guarded branches that never run.',
  },
  {
    id: 'builtin_prototype_write',
    kind: 'syntax',
    severity: 'warn',
    title: 'Writing to a built-in prototype (`Object.prototype.x = ...`, `Object.defineProperty(Array.prototype, ...)`) or assigning `__proto__`',
    why: 'Each job has a fresh isolate, so pollution cannot reach another job; polyfills and old libraries do this legitimately. Worth a note, not a rejection. `{ __proto__: null }` literals are not flagged.',
  },
  {
    id: 'with_statement',
    kind: 'syntax',
    severity: 'warn',
    title: 'A `with` statement',
    why: 'Names inside resolve at run time, so this screen cannot tell what they refer to. It grants nothing inside the sandbox and older libraries use it, hence a warning.',
  },
  {
    id: 'prescreen_too_large',
    kind: 'bound',
    severity: 'block',
    title: 'Code larger than the screening size limit (default 256 KiB)',
    why: 'Screening time grows with size; past the limit the code is rejected quickly rather than parsed slowly on the caller\'s event loop.',
  },
  {
    id: 'prescreen_too_deep',
    kind: 'bound',
    severity: 'block',
    title: 'Brackets or expressions nested deeper than the screening depth limit (default 256)',
    why: 'The parser is recursive: pathological nesting would exhaust its stack. A cheap scan rejects it before parsing; the parser running out of stack is reported the same way, never as unparseable.',
  },
  {
    id: 'prescreen_too_slow',
    kind: 'bound',
    severity: 'block',
    title: 'Code the pre-screen could not read within its time bound (2 s)',
    why: 'The parser takes quadratic time on some shapes (tens of thousands of names in one declaration): 256 KiB of them took seconds. Screening large code runs on a thread that is ended at the bound, and what was not screened is rejected, not run.',
  },
  {
    id: 'prescreen_line_too_long',
    kind: 'bound',
    severity: 'block',
    title: 'A line longer than the configured limit (off by default)',
    why: 'Lets an operator refuse minified bundles nobody can review. Off by default: size is already bounded and a long line costs no more to parse than many short ones.',
  },
  {
    id: 'prescreen_override_refused',
    kind: 'notice',
    severity: 'warn',
    title: 'A tenant or request asked to loosen screening (or named an unknown rule) and was not obeyed',
    why: 'Producers are not trusted: they may only tighten the operator\'s settings unless the operator allows loosening. The warning tells the caller their setting was ignored.',
  },
] as const satisfies readonly PrescreenRule[]);

export type RuleId = (typeof RULES)[number]['id'];

export const RULE_IDS = Object.freeze(RULES.map((rule) => rule.id)) as readonly RuleId[];

const RULE_ID_SET: ReadonlySet<string> = new Set(RULE_IDS);

export function isRuleId(id: string): id is RuleId {
  return RULE_ID_SET.has(id);
}
