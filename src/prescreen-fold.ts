// Constant folding for the pre-screen: evaluates the string expressions a reader can evaluate in
// their head ('con' + 'structor', String.fromCharCode(99, ...), 'a,b'.split(',').reverse().join(''),
// atob('...')) so names assembled at run time are seen. Pure; bounded in depth and in total work.
import type { AnyNode, Expression, Identifier } from 'acorn';

export type FoldedValue = string | number | readonly string[];

export interface Folded {
  value: FoldedValue;
  /** False only for a plain literal (no escapes) or a `const` bound to one: nothing was assembled. */
  built: boolean;
}

export interface FoldContext {
  /** `const|let|var NAME = <expr>` bindings never assigned again; null when the name is not one. */
  readonly constants: ReadonlyMap<string, Expression | null>;
  /** Whether this use of a name is the global one: a `String`, `atob`... bound around it is not the builtin. */
  readonly isFree: (node: Identifier) => boolean;
  /** Source of the program, to tell escaped literals from plain ones. */
  readonly code: string;
  /** Longest string or array a fold may produce. */
  readonly maxLength: number;
  /** Characters every fold of the screen may still produce, shared with nested screens. */
  budget: { chars: number };
}

const MAX_FOLD_DEPTH = 64;

/** The constant value of `node`, or undefined when it is not a foldable constant. */
export function foldConstant(node: AnyNode, ctx: FoldContext): Folded | undefined {
  return fold(node, ctx, 0, new Set());
}

function fold(node: AnyNode, ctx: FoldContext, depth: number, resolving: Set<string>): Folded | undefined {
  if (depth > MAX_FOLD_DEPTH || ctx.budget.chars <= 0) return undefined;
  // Every step costs a unit, so `a + a` chains over empty strings stay bounded too.
  ctx.budget.chars -= 1;
  let result: Folded | undefined;
  try {
    result = foldNode(node, ctx, depth + 1, resolving);
  } catch {
    // Whatever a fold cannot evaluate (a string past V8's longest, should a size check below
    // miss one) is no constant: the screen goes on, as it does for any expression it cannot fold.
    return undefined;
  }
  if (result === undefined) return undefined;
  const size = weight(result.value);
  if (size > ctx.maxLength) return undefined;
  ctx.budget.chars -= size;
  return result;
}

/** Characters a value holds (an array: its items and a unit each); the size every fold is bounded by. */
function weight(value: FoldedValue): number {
  if (typeof value === 'number') return 1;
  if (typeof value === 'string') return value.length;
  let total = value.length;
  for (const item of value) total += item.length;
  return total;
}

/** Length of a value as text (`+`, a template, `concat`, `join`'s separator). */
function textLength(value: FoldedValue): number {
  if (typeof value === 'number') return String(value).length;
  if (typeof value === 'string') return value.length;
  return Math.max(0, weight(value) - 1);
}

/**
 * How long a fold's result may be: checked before it is built, as one `join` or `replaceAll` of
 * bounded parts can ask for more than V8's longest string (an 11 KB snippet made the screen throw,
 * 0.3-0.9 s and ~1 GiB in, where it did not).
 */
function room(ctx: FoldContext): number {
  return Math.min(ctx.maxLength, ctx.budget.chars);
}

