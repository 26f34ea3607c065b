// What the process taking jobs worked out lately from a code string — its type-stripped form, its
// pre-screen findings — so that code sent again (a caller's retry, the same snippet run over many
// inputs, a benchmark) is not stripped on a thread nor parsed and walked again. Each is a pure
// function of the code (and, for the screen, of its settings), so a hit answers exactly as the
// work would. What ran out of time is never kept: that depends on the machine's load.
//
// Kept per tenant, each tenant with a budget of its own: a hit is faster than the work, and a cache
// shared between tenants would let one learn by timing what code another ran — by hitting its
// entries, or by watching its own entries evicted by another's new code.
import { LRUCache } from 'lru-cache';
import type { ScreenOutcome } from './prepare-thread.ts';
import type { CompiledPrescreenOptions } from './prescreen.ts';
import type { StripTypesResult } from './typescript.ts';

export interface CodeCacheOptions {
  /** What one tenant's entries may hold, counted in characters of code and values. @default 256 Ki */
  maxCharsPerTenant?: number;
  /** Tenants with entries at once; the one least recently used gives way, its entries with it. @default 16 */
  maxTenants?: number;
  /** Longer code is never kept. @default 64 Ki */
  maxCodeChars?: number;
}

/**
 * An entry's share beyond its characters, and each finding's: the objects and the cache's own
 * bookkeeping, ~390 bytes an entry as measured (256 characters: up to 512 bytes).
 */
const OVERHEAD_CHARS = 256;

/** One tenant's view of a cache. */
export interface CodeMemory<V> {
  get(code: string): V | undefined;
  set(code: string, value: V): void;
}

/** Least-recently-used maps from code strings, one per tenant, each bounded by the characters it holds. */
export class CodeCache<V extends object> {
  readonly #maxCodeChars: number;
  readonly #tenants: LRUCache<string, LRUCache<string, V>>;
  readonly #newTenant: () => LRUCache<string, V>;

  constructor(valueChars: (value: V) => number, options: CodeCacheOptions = {}) {
    this.#maxCodeChars = options.maxCodeChars ?? 64 * 1024;
    const maxSize = options.maxCharsPerTenant ?? 256 * 1024;
    this.#tenants = new LRUCache({ max: options.maxTenants ?? 16 });
    this.#newTenant = () => new LRUCache<string, V>({
      maxSize,
      sizeCalculation: (value, code) => code.length + valueChars(value) + OVERHEAD_CHARS,
    });
  }

  get(tenantId: string, code: string): V | undefined {
    return code.length > this.#maxCodeChars ? undefined : this.#tenants.get(tenantId)?.get(code);
  }

  set(tenantId: string, code: string, value: V): void {
    if (code.length > this.#maxCodeChars) return;
    let entries = this.#tenants.get(tenantId);
    if (entries === undefined) {
      entries = this.#newTenant();
      this.#tenants.set(tenantId, entries);
    }
    entries.set(code, value);
  }

  forTenant(tenantId: string): CodeMemory<V> {
    return { get: (code) => this.get(tenantId, code), set: (code, value) => this.set(tenantId, code, value) };
  }

  /** Entries held, all tenants together. */
  get size(): number {
    let size = 0;
    for (const entries of this.#tenants.values()) size += entries.size;
    return size;
  }
}

/** A strip's result, and how long the thread took over it: a job with a shorter budget strips afresh. */
export interface TimedStrip {
  result: StripTypesResult;
  ranMs: number;
}

/** Type stripping's results by TypeScript source: the stripped code, or the syntax error. */
export function stripCache(options?: CodeCacheOptions): CodeCache<TimedStrip> {
  return new CodeCache(({ result }) => (result.ok ? result.code.length : result.error.message.length), options);
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
    return {
      get: (code, settings) => {
        if (settings !== this.#settings) return undefined;
        const known = this.#entries.get(tenantId, code);
        return known === undefined ? undefined : copyOutcome(known);
      },
      set: (code, settings, outcome) => {
        if (settings === this.#settings) this.#entries.set(tenantId, code, copyOutcome(outcome));
      },
    };
  }

  get size(): number {
    return this.#entries.size;
  }
}
