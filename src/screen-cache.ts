// The pre-screen's outcomes for code seen lately, under one set of settings: code sent again (a
// caller's retry, the same snippet run over many inputs, a benchmark) is not parsed and walked
// again. The outcome of a code string under fixed settings never changes, so a hit answers exactly
// as a screen would. Only the settings object the cache was made for is served: a request's own
// pre-screen settings compile to a new object each time and always screen afresh.
import { LRUCache } from 'lru-cache';
import type { ScreenOutcome } from './prepare-thread.ts';
import type { CompiledPrescreenOptions } from './prescreen.ts';

export interface ScreenCacheOptions {
  /** What all entries may hold in all, counted in characters of code and findings. @default 2 Mi */
  maxChars?: number;
  /** Longer code is never kept. @default 64 Ki */
  maxCodeChars?: number;
}

/** A finding's share of an entry beyond its message: its rule, position and object. */
const FINDING_OVERHEAD_CHARS = 64;

function entryChars(outcome: ScreenOutcome, code: string): number {
  let chars = code.length + FINDING_OVERHEAD_CHARS;
  for (const finding of [...(outcome.report?.blocked ?? []), ...(outcome.report?.warnings ?? [])]) {
    chars += finding.message.length + FINDING_OVERHEAD_CHARS;
  }
  return chars;
}

/**
 * A copy the caller owns: findings end up on Results, and a caller that edits its Result's
 * warnings must not edit the next Result's.
 */
function copyOutcome({ report, form }: ScreenOutcome): ScreenOutcome {
  if (report === undefined) return { form };
  return {
    form,
    report: {
      ...report,
      blocked: report.blocked.map((reason) => ({ ...reason })),
      warnings: report.warnings.map((warning) => ({ ...warning })),
    },
  };
}

export class ScreenCache {
  readonly #settings: CompiledPrescreenOptions | undefined;
  readonly #maxCodeChars: number;
  readonly #entries: LRUCache<string, ScreenOutcome>;

  /** `settings`: the compiled settings it serves; undefined for code that is not screened (its form only). */
  constructor(settings: CompiledPrescreenOptions | undefined, options: ScreenCacheOptions = {}) {
    this.#settings = settings;
    this.#maxCodeChars = options.maxCodeChars ?? 64 * 1024;
    this.#entries = new LRUCache({ maxSize: options.maxChars ?? 2 * 1024 * 1024, sizeCalculation: entryChars });
  }

  /** The outcome of `code` under `settings`, as a copy, when it is known. */
  get(code: string, settings: CompiledPrescreenOptions | undefined): ScreenOutcome | undefined {
    if (settings !== this.#settings || code.length > this.#maxCodeChars) return undefined;
    const known = this.#entries.get(code);
    return known === undefined ? undefined : copyOutcome(known);
  }

  /** Keeps a copy of a screen's outcome (never one the screen could not finish in time). */
  set(code: string, settings: CompiledPrescreenOptions | undefined, outcome: ScreenOutcome): void {
    if (settings !== this.#settings || code.length > this.#maxCodeChars) return;
    this.#entries.set(code, copyOutcome(outcome));
  }

  get size(): number {
    return this.#entries.size;
  }
}
