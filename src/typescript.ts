// TypeScript → JavaScript for snippets with `language: 'typescript'`, through amaro (Node's own
// type stripper, swc compiled to wasm). Pure; called by the pool per job, before pre-screening.
//
// Strip-only mode first: types become whitespace, so every line and column of the JavaScript is
// the line and column the author wrote, and runtime stack traces point into their source. Syntax
// that strip-only cannot erase (enum, namespace, parameter properties, `<T>x` assertions) falls
// back to transform mode, which rewrites it into JavaScript at the cost of shifted positions.
//
// This runs in the caller's process, on hostile input. amaro's wasm parser recurses: a few thousand
// nested brackets, `!`s or generics overflow its stack, and some overflows corrupt its memory for
// every later call. So: bracket nesting is bounded before parsing, and any failure that is not a
// TypeScript diagnostic discards the amaro instance (a fresh one loads on the next call).
// Its parser also backtracks: 24 nested `(<any>` (177 bytes) take a minute, and no bound on the
// source tells such shapes apart. So the pool and the client strip through stripTypesWithin()
// (src/prepare-threads.ts), which runs stripTypes() on a thread ended at a time bound.
import { createRequire } from 'node:module';
import { dirname } from 'node:path';

export type StripTypesResult =
  | { ok: true; code: string }
  | {
      ok: false;
      error: { name: 'SyntaxError'; message: string; line: number; column: number };
      /** The parser failed without a diagnostic (its stack or memory gave out): not to be remembered. */
      unexpected?: true;
    };

interface AmaroError {
  code: 'UnsupportedSyntax' | 'InvalidSyntax';
  message: string;
  startLine: number;
  startColumn: number;
}

type TransformSync = (source: string, options: { mode: 'strip-only' | 'transform'; sourceMap?: boolean }) => {
  code: string;
};

const MAX_MESSAGE_CHARS = 500;
/** Deeper bracket nesting is refused before amaro sees it; amaro's own stack gives out near 700. */
export const MAX_TYPESCRIPT_NESTING = 256;

const require = createRequire(import.meta.url);
// amaro is a 3.7 MB module: loaded on the first TypeScript job, not when the pool is imported.
let transformSync: TransformSync | undefined;
function loadAmaro(): TransformSync {
  transformSync ??= (require('amaro') as { transformSync: TransformSync }).transformSync;
  return transformSync;
}

/**
 * Loads amaro and makes its first call, on a source of one line, unless that is done: ~0.15-0.2 s
 * here, against ~1.5 ms for a small snippet once warm. A strip whose time is bounded must start
 * its clock after this, or the load is charged to the job (src/prepare-thread.ts). A load that
 * fails is left to stripTypes(), which reports it as before.
 */
export function warmTypeScript(): void {
  if (transformSync !== undefined) return;
  try {
    loadAmaro()('let warm: number = 1', { mode: 'strip-only' });
  } catch {
    discardAmaro();
  }
}

/** Forgets the current amaro instance (its wasm memory may be corrupt) so the next call loads anew. */
function discardAmaro(): void {
  transformSync = undefined;
  const amaroDir = dirname(require.resolve('amaro'));
  for (const key of Object.keys(require.cache)) {
    if (key.startsWith(amaroDir)) delete require.cache[key];
  }
}

/** Deepest nesting of (, [ and {; strings and comments are counted too, which only errs on caution. */
function bracketDepth(source: string): number {
  let depth = 0;
  let deepest = 0;
  for (let index = 0; index < source.length; index++) {
    const char = source.charCodeAt(index);
    if (char === 0x28 || char === 0x5b || char === 0x7b) {
      if (++depth > deepest) deepest = depth;
    } else if ((char === 0x29 || char === 0x5d || char === 0x7d) && depth > 0) {
      depth--;
    }
  }
  return deepest;
}

function isAmaroError(error: unknown): error is AmaroError {
  return (
    typeof error === 'object' &&
    error !== null &&
    'code' in error &&
    (error.code === 'InvalidSyntax' || error.code === 'UnsupportedSyntax') &&
    'startLine' in error &&
    typeof error.startLine === 'number'
  );
}

function describe(error: AmaroError): StripTypesResult {
  // amaro counts columns from 0; people and V8 stack traces count them from 1.
  const line = error.startLine;
  const column = (typeof error.startColumn === 'number' ? error.startColumn : 0) + 1;
  const text = error.message.length > MAX_MESSAGE_CHARS ? `${error.message.slice(0, MAX_MESSAGE_CHARS)}…` : error.message;
  return { ok: false, error: { name: 'SyntaxError', message: `${text} (line ${line}, column ${column})`, line, column } };
}

function tooComplex(): Extract<StripTypesResult, { ok: false }> {
  return {
    ok: false,
    error: {
      name: 'SyntaxError',
      message: `TypeScript source is nested too deeply to compile (more than ${MAX_TYPESCRIPT_NESTING} levels)`,
      line: 1,
      column: 1,
    },
  };
}

/**
 * Removes the types from a TypeScript snippet. Never throws for anything in the source: a
 * TypeScript syntax error, or source too deeply nested for the parser, comes back as data.
 */
export function stripTypes(source: string): StripTypesResult {
  if (bracketDepth(source) > MAX_TYPESCRIPT_NESTING) return tooComplex();
  try {
    try {
      return { ok: true, code: loadAmaro()(source, { mode: 'strip-only' }).code };
    } catch (error) {
      if (!isAmaroError(error)) throw error;
      if (error.code !== 'UnsupportedSyntax') return describe(error);
    }
    try {
      return { ok: true, code: loadAmaro()(source, { mode: 'transform', sourceMap: false }).code };
    } catch (error) {
      if (!isAmaroError(error)) throw error;
      return describe(error);
    }
  } catch {
    // Not a diagnostic: the parser overflowed its stack (RangeError) or its wasm memory
    // (RuntimeError). Either may leave the instance corrupt, so it is dropped.
    discardAmaro();
    return { ...tooComplex(), unexpected: true };
  }
}

