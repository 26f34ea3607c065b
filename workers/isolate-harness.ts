// The in-isolate half of workers/isolate.ts: JavaScript source evaluated once in every fresh
// isolate's context (via evalClosure, before any snippet runs), never on the host.
//
// It returns one dispatcher function that only the host holds (as a Reference): nothing of it is
// put on the guest's global except `console`, the timer functions (isolate-timers.ts) and, per
// job, `input`. Everything the snippet can
// make slow or hostile — its code, thenables, toJSON, getters, proxies, thrown values — is touched
// here, inside the isolate, under the job's time limits; the host only ever receives strings and
// numbers. Intrinsics are captured at bootstrap (before any snippet runs) and called uncurried, so
// a snippet that replaces String.prototype.slice or Array.prototype[Symbol.iterator] breaks at
// most its own output, never the caps: the harness uses closure variables and null-prototype
// objects only, no iteration protocol, no spread, no prototype lookups on its own state.
//
// Closure arguments: $0 = flush(stream, kind, text, totalBytes) and $1 = settle(outcome), both
// isolated-vm Callbacks with `ignored: true` (fire-and-forget, arguments copied).
//
// Dispatcher operations (op, ...args):
//   'script'  (code, inputJson, maxOutputBytes, maxResultBytes, hostHeld) → 'done' | 'timers' | 'pending' | outcome
//   'begin'   (inputJson, maxOutputBytes, maxResultBytes, hostHeld)       → 'done'   (module form, before evaluate)
//   'module'  (entryNamespace)                                  → 'done' | 'timers' | 'pending' | outcome
//   'evaluated' (entryNamespace)                                → whether the module finished evaluating
//   'tick'    ()                                                → 'done' | 'timers' | 'pending' | outcome
//   'collect' ()                                                → output snapshot (after a limit hit)
//   'outcome' ()                                                → the outcome settled so far | 'none'
//   'warm'    ()                                                → 'done'   (once, before the code cache is made)
//   'prime'   ()                                                → 'done'   (in each spare, before its job)
// hostHeld: the host makes the job's calls synchronously (its thread waits for each, reading no
// callback until the call returns): the tail's handovers back off (see TAIL_FLUSH_INTERVAL_MS).
// Ticks are asynchronous calls, so the backoff ends at the first one.
// 'script', 'module' and 'tick' return the outcome itself (as settle() would hand it over) when
// the job settled during that call.
// 'timers': not settled, timers due (see isolate-timers.ts): the host asks for a tick. 'pending':
// not settled and nothing in the isolate can move any more; only a limit ends the job.
//
// A classic script runs through an indirect eval named snippet.js (one call into the isolate per
// job): its completion value is the script's, and a syntax error is told from a runtime one by its
// frames (then confirmed by the host). Unlike a <script>, its top-level let/const/class live only
// as long as the run, which no one can observe once the isolate is gone.
// An outcome settled during a dispatcher call is that call's value; one settled after it (by
// microtasks or timers) travels through settle(). An unhandled rejection left behind by the snippet
// makes isolated-vm reject the call itself: the host then asks for the outcome with 'outcome'.
//
// Result semantics (JSON.stringify, run here): functions, symbols and undefined are dropped in
// objects and become null in arrays; a top-level undefined/function/symbol gives no value. Cycles
// and BigInt are errors with phase 'result' (BigInt is not silently stringified: the caller would
// not know a number became text), and so is a result nested too deep or holding too many objects
// and arrays (MAX_RESULT_DEPTH, RESULT_BYTES_PER_CONTAINER). A result over maxResultBytes is replaced by the JSON of a string
// holding the head of the JSON text, cut on a UTF-8 boundary so that the replacement itself fits
// in maxResultBytes, and flagged truncated.

import { CONSOLE_SOURCE } from './isolate-console.ts';
import { TIMERS_SOURCE } from './isolate-timers.ts';

/** The snippet's file name in stack frames (scripts). Modules use SNIPPET_MODULE_FILENAME. */
export const SNIPPET_FILENAME = 'snippet.js';
export const SNIPPET_MODULE_FILENAME = 'snippet.mjs';
/** File name of the harness in stack frames; frames naming it are dropped from user stacks. */
export const HARNESS_FILENAME = 'sandpool:harness';
/** The module specifier the entry module uses for the snippet, and the entry module's name. */
export const SNIPPET_SPECIFIER = 'sandpool:snippet';
export const ENTRY_FILENAME = 'sandpool:entry';
/**
 * The module form runs the snippet as the only import of this entry module. `done` stays in its
 * temporal dead zone until the snippet's evaluation (top-level await included) has completed, which
 * is how the harness tells a finished module from one still waiting on a promise.
 */
export const ENTRY_SOURCE = `import * as snippet from '${SNIPPET_SPECIFIER}';\nexport const done = snippet;\n`;

/** Globals removed from every context: each defeats a limit or outlives the job. */
export const REMOVED_GLOBALS = Object.freeze([
  'WebAssembly', // compiled code and async compile callbacks run outside the job's time limits
  'FinalizationRegistry', // cleanup callbacks run after the job ended
  'WeakRef', // observes GC timing
  'SharedArrayBuffer', // shared memory + Atomics.wait can block the thread
  'Atomics',
] as const);

/** Members of Intl removed from every context: each keeps a native copy of text outside the heap limit. */
export const REMOVED_INTL = Object.freeze(['Segmenter', 'v8BreakIterator'] as const);

/**
 * Intl objects a job may make (constructors and Intl.Locale's maximize/minimize together): each
 * holds ICU memory outside the heap limit (see INTL_BUDGET in the prelude).
 */
export const MAX_INTL_OBJECTS = 1000;

