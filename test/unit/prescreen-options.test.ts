import { describe, expect, it } from 'vitest';
import { RULES, compilePrescreenOptions, prescreen } from '../../src/prescreen.ts';
import { parseRequest } from '../../src/request.ts';

const ESCAPE = 'this.constructor.constructor("return 1")()';

describe('compilePrescreenOptions', () => {
  it('starts from the rule table defaults, frozen', () => {
    const compiled = compilePrescreenOptions();
    expect(compiled.mode).toBe('enforce');
    for (const rule of RULES) expect(compiled.severities[rule.id]).toBe(rule.severity);
    expect(Object.isFrozen(compiled)).toBe(true);
    expect(Object.isFrozen(compiled.severities)).toBe(true);
    expect(compiled.notices).toEqual([]);
  });

  it('applies the operator layer, including loosening', () => {
    const compiled = compilePrescreenOptions({ rules: { with_statement: 'block', function_constructor_chain: 'warn' } });
    expect(prescreen('with (o) {}', compiled).blocked).toEqual([expect.objectContaining({ rule: 'with_statement' })]);
    expect(prescreen(ESCAPE, compiled).blocked).toEqual([]);
    expect(prescreen(ESCAPE, compiled).warnings).toEqual([expect.objectContaining({ rule: 'function_constructor_chain' })]);
  });

  it('rejects an operator layer naming an unknown rule or a bad value', () => {
    expect(() => compilePrescreenOptions({ rules: { no_such_rule: 'off' } as never })).toThrow(/no_such_rule|Invalid/);
    expect(() => compilePrescreenOptions({ maxBytes: -1 })).toThrow();
  });

  it('lets a tenant or a request tighten', () => {
    const compiled = compilePrescreenOptions({ mode: 'report' }, { rules: { host_only_name: 'block' } }, { mode: 'enforce' });
    expect(compiled.mode).toBe('enforce');
    expect(compiled.severities.host_only_name).toBe('block');
    expect(prescreen('process.exit()', compiled).blocked).toEqual([expect.objectContaining({ rule: 'host_only_name' })]);
    expect(compiled.notices).toEqual([]);
  });

  it('refuses loosening from a tenant or a request, and says so in a warning', () => {
    const compiled = compilePrescreenOptions(
      {},
      { rules: { stack_trace_tampering: 'warn' } },
      { mode: 'report', rules: { function_constructor_chain: 'off', with_statement: 'off' } },
    );
    expect(compiled.mode).toBe('enforce');
    expect(compiled.severities.function_constructor_chain).toBe('block');
    expect(compiled.severities.stack_trace_tampering).toBe('block');
    expect(compiled.severities.with_statement).toBe('warn');
    const report = prescreen(ESCAPE, compiled);
    expect(report.blocked).toEqual([expect.objectContaining({ rule: 'function_constructor_chain' })]);
    const notices = report.warnings.filter((warning) => warning.rule === 'prescreen_override_refused');
    expect(notices).toHaveLength(4);
    expect(notices[0]?.message).toMatch(/tenant policy asked for rule 'stack_trace_tampering' at 'warn'; kept 'block'/);
    expect(notices.map((notice) => notice.message).join('\n')).toMatch(/request asked for prescreen mode 'report'; kept 'enforce'/);
  });

  it('obeys loosening when the operator allows it', () => {
    const compiled = compilePrescreenOptions(
      { allowLoosening: true },
      undefined,
      { rules: { function_constructor_chain: 'off' } },
    );
    expect(prescreen(ESCAPE, compiled)).toMatchObject({ blocked: [], warnings: [] });
    const report = compilePrescreenOptions({ allowLoosening: true }, { mode: 'report' });
    expect(report.mode).toBe('report');
  });

  it('ignores unknown rule ids from a request with a notice', () => {
    const compiled = compilePrescreenOptions({}, undefined, { rules: { not_a_rule: 'block' } });
    expect(compiled.notices).toEqual([
      { rule: 'prescreen_override_refused', message: "request named unknown prescreen rule 'not_a_rule': ignored" },
    ]);
  });

  it('offers a strict rule set in which every syntax rule blocks, as a tightening any layer may ask for', () => {
    const operatorStrict = compilePrescreenOptions({ ruleSet: 'strict', rules: { module_import: 'warn' } });
    expect(operatorStrict.severities.host_only_name).toBe('block');
    expect(operatorStrict.severities.module_import).toBe('warn');
    expect(operatorStrict.severities.prescreen_override_refused).toBe('warn');
    const tenantStrict = compilePrescreenOptions({ rules: { with_statement: 'off' } }, { ruleSet: 'strict' });
    expect(tenantStrict.severities.with_statement).toBe('block');
    expect(prescreen('require("fs")', tenantStrict).blocked).toEqual([expect.objectContaining({ rule: 'host_only_name' })]);
  });

  it('keeps screening off for everyone when the operator turned it off', () => {
    const compiled = compilePrescreenOptions({ mode: 'off' }, { mode: 'enforce' }, { mode: 'enforce' });
    expect(compiled.mode).toBe('off');
    expect(prescreen(ESCAPE, compiled)).toEqual({ blocked: [], warnings: [], parsed: false });
  });

  it('takes the prescreen field of a validated request as the per-call layer', () => {
    const parsed = parseRequest({ code: '1', prescreen: { mode: 'enforce', rules: { with_statement: 'block' } } });
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    const compiled = compilePrescreenOptions({}, undefined, parsed.request.prescreen);
    expect(compiled.severities.with_statement).toBe('block');
  });
});

describe('report mode', () => {
  it('turns every block into a warning and keeps warnings', () => {
    const compiled = compilePrescreenOptions({ mode: 'report' });
    const report = prescreen(`${ESCAPE};\nprocess.exit()`, compiled);
    expect(report.blocked).toEqual([]);
    expect(report.warnings.map((warning) => warning.rule)).toEqual(['function_constructor_chain', 'host_only_name']);
    expect(report.warnings[0]?.message).toMatch(/\(rejected in enforce mode\)$/);
    expect(report.warnings[1]?.message).not.toMatch(/enforce mode/);
  });

  it('reports a crossed bound as a warning and skips screening', () => {
    const compiled = compilePrescreenOptions({ mode: 'report', maxBytes: 100 });
    const report = prescreen('x'.repeat(200), compiled);
    expect(report).toMatchObject({ blocked: [], parsed: false });
    expect(report.warnings).toEqual([expect.objectContaining({ rule: 'prescreen_too_large' })]);
  });
});
