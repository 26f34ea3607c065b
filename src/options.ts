// Checks for the options a program passes to createPool, createClient and createWorker: a mistake
// there is the calling program's bug, so each is an error naming `options.<name>`, thrown before
// anything starts. Pure, no dependencies.

/** `value`, or `fallback` when undefined; a RangeError naming `options.<name>` unless an integer in min..max. */
export function integerOption(name: string, value: unknown, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`options.${name}: expected an integer from ${min} to ${max}, got ${describeValue(value)}`);
  }
  return value;
}

/** A RangeError naming the first key of `options` not in `known`. */
export function refuseUnknownKeys(name: string, options: object, known: ReadonlySet<string>): void {
  const unknown = Object.keys(options).find((key) => !known.has(key));
  if (unknown !== undefined) {
    throw new RangeError(`${name === '' ? 'options' : `options.${name}`}.${unknown.slice(0, 64)}: unknown option`);
  }
}

/** An optional nested options object: undefined, or a plain object holding only `keys`. */
export function optionObject(name: string, value: unknown, keys: readonly string[]): Record<string, unknown> | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new RangeError(`options.${name}: expected an object, got ${describeValue(value)}`);
  }
  const unknown = Object.keys(value).find((key) => !keys.includes(key));
  if (unknown !== undefined) {
    throw new RangeError(`options.${name}.${unknown.slice(0, 64)}: unknown (expected one of ${keys.join(', ')})`);
  }
  return value as Record<string, unknown>;
}

/** `value` if it is a string matching `pattern`, or `fallback` when undefined; else a TypeError saying what was expected. */
export function patternOption(name: string, value: unknown, fallback: string, pattern: RegExp, expected: string): string {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !pattern.test(value)) {
    throw new TypeError(`options.${name}: expected ${expected}, got ${describeValue(value)}`);
  }
  return value;
}

/** A value for a message: its type for objects, a short quote for strings. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}…` : value);
  if (typeof value === 'object' || typeof value === 'function') return typeof value;
  return String(value);
}