/** Bytes of console output the isolate keeps before handing them to the host. */
export const FLUSH_BYTES = 8 * 1024;
/**
 * The in-isolate tail of the output is handed over at most this often while it keeps growing. While
 * the host is held in a synchronous call, each handover waits twice as long as the one before: the
 * host reads none of them before the call returns, and each holds up to half of maxOutputBytes.
 */
export const TAIL_FLUSH_INTERVAL_MS = 100;
export const MAX_ERROR_NAME_BYTES = 256;
export const MAX_ERROR_MESSAGE_BYTES = 4 * 1024;
export const MAX_ERROR_STACK_BYTES = 16 * 1024;
/**
 * Results nested deeper are an error: hosts serialise a Result recursively (JSON.stringify on its
 * way to Redis, to a terminal), and their stacks give out near 5000 levels.
 */
export const MAX_RESULT_DEPTH = 1000;
/**
 * A result may hold one object or array per this many bytes of its job's maxResultBytes (and
 * MIN_RESULT_CONTAINERS whatever the cap). The caller parses the result's JSON, and each object or
 * array costs it 40-72 bytes of heap against 2-6 bytes of text (an array of `{}` grows 21x:
 * 8 MiB of it took ~170 MiB of the caller's heap per Result, and a few such Results end the caller);
 * numbers and strings grow up to 6x (a non-integer number in a mixed array: 24 bytes of heap for
 * "0.5,"). At one per 16 bytes, a result at its cap parses into at most ~10x the cap (9.8x
 * measured: the allowance of `{}` and the rest in such numbers). Results of records and rows average well over 16 bytes apiece and fill the
 * cap (and are truncated) before they reach the count; only dense filler of tiny objects or arrays
 * meets it.
 */
export const RESULT_BYTES_PER_CONTAINER = 16;
export const MIN_RESULT_CONTAINERS = 10_000;

