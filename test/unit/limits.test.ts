import { describe, expect, it } from 'vitest';
import { compileLimits, DEFAULT_CEILINGS, DEFAULT_LIMITS } from '../../src/limits.ts';

describe('compileLimits', () => {
  it('fills every limit from the defaults', () => {
    expect(compileLimits(undefined)).toEqual({ limits: DEFAULT_LIMITS, violations: [] });
  });

  it('clamps a request above a ceiling and reports it', () => {
    const { limits, violations } = compileLimits({ timeoutMs: 10 * DEFAULT_CEILINGS.timeoutMs, memoryMb: 32 });
    expect(limits.timeoutMs).toBe(DEFAULT_CEILINGS.timeoutMs);
    expect(limits.memoryMb).toBe(32);
    expect(violations).toEqual([
      { field: 'timeoutMs', requested: 10 * DEFAULT_CEILINGS.timeoutMs, ceiling: DEFAULT_CEILINGS.timeoutMs },
    ]);
  });

  it('lowers a default that a tighter ceiling does not allow, without calling it a violation', () => {
    const ceilings = { ...DEFAULT_CEILINGS, timeoutMs: 100 };
    expect(compileLimits({}, ceilings)).toMatchObject({ limits: { timeoutMs: 100 }, violations: [] });
  });

  it('keeps memory at a floor V8 can start with', () => {
    expect(compileLimits({ memoryMb: 1 }).limits.memoryMb).toBe(8);
  });

  it('returns frozen limits', () => {
    expect(Object.isFrozen(compileLimits({}).limits)).toBe(true);
  });
});