function foldNode(node: AnyNode, ctx: FoldContext, depth: number, resolving: Set<string>): Folded | undefined {
  const sub = (child: AnyNode): Folded | undefined => fold(child, ctx, depth, resolving);
  switch (node.type) {
    case 'Literal': {
      if (typeof node.value === 'string') {
        const raw = ctx.code.slice(node.start + 1, node.end - 1);
        return { value: node.value, built: raw !== node.value };
      }
      if (typeof node.value === 'number') return { value: node.value, built: false };
      return undefined;
    }
    case 'TemplateLiteral': {
      let value = '';
      let built = node.expressions.length > 0;
      for (let i = 0; i < node.quasis.length; i++) {
        const quasi = node.quasis[i];
        if (quasi === undefined || typeof quasi.value.cooked !== 'string') return undefined;
        value += quasi.value.cooked;
        if (quasi.value.raw !== quasi.value.cooked) built = true;
        const expression = node.expressions[i];
        if (expression !== undefined) {
          const part = sub(expression);
          if (part === undefined || Array.isArray(part.value)) return undefined;
          if (value.length + textLength(part.value) > room(ctx)) return undefined;
          value += String(part.value);
        }
      }
      return { value, built };
    }
    case 'BinaryExpression': {
      if (node.operator !== '+' || node.left.type === 'PrivateIdentifier') return undefined;
      const left = sub(node.left);
      const right = left && sub(node.right);
      if (left === undefined || right === undefined) return undefined;
      if (typeof left.value === 'number' && typeof right.value === 'number') {
        return { value: left.value + right.value, built: true };
      }
      if (textLength(left.value) + textLength(right.value) > room(ctx)) return undefined;
      return { value: joinValue(left.value) + joinValue(right.value), built: true };
    }
    case 'ArrayExpression': {
      const items: string[] = [];
      for (const element of node.elements) {
        if (element === null) return undefined;
        if (element.type === 'SpreadElement') {
          // [...'abc'] is its characters, [...[a, b]] its items.
          const spread = sub(element.argument);
          if (spread === undefined || typeof spread.value === 'number') return undefined;
          items.push(...(typeof spread.value === 'string' ? Array.from(spread.value) : spread.value));
          continue;
        }
        const part = sub(element);
        if (part === undefined || Array.isArray(part.value)) return undefined;
        items.push(String(part.value));
      }
      return { value: items, built: true };
    }
    case 'Identifier': {
      const bound = ctx.constants.get(node.name);
      if (bound === undefined || bound === null || resolving.has(node.name)) return undefined;
      resolving.add(node.name);
      const result = sub(bound);
      resolving.delete(node.name);
      return result;
    }
    case 'CallExpression':
      return foldCall(node, ctx, sub);
    default:
      return undefined;
  }
}

function joinValue(value: FoldedValue): string {
  return typeof value === 'object' ? value.join(',') : String(value);
}

function foldCall(
  node: Extract<AnyNode, { type: 'CallExpression' }>,
  ctx: FoldContext,
  sub: (child: AnyNode) => Folded | undefined,
): Folded | undefined {
  const args: FoldedValue[] = [];
  for (const arg of node.arguments) {
    if (arg.type === 'SpreadElement') {
      // f(...[99, 111]): the items, numbers again where they were written as numbers.
      const spread = sub(arg.argument);
      if (spread === undefined || typeof spread.value !== 'object') return undefined;
      for (const item of spread.value) args.push(item !== '' && String(Number(item)) === item ? Number(item) : item);
      continue;
    }
    const part = sub(arg);
    if (part === undefined) return undefined;
    args.push(part.value);
  }
  const callee = node.callee;
  if (callee.type === 'Identifier' && ctx.isFree(callee)) {
    const [first] = args;
    if (typeof first !== 'string') return undefined;
    const decoded = decodeGlobal(callee.name, first);
    return decoded === undefined ? undefined : { value: decoded, built: true };
  }
  if (callee.type !== 'MemberExpression' || callee.computed || callee.property.type !== 'Identifier') {
    return undefined;
  }
  const method = callee.property.name;
  if (callee.object.type === 'Identifier' && callee.object.name === 'String' && ctx.isFree(callee.object)) {
    if (!args.every((arg): arg is number => typeof arg === 'number')) return undefined;
    if (method === 'fromCharCode') return { value: String.fromCharCode(...args), built: true };
    if (method === 'fromCodePoint' && args.every((arg) => Number.isInteger(arg) && arg >= 0 && arg <= 0x10ffff)) {
      return { value: String.fromCodePoint(...args), built: true };
    }
    return undefined;
  }
  if (callee.object.type === 'Super') return undefined;
  const target = sub(callee.object);
  if (target === undefined) return undefined;
  const value = applyMethod(target.value, method, args, room(ctx));
  return value === undefined ? undefined : { value, built: true };
}

