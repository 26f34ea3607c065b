// The supervisor's judgement of an executor's deadlines (src/pool-health.ts), as a pure function:
// time the pool's own event loop was held moves a job's deadline, up to MAX_STALL_CREDIT_MS.
import { describe, expect, it } from 'vitest';
import { judgeExecutor, MAX_STALL_CREDIT_MS, type Executor } from '../../src/pool-health.ts';
import type { Job } from '../../src/pool-queue.ts';

const OPTIONS = { executorMemoryMb: 1024, poolGraceMs: 2_500 };
const TIMEOUT_MS = 500;

/** A ready executor holding one running job, started at 0, whose process reports no /proc figures. */
function holding(stalledMs: number): { executor: Executor; job: Job } {
  const job = { runningSince: 1, stalledMs, limits: { timeoutMs: TIMEOUT_MS } } as unknown as Job;
  const executor = {
    state: 'ready',
    jobs: new Map([['1', job]]),
    process: { residentMb: () => undefined, cpuSeconds: () => undefined },
  } as unknown as Executor;
  return { executor, job };
}

describe('judgeExecutor deadlines', () => {
  const due = 1 + TIMEOUT_MS + OPTIONS.poolGraceMs;

  it('kills at timeoutMs + poolGraceMs when the pool was never held', () => {
    const { executor, job } = holding(0);
    expect(judgeExecutor(executor, due, OPTIONS, true)).toBeUndefined();
    expect(judgeExecutor(executor, due + 1, OPTIONS, true)).toEqual({ kind: 'deadline', culprits: new Set([job]) });
  });

  it("moves the deadline by the time the pool's loop was held", () => {
    const { executor } = holding(3_000);
    expect(judgeExecutor(executor, due + 3_000, OPTIONS, true)).toBeUndefined();
    expect(judgeExecutor(executor, due + 3_001, OPTIONS, true)?.kind).toBe('deadline');
  });

  it('moves it by MAX_STALL_CREDIT_MS at most, however much lateness was counted', () => {
    const { executor } = holding(10 * MAX_STALL_CREDIT_MS);
    expect(judgeExecutor(executor, due + MAX_STALL_CREDIT_MS, OPTIONS, true)).toBeUndefined();
    expect(judgeExecutor(executor, due + MAX_STALL_CREDIT_MS + 1, OPTIONS, true)?.kind).toBe('deadline');
  });
});
