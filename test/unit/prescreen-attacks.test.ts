import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compilePrescreenOptions, prescreen } from '../../src/prescreen.ts';

// Attack snippets of the escape catalogue (test/escapes runs them with screening off; the sandbox
// contains them). Here: what the default pre-screen says about the same code.
// `node bench/corpus/prescreen-escapes.ts` reports every attack of the catalogue.
const defaults = compilePrescreenOptions();

function screenFixture(name: string) {
  const code = readFileSync(new URL(`../fixtures/snippets/${name}.js`, import.meta.url), 'utf8');
  const report = prescreen(code, defaults);
  return {
    blocked: [...new Set(report.blocked.map((finding) => finding.rule))].sort(),
    warned: [...new Set(report.warnings.map((finding) => finding.rule))].sort(),
  };
}

describe('the escape catalogue under the default rules', () => {
  it('blocks stack-trace hooks that collect call sites', () => {
    expect(screenFixture('prepare-stack-trace-callsites').blocked).toEqual([
      'function_constructor_chain',
      'stack_trace_tampering',
    ]);
  });

  it('blocks constructor chains from errors thrown at the host boundary', () => {
    expect(screenFixture('host-boundary-error-constructor-chain').blocked).toContain('function_constructor_chain');
  });

  it('warns, without blocking, on what the sandbox refuses by itself', () => {
    expect(screenFixture('dynamic-import-in-module')).toEqual({ blocked: [], warned: ['dynamic_import'] });
    expect(screenFixture('import-fs-in-module')).toEqual({ blocked: [], warned: ['module_import'] });
    expect(screenFixture('weak-and-shared-memory-are-absent').blocked).toEqual([]);
    expect(screenFixture('weak-and-shared-memory-are-absent').warned).toContain('limit_defeating_global');
  });

  it('leaves typeof probes of host names alone', () => {
    expect(screenFixture('node-globals-are-absent')).toEqual({ blocked: [], warned: [] });
  });
});