// Plain JavaScript (no template substitutions; the prelude's @NAME@ placeholders are filled from the
// constants above): it runs inside the isolate as is.
// The harness is PRELUDE (intrinsics, UTF-8, output streams), CONSOLE_SOURCE (isolate-console.ts),
// TIMERS_SOURCE (isolate-timers.ts), then CORE (errors, results, the dispatcher), all in one closure.
const PRELUDE = String.raw`
'use strict';
const flushHost = $0;
const settleHost = $1;
const G = globalThis;

// ---- intrinsics, captured before any snippet runs --------------------------------------------
const uncurry = Function.prototype.bind.bind(Function.prototype.call);
const apply = Reflect.apply;
const defineProperty = Reflect.defineProperty;
const deleteProperty = Reflect.deleteProperty;
const ownKeys = Reflect.ownKeys;
const getPrototypeOf = Reflect.getPrototypeOf;
const getOwnPropertyDescriptor = Reflect.getOwnPropertyDescriptor;
const isArray = Array.isArray;
const indirectEval = G.eval;
const stringify = JSON.stringify;
const parse = JSON.parse;
const StringCtor = String;
const charCodeAt = uncurry(String.prototype.charCodeAt);
const slice = uncurry(String.prototype.slice);
const indexOf = uncurry(String.prototype.indexOf);
const symbolToString = uncurry(Symbol.prototype.toString);
const dateNow = Date.now;
const floor = Math.floor;
const dateToISOString = uncurry(Date.prototype.toISOString);
const dateGetTime = uncurry(Date.prototype.getTime);
const regexpToString = uncurry(RegExp.prototype.toString);
const regexpExec = uncurry(RegExp.prototype.exec);
const isPrototypeOf = uncurry(Object.prototype.isPrototypeOf);
const promiseResolve = Promise.resolve.bind(Promise);
const promiseThen = uncurry(Promise.prototype.then);
const ErrorProto = Error.prototype;
const DateProto = Date.prototype;
const RegExpProto = RegExp.prototype;
const PromiseProto = Promise.prototype;
const MapProto = Map.prototype;
const SetProto = Set.prototype;
const mapSize = uncurry(getOwnPropertyDescriptor(Map.prototype, 'size').get);
const setSize = uncurry(getOwnPropertyDescriptor(Set.prototype, 'size').get);
const mapEntries = uncurry(Map.prototype.entries);
const setValues = uncurry(Set.prototype.values);
const mapIteratorNext = uncurry(getPrototypeOf(new Map().entries()).next);
const setIteratorNext = uncurry(getPrototypeOf(new Set().values()).next);
const isView = ArrayBuffer.isView;
const TypedArrayProto = getPrototypeOf(Uint8Array.prototype);
const typedArrayLength = uncurry(getOwnPropertyDescriptor(TypedArrayProto, 'length').get);
const typedArrayTag = uncurry(getOwnPropertyDescriptor(TypedArrayProto, Symbol.toStringTag).get);
const numberValueOf = uncurry(Number.prototype.valueOf);
const bigintValueOf = uncurry(BigInt.prototype.valueOf);
const objectToString = uncurry(Object.prototype.toString);
const TO_STRING_TAG = Symbol.toStringTag;
const stringValueOf = uncurry(String.prototype.valueOf);
const booleanValueOf = uncurry(Boolean.prototype.valueOf);
const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
const SOURCE_URL = '\n//# sourceURL=snippet.js';
const FLUSH_BYTES = @FLUSH_BYTES@;
const TAIL_FLUSH_INTERVAL_MS = @TAIL_FLUSH_INTERVAL_MS@;
const MAX_ERROR_NAME_BYTES = @MAX_ERROR_NAME_BYTES@;
const MAX_ERROR_MESSAGE_BYTES = @MAX_ERROR_MESSAGE_BYTES@;
const MAX_ERROR_STACK_BYTES = @MAX_ERROR_STACK_BYTES@;
const MAX_RESULT_DEPTH = @MAX_RESULT_DEPTH@;
const RESULT_BYTES_PER_CONTAINER = @RESULT_BYTES_PER_CONTAINER@;
const MIN_RESULT_CONTAINERS = @MIN_RESULT_CONTAINERS@;

// ---- JSON within a budget ---------------------------------------------------------------------
// JSON.stringify builds its text outside the heap limit, and the text can be far larger than the
// value: 'const a = []; a[1e8] = 1; a' is a few bytes of heap and 500 MB of "null,", and so are a
// value that holds one object many times, typed arrays, and getters or toJSON that make strings as
// they are read. boundedJson(value, budget) runs the native serialiser with a replacer that counts
// a lower bound of the text so far (string lengths, keys, 'null' for holes) and stops it once that
// passes the budget (in UTF-16 units, each at least a byte of UTF-8): it returns the text, undefined
// (JSON.stringify's undefined), or { head } when the text is larger than the budget — the text's
// first budget units, written by a second pass (getters and toJSON run again, for oversized values
// only). Errors other than the budget's (a cycle, a BigInt, a snippet's own throw) propagate.
const TOO_BIG = { __proto__: null };
// Nesting past MAX_RESULT_DEPTH stops the first pass too: with a replacer's frames on the stack the
// serialiser's own recursion would otherwise run out of stack somewhere past it.
const TOO_DEEP = { __proto__: null };
// And so do more objects and arrays than the cap allows (see maxResultContainers), with no walk over
// the rest of them.
const TOO_MANY = { __proto__: null };
let jsonContainers = 0;
let jsonMaxContainers = 0;
let jsonUnits = 0;
let jsonBudget = 0;
let countTop;
let countDepth = 0;
// A String, Number, Boolean or BigInt object is written as the primitive the serialiser would
// make of it (ToString, ToNumber, its boolean, its BigInt: a snippet's toString or valueOf runs, as
// it would natively), and the replacers hand that primitive on, so that what they count or write
// is what is serialised. Telling one takes a brand check that throws for anything else (~2.5 µs):
// only objects whose tag is not a plain one's get it. A tag is the brand's unless a string
// Symbol.toStringTag overrides it, which is read to tell.
function primitiveOf(v) {
  const tag = objectToString(v);
  if ((tag === '[object Object]' || tag === '[object Array]') && typeof v[TO_STRING_TAG] !== 'string') return v;
  // The conversions run outside the checks: a snippet's valueOf or toString that throws ends the
  // serialisation as it would natively.
  if (hasBrand(numberValueOf, v)) return +v;
  if (hasBrand(stringValueOf, v)) return StringCtor(v);
  if (hasBrand(booleanValueOf, v)) return booleanValueOf(v);
  if (hasBrand(bigintValueOf, v)) return bigintValueOf(v);
  return v;
}
function hasBrand(valueOf, v) {
  try {
    valueOf(v);
    return true;
  } catch (e) {
    return false;
  }
}
function countJson(key, v) {
  while (countTop !== undefined && countTop.holder !== this) {
    countTop = countTop.up;
    countDepth--;
  }
  if (typeof v === 'object' && v !== null) v = primitiveOf(v);
  const t = typeof v;
  const inArray = isArray(this);
  let n;
  // Each member or element is counted with a comma; an object or array with 1 for its brackets
  // (2, less the comma its first member does not have).
  if (t === 'string') n = v.length + 3;
  else if (t === 'number') n = (v - v === 0 ? StringCtor(v).length : 4) + 1;
  else if (t === 'boolean') n = 5;
  else if (t === 'bigint' || t === 'object') n = 1;
  else if (inArray) n = 5; // undefined, a function or a symbol: null in an array
  else return v; // and left out of an object
  if (!inArray) n += key.length + 3; // "key":
  jsonUnits += n;
  if (jsonUnits > jsonBudget) throw TOO_BIG;
  if (t === 'object' && v !== null) {
    if (++countDepth > MAX_RESULT_DEPTH) throw TOO_DEEP;
    if (++jsonContainers > jsonMaxContainers) throw TOO_MANY;
    countTop = { __proto__: null, holder: v, up: countTop };
  }
  return v;
}
// The second pass: the text itself, as the native serialiser writes it, up to the budget. It
// follows the serialiser's walk through the holder each call is made for (a frame per open
// object or array; a call for another holder means the ones above it were closed).
let headText = '';
let headTop;
function writeJson(key, v) {
  while (headTop !== undefined && headTop.holder !== this) {
    headText += headTop.array ? ']' : '}';
    headTop = headTop.up;
  }
  if (typeof v === 'object' && v !== null) v = primitiveOf(v);
  const t = typeof v;
  let text;
  if (v === null) text = 'null';
  else if (t === 'boolean') text = v ? 'true' : 'false';
  else if (t === 'number') text = v - v === 0 ? StringCtor(v) : 'null';
  else if (t === 'string') {
    const room = jsonBudget - headText.length;
    text = stringify(v.length > room ? slice(v, 0, room > 0 ? room : 0) : v);
  } else if (t === 'object') text = isArray(v) ? '[' : '{';
  else if (t === 'bigint') return v; // the serialiser throws its TypeError
  if (headTop !== undefined) {
    if (headTop.array) {
      if (text === undefined) text = 'null';
      if (headTop.count++ > 0) text = ',' + text;
    } else {
      if (text === undefined) return v;
      text = (headTop.count++ > 0 ? ',' : '') + stringify(key) + ':' + text;
    }
  }
  if (text !== undefined) headText += text;
  if (t === 'object' && v !== null) headTop = { __proto__: null, holder: v, array: isArray(v), count: 0, up: headTop };
  if (headText.length > jsonBudget) throw TOO_BIG;
  return v;
}
function boundedJson(value, budget, maxContainers) {
  // Primitives whose text is bounded by their type take the native path: most results are such.
  // (No toJSON is looked up for them; a BigInt's and a function's are, so those go the long way.)
  const t = typeof value;
  if (value === null || t === 'number' || t === 'boolean' || t === 'undefined' || t === 'symbol') return stringify(value);
  if (t === 'string' && value.length * 6 <= budget) return stringify(value);
  // A toJSON, getter or trap of this value may itself print with %j, which runs a pass of its own
  // in the middle of this one: this pass's state is kept aside meanwhile, and put back after.
  const outer = {
    __proto__: null,
    jsonUnits, jsonBudget, jsonContainers, jsonMaxContainers, countTop, countDepth, headText, headTop,
  };
  jsonUnits = -3; // the root's call counts a key the text does not have
  jsonBudget = budget;
  jsonContainers = 0;
  jsonMaxContainers = maxContainers;
  countTop = undefined;
  countDepth = 0;
  try {
    try {
      return stringify(value, countJson);
    } catch (e) {
      if (e !== TOO_BIG) throw e;
    }
    countTop = undefined;
    headText = '';
    headTop = undefined;
    try {
      // Smaller the second time (a snippet's getters need not agree with themselves): the text as is.
      const again = stringify(value, writeJson);
      return again === undefined || again.length <= budget ? again : { __proto__: null, head: slice(again, 0, budget) };
    } catch (e) {
      if (e !== TOO_BIG) throw e;
      return { __proto__: null, head: headText };
    }
  } finally {
    jsonUnits = outer.jsonUnits;
    jsonBudget = outer.jsonBudget;
    jsonContainers = outer.jsonContainers;
    jsonMaxContainers = outer.jsonMaxContainers;
    countTop = outer.countTop;
    countDepth = outer.countDepth;
    headText = outer.headText;
    headTop = outer.headTop;
  }
}

// ---- globals that defeat the limits -------------------------------------------------------------
const REMOVED = @REMOVED_GLOBALS@;
for (let i = 0; i < REMOVED.length; i++) deleteProperty(G, REMOVED[i]);
// Text segmenters keep an ICU copy of the text they segment, off the V8 heap: 60 live iterators over
// 9 MB took an executor past 2 GB under a 64 MB limit.
const REMOVED_INTL = @REMOVED_INTL@;
if (typeof G.Intl === 'object' && G.Intl !== null) for (let i = 0; i < REMOVED_INTL.length; i++) deleteProperty(G.Intl, REMOVED_INTL[i]);

// Resizable ArrayBuffers: V8 reserves a buffer's maxByteLength with its own page allocator and
// commits pages on resize(), outside the ArrayBuffer allocator that isolated-vm's memory limit
// counts, and the heap statistics do not show them (1 GiB grown and touched under a 64 MiB limit
// ended ok). No V8 flag turns them off in Node 24, so the global ArrayBuffer becomes a constructor
// that refuses a maxByteLength and makes every other buffer with the original, which nothing a
// snippet can reach refers to any more: the two share one prototype (instanceof holds for every
// buffer, the ones built-ins make included), whose constructor is now this one, and subclasses
// reach the original only through it (new.target is passed on). A built-in frame never hands out its
// function to Error.prepareStackTrace, so the original does not leak through call sites either.
// Growable SharedArrayBuffers need SharedArrayBuffer, which is removed above.
const OriginalArrayBuffer = G.ArrayBuffer;
const construct = Reflect.construct;
const TypeErrorCtor = TypeError;
// Puts Wrapper where Original stood for everything a snippet can reach: Original's static members,
// its prototype as Wrapper's (instanceof, subclasses), and Wrapper as that prototype's constructor.
// The constructor is set by a plain store into the property that exists (writable, not enumerable,
// configurable: it stays so): redefining built-ins' properties with defineProperty made V8 take
// slower paths in every later call of the job, ~0.06 ms of a trivial job's ~0.13 ms in the isolate.
function standIn(Wrapper, Original) {
  const keys = ownKeys(Original);
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i];
    if (key !== 'prototype') defineProperty(Wrapper, key, getOwnPropertyDescriptor(Original, key));
  }
  defineProperty(Wrapper, 'prototype', { __proto__: null, value: Original.prototype, writable: false, enumerable: false, configurable: false });
  Original.prototype.constructor = Wrapper;
  return Wrapper;
}
const FixedArrayBuffer = function ArrayBuffer(length, options) {
  if (new.target === undefined) throw new TypeErrorCtor("Constructor ArrayBuffer requires 'new'");
  if (options !== null && (typeof options === 'object' || typeof options === 'function') && options.maxByteLength !== undefined) {
    throw new TypeErrorCtor('resizable ArrayBuffers (maxByteLength) are not available in sandpool: their memory is not counted against the job\'s memory limit');
  }
  return construct(OriginalArrayBuffer, [length], new.target);
};
// A plain store too, as standIn's (see there).
G.ArrayBuffer = standIn(FixedArrayBuffer, OriginalArrayBuffer);

// Intl objects keep ICU state off the V8 heap that the heap limit does not count, and the
// executor keeps the pages after the isolate is gone: 31k kept DateTimeFormats showed 5.6 MB of
// heap and took 427 MB of RSS, which then got a later, innocent job on that executor blamed
// memory_limit. Removing Intl would break ordinary code (formatters, and Intl.* as toLocaleString's
// options), and toLocaleString and localeCompare make only temporaries the collector frees (V8
// caches one per kind). So each job may make MAX_INTL_OBJECTS of them — every Intl constructor
// and Intl.Locale's maximize/minimize, which make a new Locale — and the next one is a
// RangeError. The costliest measured here, DateTimeFormat, takes ~27 KiB of RSS each (~80 KiB
// once it has formatted a range; the others 1-9 KiB): a full budget is 26-80 MB, and 30 jobs
// spending it in a row, all in one locale, left the RSS flat. ICU's own process-wide cache, one
// entry per locale name formatted, is not this budget's to bound: the pool replaces an executor
// whose memory passes recycleAboveMb (src/pool-options.ts). A count of creations is the bound
// (live objects cannot be told without WeakRef): a snippet that makes a formatter per value in a
// long loop meets it, and the message says to reuse one. Each wrapper stands in for its original
// as ArrayBuffer's does above (standIn); called without new it calls the original without new
// (Collator, DateTimeFormat and NumberFormat make an instance then; the others throw their own
// TypeError).
const INTL_BUDGET = @MAX_INTL_OBJECTS@;
let intlMade = 0;
const RangeErrorCtor = RangeError;
function spendIntl(kind) {
  if (++intlMade > INTL_BUDGET) {
    throw new RangeErrorCtor('Intl budget exceeded: a job may make at most ' + INTL_BUDGET + ' Intl objects (this one: ' + kind +
      '), as their ICU memory is outside the job\'s memory limit; make one formatter and reuse it');
  }
}
function budgetedIntl(name, Original) {
  const Wrapper = function () {
    spendIntl('Intl.' + name);
    return new.target === undefined ? apply(Original, this, arguments) : construct(Original, arguments, new.target);
  };
  return standIn(Wrapper, Original);
}
function budgetedMethod(proto, name, kind) {
  const original = proto[name];
  if (typeof original !== 'function') return;
  // A method, not a constructor (new on it throws, as on the original); name and length kept.
  const wrapper = {
    [name]() {
      spendIntl(kind);
      return apply(original, this, arguments);
    },
  }[name];
  defineProperty(wrapper, 'length', getOwnPropertyDescriptor(original, 'length'));
  proto[name] = wrapper;
}
const IntlObject = G.Intl;
if (typeof IntlObject === 'object' && IntlObject !== null) {
  const names = ownKeys(IntlObject);
  for (let i = 0; i < names.length; i++) {
    const name = names[i];
    if (typeof name !== 'string') continue;
    const Original = IntlObject[name];
    // The constructors are the members with a prototype (getCanonicalLocales and supportedValuesOf have none).
    if (typeof Original !== 'function' || typeof Original.prototype !== 'object') continue;
    IntlObject[name] = budgetedIntl(name, Original);
    if (name === 'Locale') {
      budgetedMethod(Original.prototype, 'maximize', 'Intl.Locale.prototype.maximize');
      budgetedMethod(Original.prototype, 'minimize', 'Intl.Locale.prototype.minimize');
    }
  }
}

// ---- UTF-8 measuring and cutting (never splits a surrogate pair) ------------------------------
const NON_ASCII = /[^\x00-\x7f]/;
function utf8Length(s) {
  const n = s.length;
  let bytes = n;
  let i = 0;
  if (n > 64) {
    // Long text is mostly ASCII: let the regexp engine find the first byte that is not.
    const m = regexpExec(NON_ASCII, s);
    if (m === null) return n;
    i = m.index;
  }
  for (; i < n; i++) {
    const c = charCodeAt(s, i);
    if (c < 0x80) continue;
    if (c < 0x800) { bytes += 1; continue; }
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < n) {
      const d = charCodeAt(s, i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) { bytes += 2; i++; continue; }
    }
    bytes += 2; // lone surrogates are written as U+FFFD: 3 bytes
  }
  return bytes;
}
// Width in UTF-8 of the code point starting (forward) at i: [bytes, code units].
function widthAt(s, i) {
  const c = charCodeAt(s, i);
  if (c < 0x80) return 1;
  if (c < 0x800) return 2;
  if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
    const d = charCodeAt(s, i + 1);
    if (d >= 0xdc00 && d <= 0xdfff) return 4;
  }
  return 3;
}
let cutBytes = 0; // side result of the two cutters below: bytes kept
// Longest prefix of s within maxBytes; returns its length in code units.
function prefixUnits(s, maxBytes) {
  let bytes = 0;
  let i = 0;
  const n = s.length;
  while (i < n) {
    const w = widthAt(s, i);
    if (bytes + w > maxBytes) break;
    bytes += w;
    i += w === 4 ? 2 : 1;
  }
  cutBytes = bytes;
  return i;
}
// Longest suffix of s within maxBytes; returns its start index.
function suffixStart(s, maxBytes) {
  let bytes = 0;
  let i = s.length;
  while (i > 0) {
    let start = i - 1;
    const c = charCodeAt(s, start);
    let w;
    if (c < 0x80) w = 1;
    else if (c < 0x800) w = 2;
    else if (c >= 0xdc00 && c <= 0xdfff && start > 0) {
      const h = charCodeAt(s, start - 1);
      if (h >= 0xd800 && h <= 0xdbff) { w = 4; start--; } else w = 3;
    } else w = 3;
    if (bytes + w > maxBytes) break;
    bytes += w;
    i = start;
  }
  cutBytes = bytes;
  return i;
}
function capString(s, maxBytes) {
  if (s.length * 3 <= maxBytes) return s;
  const end = prefixUnits(s, maxBytes);
  return end === s.length ? s : slice(s, 0, end);
}

// ---- output: head and tail kept, everything counted -------------------------------------------
// Harness state objects are built by constructors whose prototype has a null prototype: own
// properties only, no inherited setter a snippet could plant, and V8 keeps them fast (a literal
// with __proto__: null would be a slow dictionary object).
const NULL_PROTO = Object.create(null);
function Stream(index, cap) {
  const headCap = cap >= 0 ? (cap - cap % 2) / 2 : 0;
  this.index = index;
  this.cap = cap;
  this.headCap = headCap;
  this.tailCap = cap - headCap;
  this.total = 0;
  this.head = '';
  this.headBytes = 0;
  this.headOpen = true;
  this.headFlushed = 0;
  this.writes = 0;
  this.tail = '';
  this.tailBytes = 0;
  this.tailDirty = 0;
  this.tailFlushedAt = 0;
  this.tailInterval = TAIL_FLUSH_INTERVAL_MS;
}
Stream.prototype = NULL_PROTO;
function makeStream(index, cap) {
  return new Stream(index, cap);
}
let out = makeStream(0, 0);
let err = makeStream(1, 0);
let maxResultBytes = 0;
let maxResultContainers = MIN_RESULT_CONTAINERS;
// The host reads no handover until the current call returns: every tail handed over in the
// meantime waits in its thread's queue, a copy of up to half the cap each.
let hostHeld = false;

// The tail may use whatever the head left: the head closes on a character boundary, possibly short
// of its half, and output that fits in the cap as a whole is never cut.
function trimTail(st) {
  const budget = st.cap - st.headBytes;
  if (st.tailBytes <= budget) return;
  const start = suffixStart(st.tail, budget);
  st.tail = slice(st.tail, start);
  st.tailBytes = cutBytes;
}
function flushHead(st) {
  if (st.headFlushed < st.head.length) {
    const chunk = slice(st.head, st.headFlushed);
    st.headFlushed = st.head.length;
    flushHost(st.index, 'head', chunk, st.total);
  }
}
let lateNotified = false;
function write(st, text) {
  // Printed after the outcome was settled (by microtasks still running): the host collects the
  // output again once the isolate is idle. One notice, however much is printed.
  if (settled && !lateNotified) {
    lateNotified = true;
    // The outcome a call returns is copied once the call's microtasks ran: the mark reaches the
    // host with it, whether or not this notice has arrived by the time the host reads the value.
    if (held !== undefined) held.late = true;
    flushHost(st.index, 'late', '', 0);
  }
  let n = utf8Length(text);
  st.total += n;
  if (st.headOpen) {
    const room = st.headCap - st.headBytes;
    if (n <= room) {
      st.head += text;
      st.headBytes += n;
      // Handed over at the 1st, 2nd, 4th, 8th... write and every FLUSH_BYTES: a job killed while
      // busy keeps what it printed early, for a few calls per job however much it prints.
      const writes = ++st.writes;
      if ((writes & (writes - 1)) === 0 || st.head.length - st.headFlushed >= FLUSH_BYTES) flushHead(st);
      return;
    }
    const end = prefixUnits(text, room);
    st.head += slice(text, 0, end);
    st.headBytes += cutBytes;
    st.headOpen = false;
    flushHead(st);
    n -= cutBytes;
    text = slice(text, end);
  }
  if (st.tailCap === 0) return;
  st.tail += text;
  st.tailBytes += n;
  st.tailDirty += n;
  if (st.tailBytes > 2 * st.tailCap + FLUSH_BYTES) trimTail(st);
  if (st.tailDirty >= FLUSH_BYTES) {
    const now = dateNow();
    if (now - st.tailFlushedAt >= st.tailInterval) {
      // The first handover waits for nothing; after it, 0.1 s, then (host held) 0.2, 0.4...
      if (hostHeld && st.tailFlushedAt !== 0) st.tailInterval *= 2;
      trimTail(st);
      st.tailDirty = 0;
      st.tailFlushedAt = now;
      flushHost(st.index, 'tail', st.tail, st.total);
    }
  }
}
function snapshot() {
  trimTail(out);
  trimTail(err);
  return new Snapshot();
}
function Snapshot() {
  this.stdoutHead = out.head;
  this.stdoutTail = out.tail;
  this.stdoutTotalBytes = out.total;
  this.stderrHead = err.head;
  this.stderrTail = err.tail;
  this.stderrTotalBytes = err.total;
  this.status = 'ok';
  this.truncatedValue = false;
}
Snapshot.prototype = NULL_PROTO;
`;

