// What the process taking jobs worked out lately from a code string — its type-stripped form, its
// pre-screen findings — so that code sent again (a caller's retry, the same snippet run over many
// inputs, a benchmark) is not stripped on a thread nor parsed and walked again. Each is a pure
// function of the code (and, for the screen, of its settings), so a hit answers exactly as the
// work would. What ran out of time is never kept: that depends on the machine's load.
import { LRUCache } from 'lru-cache';
import type { ScreenOutcome } from './prepare-thread.ts';
import type { CompiledPrescreenOptions } from './prescreen.ts';
import type { StripTypesResult } from './typescript.ts';

export interface CodeCacheOptions {
  /** What all entries may hold in all, counted in characters of code, keys and values. @default 2 Mi */
  maxChars?: number;
  /** Longer code is never kept. @default 64 Ki */
  maxCodeChars?: number;
}

/** An entry's share beyond its characters, and each finding's: the objects holding them. */
const OVERHEAD_CHARS = 64;

/**
 * One tenant's view of a cache. Entries are kept per tenant: a hit is faster than the work, and a
 * tenant that could hit another's entries could learn, by timing, what code that tenant ran.
 */
export interface CodeMemory<V> {
  get(code: string): V | undefined;
  set(code: string, value: V): void;
}

/** A least-recently-used map from (tenant, code string), bounded by the characters it holds. */
export class CodeCache<V extends object> {
  readonly #maxCodeChars: number;
  readonly #entries: LRUCache<string, V>;

  constructor(valueChars: (value: V) => number, options: CodeCacheOptions = {}) {
    this.#maxCodeChars = options.maxCodeChars ?? 64 * 1024;
    this.#entries = new LRUCache<string, V>({
      maxSize: options.maxChars ?? 2 * 1024 * 1024,
      sizeCalculation: (value, key) => key.length + valueChars(value) + OVERHEAD_CHARS,
    });
  }

  forTenant(tenantId: string): CodeMemory<V> {
    // Tenant ids are [A-Za-z0-9_-]: no NUL, so no two (tenant, code) pairs make one key.
    const prefix = `${tenantId}\u0000`;
    return {
      get: (code) => (code.length > this.#maxCodeChars ? undefined : this.#entries.get(prefix + code)),
      set: (code, value) => {
        if (code.length <= this.#maxCodeChars) this.#entries.set(prefix + code, value);
      },
    };
  }

  get size(): number {
    return this.#entries.size;
  }
}

/** Type stripping's results by TypeScript source: the stripped code, or the syntax error. */
export function stripCache(options?: CodeCacheOptions): CodeCache<StripTypesResult> {
  return new CodeCache((stripped) => (stripped.ok ? stripped.code.length : stripped.error.message.length), options);
}

function findingsChars(outcome: ScreenOutcome): number {
  let chars = 0;
  for (const finding of [...(outcome.report?.blocked ?? []), ...(outcome.report?.warnings ?? [])]) {
    chars += finding.message.length + OVERHEAD_CHARS;
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

/** One tenant's view of a ScreenCache. */
export interface ScreenMemory {
  get(code: string, settings: CompiledPrescreenOptions | undefined): ScreenOutcome | undefined;
  set(code: string, settings: CompiledPrescreenOptions | undefined, outcome: ScreenOutcome): void;
}

/**
 * The pre-screen's outcomes under one set of settings, per tenant. Only the settings object the
 * cache was made for is served: a request's own pre-screen settings compile to a new object each
 * time and always screen afresh. Outcomes go in and out as copies.
 */
export class ScreenCache {
  readonly #settings: CompiledPrescreenOptions | undefined;
  readonly #entries: CodeCache<ScreenOutcome>;

  /** `settings`: the compiled settings it serves; undefined for code that is not screened (its form only). */
  constructor(settings: CompiledPrescreenOptions | undefined, options?: CodeCacheOptions) {
    this.#settings = settings;
    this.#entries = new CodeCache(findingsChars, options);
  }

  forTenant(tenantId: string): ScreenMemory {
    const entries = this.#entries.forTenant(tenantId);
    return {
      get: (code, settings) => {
        if (settings !== this.#settings) return undefined;
        const known = entries.get(code);
        return known === undefined ? undefined : copyOutcome(known);
      },
      set: (code, settings, outcome) => {
        if (settings === this.#settings) entries.set(code, copyOutcome(outcome));
      },
    };
  }

  get size(): number {
    return this.#entries.size;
  }
}
