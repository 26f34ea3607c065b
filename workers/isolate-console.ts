// Part of the in-isolate harness (see isolate-harness.ts): the `console` the snippet sees. This
// source runs inside every isolate's harness closure, never on the host, between the harness's
// prelude and core; it uses the prelude's captured intrinsics (uncurried String/Reflect/Map/Set
// helpers, stringify, dateNow), its UTF-8 cutters and its output streams (`out`, `err`, `write`).
//
// Values are formatted here, inspect-like: strings as they are at the top level, other values
// bounded in depth (MAX_DEPTH), items (MAX_ITEMS) and length (MAX_FORMATTED), cycle-safe, and
// without invoking getters (property descriptors are read instead). A proxy's traps and a
// thrown-away toString still run, inside the isolate, under the job's time limits.

/** Closure source (plain JavaScript, no template substitutions). */
export const CONSOLE_SOURCE = String.raw`
// ---- formatting for console (inspect-like, bounded, cycle-safe) -------------------------------
// No getter is invoked, except an Error's stack, name and message, read as Node prints them.
const MAX_DEPTH = 2;
const MAX_ITEMS = 100;
const MAX_FORMATTED = 16 * 1024;
/** The part of a stack that cleanStack reads. */
const MAX_STACK_SCAN = 4 * MAX_FORMATTED;
/** console.group nests without end, but indents at most this many levels (two spaces each). */
const MAX_GROUP_INDENT_LEVELS = 32;

function quote(s) {
  if (indexOf(s, "'") === -1 && indexOf(s, '\n') === -1 && indexOf(s, '\\') === -1) return "'" + s + "'";
  return stringify(s);
}
// A stack as the snippet should see it printed: the header lines, then frames up to the last
// snippet frame, without the harness's own frames; top-level frames read 'at snippet.js:L:C'.
function cleanStack(stack, framesOnly) {
  // Only its head is ever shown: a snippet's own stack property may be megabytes of lines.
  if (stack.length > MAX_STACK_SCAN) stack = slice(stack, 0, MAX_STACK_SCAN);
  let header = '';
  let frames = '';
  let pending = '';
  let inFrames = false;
  let from = 0;
  while (from <= stack.length) {
    let nl = indexOf(stack, '\n', from);
    if (nl === -1) nl = stack.length;
    const line = slice(stack, from, nl);
    from = nl + 1;
    if (indexOf(line, '    at ') === 0) {
      inFrames = true;
      if (indexOf(line, 'sandpool:') !== -1) continue;
      if (indexOf(line, 'snippet.') === -1) { pending += '\n' + line; continue; }
      const top = indexOf(line, '    at eval (snippet.');
      frames += pending + '\n' + (top === 0 ? '    at ' + slice(line, 13, line.length - 1) : line);
      pending = '';
    } else if (!inFrames) header += (header === '' ? '' : '\n') + line;
  }
  return framesOnly ? frames : header + frames;
}
function formatKey(key) {
  if (typeof key === 'symbol') return '[' + symbolToString(key) + ']';
  return regexpExec(IDENTIFIER, key) !== null ? key : quote(key);
}
function functionName(fn) {
  const d = getOwnPropertyDescriptor(fn, 'name');
  const name = d !== undefined && typeof d.value === 'string' ? d.value : '';
  return name === '' ? '[Function (anonymous)]' : '[Function: ' + name + ']';
}
function constructorName(value) {
  const proto = getPrototypeOf(value);
  if (proto === null) return null;
  const d = getOwnPropertyDescriptor(proto, 'constructor');
  if (d === undefined || typeof d.value !== 'function') return '';
  const n = getOwnPropertyDescriptor(d.value, 'name');
  return n !== undefined && typeof n.value === 'string' ? n.value : '';
}
function formatPrimitive(v) {
  switch (typeof v) {
    case 'string': return quote(v);
    case 'number': return v === 0 && 1 / v < 0 ? '-0' : StringCtor(v);
    case 'bigint': return StringCtor(v) + 'n';
    case 'symbol': return symbolToString(v);
    case 'function': return functionName(v);
    default: return StringCtor(v);
  }
}
function inspect(v, depth, seen) {
  if (v === null || (typeof v !== 'object' && typeof v !== 'function')) return formatPrimitive(v);
  if (typeof v === 'function') return functionName(v);
  for (let i = 0; i < seen.length; i++) if (seen[i] === v) return '[Circular]';
  if (isPrototypeOf(ErrorProto, v)) {
    const stack = v.stack;
    if (typeof stack === 'string') return cleanStack(stack, false);
    return StringCtor(v.name) + ': ' + StringCtor(v.message);
  }
  if (isPrototypeOf(DateProto, v)) return dateGetTime(v) === dateGetTime(v) ? dateToISOString(v) : 'Invalid Date';
  if (isPrototypeOf(RegExpProto, v)) return regexpToString(v);
  if (isPrototypeOf(PromiseProto, v)) return 'Promise {}';
  const isArr = isArray(v);
  if (depth > MAX_DEPTH) return isArr ? '[Array]' : '[Object]';
  seen[seen.length] = v;
  let s;
  try {
    if (isArr) s = formatList(v, v.length, '', '[', ']', depth, seen, true);
    else if (isView(v) && typedArrayTag(v) !== undefined) {
      const n = typedArrayLength(v);
      s = formatList(v, n, typedArrayTag(v) + '(' + n + ') ', '[', ']', depth, seen, false);
    } else if (isPrototypeOf(MapProto, v)) s = formatMap(v, depth, seen);
    else if (isPrototypeOf(SetProto, v)) s = formatSet(v, depth, seen);
    else s = formatObject(v, depth, seen);
  } finally {
    seen.length = seen.length - 1;
  }
  return s;
}
function formatList(v, n, prefix, open, close, depth, seen, holes) {
  let s = prefix + open;
  const shown = n < MAX_ITEMS ? n : MAX_ITEMS;
  for (let i = 0; i < shown; i++) {
    let item;
    if (holes) {
      const d = getOwnPropertyDescriptor(v, i);
      item = d === undefined ? '<empty>' : 'value' in d ? inspect(d.value, depth + 1, seen) : '[Getter]';
    } else item = inspect(v[i], depth + 1, seen);
    s += (i === 0 ? ' ' : ', ') + item;
    if (s.length > MAX_FORMATTED) return s + ' ... ' + close;
  }
  if (n > shown) s += ', ... ' + (n - shown) + ' more items';
  return s + (n === 0 ? close : ' ' + close);
}
function formatMap(v, depth, seen) {
  const n = mapSize(v);
  let s = 'Map(' + n + ') {';
  const it = mapEntries(v);
  for (let i = 0; i < n && i < MAX_ITEMS; i++) {
    const r = mapIteratorNext(it);
    if (r.done) break;
    s += (i === 0 ? ' ' : ', ') + inspect(r.value[0], depth + 1, seen) + ' => ' + inspect(r.value[1], depth + 1, seen);
    if (s.length > MAX_FORMATTED) return s + ' ... }';
  }
  if (n > MAX_ITEMS) s += ', ... ' + (n - MAX_ITEMS) + ' more items';
  return s + (n === 0 ? '}' : ' }');
}
function formatSet(v, depth, seen) {
  const n = setSize(v);
  let s = 'Set(' + n + ') {';
  const it = setValues(v);
  for (let i = 0; i < n && i < MAX_ITEMS; i++) {
    const r = setIteratorNext(it);
    if (r.done) break;
    s += (i === 0 ? ' ' : ', ') + inspect(r.value, depth + 1, seen);
    if (s.length > MAX_FORMATTED) return s + ' ... }';
  }
  if (n > MAX_ITEMS) s += ', ... ' + (n - MAX_ITEMS) + ' more items';
  return s + (n === 0 ? '}' : ' }');
}
function formatObject(v, depth, seen) {
  const name = constructorName(v);
  const prefix = name === null ? '[Object: null prototype] ' : name === '' || name === 'Object' ? '' : name + ' ';
  const keys = ownKeys(v);
  let s = prefix + '{';
  let count = 0;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i];
    const d = getOwnPropertyDescriptor(v, key);
    if (d === undefined || !d.enumerable) continue;
    if (count === MAX_ITEMS) { s += ', ... more properties'; break; }
    let item;
    if ('value' in d) item = inspect(d.value, depth + 1, seen);
    else item = d.get !== undefined ? (d.set !== undefined ? '[Getter/Setter]' : '[Getter]') : '[Setter]';
    s += (count === 0 ? ' ' : ', ') + formatKey(key) + ': ' + item;
    count++;
    if (s.length > MAX_FORMATTED) return s + ' ... }';
  }
  return s + (count === 0 ? '}' : ' }');
}
function formatValue(v) {
  try {
    const s = typeof v === 'string' ? v : inspect(v, 0, []);
    return s.length > MAX_FORMATTED * 4 && typeof v !== 'string' ? slice(s, 0, MAX_FORMATTED * 4) + '...' : s;
  } catch (e) {
    return '[uninspectable value]';
  }
}
function formatNumber(v, integer) {
  if (typeof v === 'bigint') return StringCtor(v) + 'n';
  if (typeof v === 'symbol') return 'NaN';
  try {
    const n = +v;
    return formatPrimitive(integer ? (n < 0 ? -floor(-n) : floor(n)) : n);
  } catch (e) { return 'NaN'; }
}
// console.log(format, ...args): %s %d %i %f %j %o %O %c %% like Node; the rest joined by spaces.
function formatArgs(args) {
  let s = '';
  let next = 0;
  const first = args[0];
  if (typeof first === 'string' && args.length > 1 && indexOf(first, '%') !== -1) {
    next = 1;
    let last = 0;
    for (let i = 0; i < first.length - 1; i++) {
      if (charCodeAt(first, i) !== 37) continue;
      const c = first[i + 1];
      let piece;
      if (c === '%') piece = '%';
      else if (next >= args.length) continue;
      else if (c === 's') { const a = args[next++]; piece = typeof a === 'string' ? a : formatValue(a); }
      else if (c === 'd' || c === 'i') piece = formatNumber(args[next++], c === 'i');
      else if (c === 'f') piece = formatNumber(args[next++], false);
      else if (c === 'j') {
        // Bounded as a result is (see boundedJson): a sparse array's text is not built in full.
        try {
          const json = boundedJson(args[next++], MAX_FORMATTED, MAX_FORMATTED);
          piece = typeof json === 'object' ? json.head + '...' : StringCtor(json);
        } catch (e) {
          piece = e === TOO_DEEP || e === TOO_MANY ? '[Too deep or too many objects]' : '[Circular]';
        }
      }
      else if (c === 'o' || c === 'O') piece = formatValue(args[next++]);
      else if (c === 'c') { next++; piece = ''; }
      else continue;
      s += slice(first, last, i) + piece;
      last = i + 2;
      i++;
    }
    s += slice(first, last);
  }
  for (let i = next; i < args.length; i++) s += (i === 0 ? '' : ' ') + formatValue(args[i]);
  return s;
}

// ---- console ------------------------------------------------------------------------------------
let groupIndent = '';
let groupDepth = 0;
function setGroupDepth(depth) {
  groupDepth = depth < 0 ? 0 : depth;
  let indent = '';
  for (let i = 0; i < groupDepth && i < MAX_GROUP_INDENT_LEVELS; i++) indent += '  ';
  groupIndent = indent;
}
function emit(st, text) {
  if (groupIndent !== '') {
    // Indenting adds at most the text's own length again (and MAX_FORMATTED): a text of newlines
    // must not grow by the indent per line into far more than the cap keeps.
    const most = text.length + MAX_FORMATTED;
    let indented = groupIndent;
    let added = groupIndent.length;
    let from = 0;
    for (;;) {
      const nl = indexOf(text, '\n', from);
      if (nl === -1 || added + groupIndent.length > most) break;
      indented += slice(text, from, nl + 1) + groupIndent;
      added += groupIndent.length;
      from = nl + 1;
    }
    text = indented + slice(text, from);
  }
  write(st, text + '\n');
}
const counts = { __proto__: null };
const timers = { __proto__: null };
function label(l) { return l === undefined ? 'default' : typeof l === 'string' ? l : formatValue(l); }
function snippetFrames() {
  const stack = new Error().stack;
  return typeof stack === 'string' ? cleanStack(stack, true) : '';
}
const consoleObject = {
  log(...args) { emit(out, formatArgs(args)); },
  info(...args) { emit(out, formatArgs(args)); },
  debug(...args) { emit(out, formatArgs(args)); },
  dir(value) { emit(out, formatValue(value)); },
  table(...args) { emit(out, formatArgs(args)); },
  warn(...args) { emit(err, formatArgs(args)); },
  error(...args) { emit(err, formatArgs(args)); },
  trace(...args) { emit(err, 'Trace' + (args.length > 0 ? ': ' + formatArgs(args) : '') + snippetFrames()); },
  assert(condition, ...args) {
    if (!condition) emit(err, 'Assertion failed' + (args.length > 0 ? ': ' + formatArgs(args) : ''));
  },
  count(l) { const k = label(l); counts[k] = (counts[k] || 0) + 1; emit(out, k + ': ' + counts[k]); },
  countReset(l) { counts[label(l)] = 0; },
  time(l) { timers[label(l)] = dateNow(); },
  timeLog(l, ...args) {
    const k = label(l);
    if (timers[k] !== undefined) emit(out, k + ': ' + (dateNow() - timers[k]) + 'ms' + (args.length > 0 ? ' ' + formatArgs(args) : ''));
  },
  timeEnd(l) {
    const k = label(l);
    if (timers[k] !== undefined) { emit(out, k + ': ' + (dateNow() - timers[k]) + 'ms'); timers[k] = undefined; }
  },
  group(...args) { if (args.length > 0) emit(out, formatArgs(args)); setGroupDepth(groupDepth + 1); },
  groupCollapsed(...args) { if (args.length > 0) emit(out, formatArgs(args)); setGroupDepth(groupDepth + 1); },
  groupEnd() { setGroupDepth(groupDepth - 1); },
};
defineProperty(G, 'console', { __proto__: null, value: consoleObject, writable: true, enumerable: false, configurable: true });

`;
