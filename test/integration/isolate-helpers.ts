// Helpers for the thread-level isolate tests (test/integration/isolate*.test.ts): they call
// workers/isolate.ts in the test process itself, with real isolated-vm.
import { DEFAULT_LIMITS, type Limits } from '../../src/limits.ts';
import type { CodeForm, ThreadOutcome, ThreadTask } from '../../workers/protocol.ts';

let nextId = 0;

export interface TaskOptions {
  form?: CodeForm;
  /** Any JSON value; omitted means no input. */
  input?: unknown;
  limits?: Partial<Limits>;
  cancelSlot?: number;
}

/** Limits for tests: the defaults, with a 2 s clock so a broken limit fails fast. */
export const TEST_LIMITS: Readonly<Limits> = Object.freeze({ ...DEFAULT_LIMITS, timeoutMs: 2_000, cpuTimeMs: 2_000 });

export function task(code: string, options: TaskOptions = {}): ThreadTask {
  return {
    id: `t${++nextId}`,
    code,
    form: options.form ?? 'script',
    inputJson: 'input' in options ? JSON.stringify(options.input) : undefined,
    limits: { ...TEST_LIMITS, ...options.limits },
    cancelSlot: options.cancelSlot ?? 0,
  };
}

/** The parsed value of an outcome (undefined when it carried none). */
export function valueOf(outcome: ThreadOutcome): unknown {
  return outcome.valueJson === undefined ? undefined : JSON.parse(outcome.valueJson);
}

export const utf8Bytes = (text: string): number => Buffer.byteLength(text, 'utf8');