const CORE = String.raw`
// ---- errors as plain strings --------------------------------------------------------------------
function text(v) {
  if (typeof v === 'string') return v;
  if (v === undefined) return '';
  return StringCtor(v);
}
function describe(e, phase) {
  try {
    if (e !== null && (typeof e === 'object' || typeof e === 'function') && isPrototypeOf(ErrorProto, e)) {
      const name = capString(text(e.name), MAX_ERROR_NAME_BYTES) || 'Error';
      const message = capString(text(e.message), MAX_ERROR_MESSAGE_BYTES);
      const stack = e.stack;
      const d = { __proto__: null, name, message, phase };
      if (typeof stack === 'string') d.stack = capString(stack, MAX_ERROR_STACK_BYTES);
      return d;
    }
    return { __proto__: null, name: 'NonError', message: capString('thrown value: ' + formatValue(e), MAX_ERROR_MESSAGE_BYTES), phase };
  } catch (ignored) {
    // The thrown value fought back (a throwing getter, a revoked proxy): describe it no further.
    return { __proto__: null, name: 'NonError', message: 'a value was thrown that could not be described', phase };
  }
}
// An error with no snippet frame may have been raised by parsing the snippet itself (a SyntaxError,
// or a RangeError when the code nests deeper than the parser's stack). The host confirms it by
// compiling the code, which also yields the line and column V8 does not put in the message.
function isCompileError(e) {
  try {
    if (e === null || typeof e !== 'object' || !isPrototypeOf(ErrorProto, e)) return false;
    const stack = e.stack;
    return typeof stack !== 'string' || indexOf(stack, 'snippet.js:') === -1;
  } catch (ignored) {
    return false;
  }
}

// ---- settling a job -----------------------------------------------------------------------------
let settled = false;
let warming = false;
// While a dispatcher call runs, an outcome is held and returned as the call's value (one crossing
// instead of a callback and a return); settled later, by microtasks or timers, it goes to settle().
let inCall = false;
let held;
function settle(outcome) {
  if (settled) return;
  if (warming) {
    outcomeOf(outcome);
    return;
  }
  settled = true;
  const o = outcomeOf(outcome);
  held = o;
  if (!inCall) settleHost(o);
}
function outcomeOf(outcome) {
  const o = snapshot();
  o.status = outcome.status;
  o.truncatedValue = outcome.truncatedValue === true;
  if (outcome.valueJson !== undefined) o.valueJson = outcome.valueJson;
  if (outcome.error !== undefined) o.error = outcome.error;
  return o;
}
function settleError(e, phase) {
  settle({ __proto__: null, status: 'error', error: describe(e, phase) });
}
// Escaped length in UTF-8 of s as a JSON string body (without the quotes), for the truncation cut.
function jsonHead(json, maxBytes) {
  const budget = maxBytes - 2;
  let bytes = 0;
  let i = 0;
  while (i < json.length) {
    const c = charCodeAt(json, i);
    const w = c === 34 || c === 92 ? 2 : c < 0x20 ? 6 : widthAt(json, i);
    if (bytes + w > budget) break;
    bytes += w;
    i += w === 4 ? 2 : 1;
  }
  return stringify(slice(json, 0, i));
}
// What is wrong with the shape of JSON text: 'deep' when it nests arrays and objects deeper than
// MAX_RESULT_DEPTH, 'many' when it holds more than maxResultContainers of them, '' when neither.
// Text too short for either (each needs two characters) is not read.
function resultShapeError(json) {
  if (json.length <= 2 * MAX_RESULT_DEPTH && json.length <= 2 * maxResultContainers) return '';
  let depth = 0;
  let containers = 0;
  let inString = false;
  for (let i = 0; i < json.length; i++) {
    const c = charCodeAt(json, i);
    if (inString) {
      if (c === 92) i++;
      else if (c === 34) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 91 || c === 123) {
      if (++depth > MAX_RESULT_DEPTH) return 'deep';
      if (++containers > maxResultContainers) return 'many';
    } else if (c === 93 || c === 125) depth--;
  }
  return '';
}
function settleShapeError(shape) {
  const message = shape === 'deep'
    ? 'the result is nested more than ' + MAX_RESULT_DEPTH + ' levels deep'
    : 'the result holds more than ' + maxResultContainers + ' objects and arrays (one per ' + RESULT_BYTES_PER_CONTAINER +
      ' bytes of maxResultBytes, at least ' + MIN_RESULT_CONTAINERS + '): each costs the caller far more memory parsed than its text';
  settle({ __proto__: null, status: 'error', error: { __proto__: null, name: 'RangeError', message, phase: 'result' } });
}
function settleValue(v) {
  let json;
  try {
    // Within the cap (and three bytes more, so that a text just over it still is one).
    json = boundedJson(v, maxResultBytes + 3, maxResultContainers);
  } catch (e) {
    if (e === TOO_DEEP || e === TOO_MANY) {
      settleShapeError(e === TOO_DEEP ? 'deep' : 'many');
      return;
    }
    const d = describe(e, 'result');
    d.message = capString('the result is not JSON-serialisable: ' + d.message, MAX_ERROR_MESSAGE_BYTES);
    settle({ __proto__: null, status: 'error', error: d });
    return;
  }
  if (json === undefined) { settle({ __proto__: null, status: 'ok' }); return; }
  if (typeof json === 'object') {
    settle({ __proto__: null, status: 'ok', valueJson: jsonHead(json.head, maxResultBytes), truncatedValue: true });
    return;
  }
  if (json.length > (maxResultBytes - maxResultBytes % 3) / 3 && utf8Length(json) > maxResultBytes) {
    settle({ __proto__: null, status: 'ok', valueJson: jsonHead(json, maxResultBytes), truncatedValue: true });
    return;
  }
  const shape = resultShapeError(json);
  if (shape !== '') {
    settleShapeError(shape);
    return;
  }
  settle({ __proto__: null, status: 'ok', valueJson: json });
}
function finish(value) {
  let thenable = false;
  if (value !== null && (typeof value === 'object' || typeof value === 'function')) {
    try {
      thenable = typeof value.then === 'function';
    } catch (e) {
      settleError(e, 'result');
      return 'done';
    }
  }
  if (!thenable) { settleValue(value); return 'done'; }
  try {
    promiseThen(promiseResolve(value), settleValue, (e) => settleError(e, 'runtime'));
  } catch (e) {
    settleError(e, 'runtime');
    return 'done';
  }
  return settled ? 'done' : 'pending';
}
// What the host does next: 'done' (settled), 'timers' (ask for a tick), or 'pending' (nothing in
// the isolate can move any more: only a limit ends the job).
function afterRun(state) {
  if (state === 'done' || settled) return 'done';
  return liveTimerCount > 0 ? 'timers' : 'pending';
}
// The module form, once its entry module was evaluated (and again after timers, while pending).
let pendingEntry;
function moduleStep(entry) {
  let snippet;
  try {
    snippet = entry.done; // throws while the entry module (so the snippet) has not finished evaluating
  } catch (ignored) {
    pendingEntry = entry;
    return afterRun('pending');
  }
  pendingEntry = undefined;
  let value;
  try {
    value = snippet.default;
    if (typeof value === 'function') value = apply(value, undefined, [G.input]);
  } catch (e) {
    settleError(e, 'runtime');
    return 'done';
  }
  return afterRun(finish(value));
}
function begin(inputJson, maxOutputBytes, resultCap, callsHoldHost) {
  out = makeStream(0, maxOutputBytes);
  err = makeStream(1, maxOutputBytes);
  hostHeld = callsHoldHost === true;
  maxResultBytes = resultCap;
  const perBytes = floor(resultCap / RESULT_BYTES_PER_CONTAINER);
  maxResultContainers = perBytes > MIN_RESULT_CONTAINERS ? perBytes : MIN_RESULT_CONTAINERS;
  intlMade = 0;
  // No snippet has run yet: the plain store hits the data property defined at bootstrap.
  G.input = inputJson === undefined ? undefined : parse(inputJson);
}
defineProperty(G, 'input', { __proto__: null, value: undefined, writable: true, enumerable: true, configurable: true });

function dispatch(op, a, b, c, d, e) {
  if (op === 'script') {
    begin(b, c, d, e);
    let value;
    try {
      value = indirectEval(a + SOURCE_URL);
    } catch (e) {
      settleError(e, isCompileError(e) ? 'compile' : 'runtime');
      return 'done';
    }
    return afterRun(finish(value));
  }
  if (op === 'begin') { begin(a, b, c, d); return 'done'; }
  if (op === 'evaluated') {
    try {
      return a.done !== undefined; // throws while the entry module has not finished evaluating
    } catch (ignored) {
      return false;
    }
  }
  if (op === 'module') return moduleStep(a);
  if (op === 'tick') {
    if (hostHeld) {
      hostHeld = false;
      out.tailInterval = TAIL_FLUSH_INTERVAL_MS;
      err.tailInterval = TAIL_FLUSH_INTERVAL_MS;
    }
    if (settled) return 'done';
    if (pendingEntry !== undefined) {
      const state = moduleStep(pendingEntry);
      if (pendingEntry === undefined) return state; // the module finished: its default export ran
    }
    if (!runOneTimer()) return afterRun('pending');
    return settled ? 'done' : 'timers'; // this timer's microtasks run next: look again after them
  }
  if (op === 'collect') return snapshot();
  if (op === 'outcome') return held === undefined ? 'none' : held;
  if (op === 'warm' || op === 'prime') {
    // 'warm' runs in the isolate the code cache is made from (and in spares when there is no
    // cache): V8 compiles functions on their first call, and the job should not pay for compiling
    // the harness. Only the common path (input, console, a JSON result): errors or truncation are
    // rare enough to compile on demand.
    // 'prime' runs in each spare while it waits for a job: a fresh isolate pays for its first call,
    // first eval and every first-seen object shape, about a quarter of a trivial job's time in the
    // isolate. The cheapest job (no input, no output) settles here so that the job does not.
    // Nothing reaches the host either way, and state is reset.
    const full = op === 'warm';
    warming = true;
    try {
      begin(full ? '{"warm":[1]}' : undefined, 1024, 1024);
      if (full) emit(out, formatArgs(['warm %s', 1, { a: [1, 'b'] }, -0]));
      finish(indirectEval((full ? '({ warm: [input] })' : '0') + SOURCE_URL));
    } finally {
      warming = false;
      begin(undefined, 0, 0);
    }
    return 'done';
  }
  return 'unknown';
}
return function harness(op, a, b, c, d, e) {
  inCall = true;
  const wasSettled = settled;
  let state;
  try {
    state = dispatch(op, a, b, c, d, e);
  } finally {
    inCall = false;
  }
  // Settled during this call: the outcome is the value (the host reads it like settle()'s).
  return !wasSettled && settled ? held : state;
};
`;