/** Calls foldConstant can evaluate: the decoders, String.fromCharCode/fromCodePoint, and string and array methods. */
const FOLDABLE_GLOBALS = new Set(['atob', 'decodeURIComponent', 'decodeURI', 'unescape', 'String']);
const FOLDABLE_METHODS = new Set([
  'fromCharCode', 'fromCodePoint', 'split', 'toLowerCase', 'toUpperCase', 'trim', 'toString', 'slice', 'substring', 'substr',
  'charAt', 'concat', 'replace', 'replaceAll', 'join', 'reverse',
]);

export function mayFoldCall(node: Extract<AnyNode, { type: 'CallExpression' }>): boolean {
  const callee = node.callee;
  if (callee.type === 'Identifier') return FOLDABLE_GLOBALS.has(callee.name);
  return callee.type === 'MemberExpression' && !callee.computed && callee.property.type === 'Identifier' && FOLDABLE_METHODS.has(callee.property.name);
}

function decodeGlobal(name: string, text: string): string | undefined {
  try {
    switch (name) {
      case 'atob':
        return Buffer.from(text, 'base64').toString('latin1');
      case 'String':
        return text;
      case 'decodeURIComponent':
        return decodeURIComponent(text);
      case 'decodeURI':
        return decodeURI(text);
      case 'unescape':
        return unescape(text);
      default:
        return undefined;
    }
  } catch {
    // A malformed URI sequence throws at run time too: the call is not a constant.
    return undefined;
  }
}

/** `target.method(...args)`, or undefined when it is not foldable or would be longer than `room`. */
function applyMethod(target: FoldedValue, method: string, args: readonly FoldedValue[], room: number): FoldedValue | undefined {
  const [a, b] = args;
  const argsLength = args.reduce((total: number, arg) => total + textLength(arg), 0);
  const num = (value: FoldedValue | undefined): number | undefined =>
    value === undefined ? undefined : typeof value === 'number' ? value : undefined;
  if (typeof target === 'number') {
    if (method !== 'toString') return undefined;
    const radix = num(a) ?? 10;
    return Number.isInteger(radix) && radix >= 2 && radix <= 36 ? target.toString(radix) : undefined;
  }
  if (typeof target === 'string') {
    switch (method) {
      case 'split':
        return typeof a === 'string' ? target.split(a) : undefined;
      case 'toLowerCase':
        return target.toLowerCase();
      case 'toUpperCase':
        return target.toUpperCase();
      case 'trim':
      case 'toString':
        return method === 'trim' ? target.trim() : target;
      case 'slice':
      case 'substring':
      case 'substr':
        if (args.length > 2 || !args.every((arg) => typeof arg === 'number')) return undefined;
        return target[method](num(a) ?? 0, num(b));
      case 'charAt':
        return target.charAt(num(a) ?? 0);
      case 'concat':
        return target.length + argsLength > room ? undefined : target.concat(...args.map(joinValue));
      case 'replace':
      case 'replaceAll': {
        if (typeof a !== 'string' || typeof b !== 'string') return undefined;
        const matches = method === 'replace' ? 1 : a === '' ? target.length + 1 : target.split(a).length - 1;
        return target.length + matches * b.length > room ? undefined : target[method](a, () => b);
      }
      default:
        return undefined;
    }
  }
  switch (method) {
    case 'join': {
      const separator = a === undefined ? ',' : joinValue(a);
      const length = weight(target) - target.length + separator.length * Math.max(0, target.length - 1);
      return length > room ? undefined : target.join(separator);
    }
    case 'reverse':
      return [...target].reverse();
    case 'concat':
      return weight(target) + argsLength + args.length > room
        ? undefined
        : target.concat(...args.map((arg) => (typeof arg === 'object' ? arg : [String(arg)])));
    case 'slice':
      return args.every((arg) => typeof arg === 'number') ? target.slice(num(a), num(b)) : undefined;
    default:
      return undefined;
  }
}