// The prelude's @NAME@ placeholders take this module's constants, so each is declared once.
const PRELUDE_CONSTANTS: Readonly<Record<string, string>> = {
  REMOVED_GLOBALS: JSON.stringify(REMOVED_GLOBALS),
  REMOVED_INTL: JSON.stringify(REMOVED_INTL),
  FLUSH_BYTES: String(FLUSH_BYTES),
  TAIL_FLUSH_INTERVAL_MS: String(TAIL_FLUSH_INTERVAL_MS),
  MAX_ERROR_NAME_BYTES: String(MAX_ERROR_NAME_BYTES),
  MAX_ERROR_MESSAGE_BYTES: String(MAX_ERROR_MESSAGE_BYTES),
  MAX_ERROR_STACK_BYTES: String(MAX_ERROR_STACK_BYTES),
  MAX_RESULT_DEPTH: String(MAX_RESULT_DEPTH),
  RESULT_BYTES_PER_CONTAINER: String(RESULT_BYTES_PER_CONTAINER),
  MIN_RESULT_CONTAINERS: String(MIN_RESULT_CONTAINERS),
  MAX_INTL_OBJECTS: String(MAX_INTL_OBJECTS),
};
const prelude = PRELUDE.replace(/@([A-Z_]+)@/g, (placeholder, name: string) => PRELUDE_CONSTANTS[name] ?? placeholder);

/** The closure body handed to isolated-vm's evalClosure ($0 = flush, $1 = settle). */
export const HARNESS_SOURCE: string = prelude + CONSOLE_SOURCE + TIMERS_SOURCE + CORE;
