// The pre-screen's syntax rules: one pass over the flattened acorn tree (src/prescreen-tree.ts),
// reporting findings to a sink. Pure; called by src/prescreen.ts.
import type { AnyNode, Identifier, Program } from 'acorn';
import { analyze } from 'eslint-scope';
import { foldConstant, mayFoldCall, type FoldContext, type Folded } from './prescreen-fold.ts';
import type { RuleId } from './prescreen-rules.ts';
import { collectBindings, flatten, isReference, type Entry } from './prescreen-tree.ts';

export interface FindingSink {
  add(rule: RuleId, message: string, offset: number): void;
}

/** Screens code given to eval/Function as a constant string; its findings land at `offset`. */
export type NestedScreen = (code: string, what: string, offset: number) => void;

const HOST_ONLY: Readonly<Record<string, string>> = {
  process: "'process' is not available: the sandbox has no host process, environment or file system",
  require: "'require' is not available: modules are not available in the sandbox",
  module: "'module' is not available: modules are not available in the sandbox",
  exports: "'exports' is not available: modules are not available in the sandbox",
  global: "'global' is not available in the sandbox: use globalThis",
  Buffer: "'Buffer' is not available in the sandbox: use Uint8Array, TextEncoder or TextDecoder",
  __dirname: "'__dirname' is not available: the sandbox has no file system",
  __filename: "'__filename' is not available: the sandbox has no file system",
};

const LIMIT_DEFEATING = new Set(['WebAssembly', 'SharedArrayBuffer', 'Atomics', 'FinalizationRegistry', 'WeakRef']);

/** Names nobody assembles from pieces except to hide them. */
const SENSITIVE_NAMES = new Set([
  'constructor', '__proto__', 'prototype', 'prepareStackTrace', 'captureStackTrace', 'stackTraceLimit',
  'caller', 'callee', '__defineGetter__', '__defineSetter__', '__lookupGetter__', '__lookupSetter__',
  'eval', 'Function', 'process', 'require', 'module', 'global', 'globalThis', 'mainModule', 'binding',
  'dlopen', 'child_process', 'fs', 'vm', 'import',
]);

/** How far the shape checks below look into an expression; deeper shapes are not attack idioms. */
const MAX_SHAPE_DEPTH = 32;

const GLOBAL_OBJECTS = new Set(['globalThis', 'window', 'self', 'global']);

const BUILTINS = new Set([
  'Object', 'Array', 'Function', 'String', 'Number', 'Boolean', 'Symbol', 'BigInt', 'Promise', 'Error',
  'RegExp', 'Date', 'Map', 'Set', 'WeakMap', 'WeakSet', 'Math', 'JSON', 'Reflect', 'console', 'Intl',
  'TypeError', 'RangeError', 'SyntaxError', 'ArrayBuffer', 'DataView', 'Uint8Array', 'Proxy',
]);

export function screenProgram(
  program: Program,
  code: string,
  sink: FindingSink,
  nested: NestedScreen,
  budget: { chars: number },
): void {
  const entries = flatten(program);
  const { constants, functionNames } = collectBindings(entries);
  const free = freeReferences(program);
  /** Whether this use of a name is the global of that name: bound in none of the scopes around it. */
  const isFree = (node: Identifier): boolean => free === undefined || free.has(node);
  const fold: FoldContext = { constants, isFree, code, maxLength: 64 * 1024, budget };

  const memberName = (node: AnyNode): Folded | undefined => {
    if (node.type !== 'MemberExpression') return undefined;
    if (!node.computed) {
      return node.property.type === 'Identifier' ? { value: node.property.name, built: false } : undefined;
    }
    if (node.property.type === 'PrivateIdentifier') return undefined;
    const folded = foldConstant(node.property, fold);
    const key = propertyKey(folded);
    return folded === undefined || key === undefined ? undefined : { value: key, built: folded.built || typeof folded.value === 'object' };
  };
  const nameOf = (node: AnyNode): string | undefined => {
    const folded = memberName(node);
    return folded === undefined ? undefined : String(folded.value);
  };
  const isGlobalRef = (node: AnyNode, name: string): boolean => {
    if (node.type === 'Identifier') return node.name === name && isFree(node);
    if (node.type !== 'MemberExpression' || nameOf(node) !== name) return false;
    const object = node.object;
    return object.type === 'Identifier' && GLOBAL_OBJECTS.has(object.name) && isFree(object);
  };
  const isFunctionish = (node: AnyNode, depth = 0): boolean => {
    if (depth > MAX_SHAPE_DEPTH) return false;
    switch (node.type) {
      case 'FunctionExpression':
      case 'ArrowFunctionExpression':
      case 'ClassExpression':
        return true;
      case 'Identifier': {
        if ((node.name === 'Function' && isFree(node)) || functionNames.has(node.name)) return true;
        const bound = constants.get(node.name);
        return (
          bound?.type === 'FunctionExpression' || bound?.type === 'ArrowFunctionExpression' || bound?.type === 'ClassExpression'
        );
      }
      case 'ParenthesizedExpression':
        return isFunctionish(node.expression, depth + 1);
      case 'CallExpression': {
        // Reflect.get(x, 'constructor') is x.constructor; getPrototypeOf(fn) is a Function.prototype.
        if (isReflectGetConstructor(node)) return true;
        const [arg] = node.arguments;
        const callee = node.callee;
        return (
          callee.type === 'MemberExpression' &&
          nameOf(callee) === 'getPrototypeOf' &&
          arg !== undefined &&
          arg.type !== 'SpreadElement' &&
          isFunctionish(arg, depth + 1)
        );
      }
      case 'MemberExpression': {
        const name = nameOf(node);
        if (name === 'constructor') return true;
        // The prototype of a function is an ordinary object (F.prototype.constructor is F), except
        // Function.prototype; the __proto__ of a function is a Function.prototype.
        if (name === 'prototype') return isGlobalRef(node.object, 'Function');
        if (name === '__proto__') return isFunctionish(node.object, depth + 1);
        // A builtin method (`[].map`, `Math.max`, `''.at`) is a function like any other; a builtin's
        // data (`Number.MAX_SAFE_INTEGER`, `''.length`) is not. An object literal's may be anything.
        const object = node.object;
        if (object.type === 'ObjectExpression') return true;
        const sample =
          object.type === 'ArrayExpression'
            ? Array.prototype
            : object.type === 'TemplateLiteral'
              ? String.prototype
              : object.type === 'Literal'
                ? literalPrototype(object.value)
                : object.type === 'Identifier' && BUILTINS.has(object.name) && isFree(object)
                  ? builtinSample(object.name)
                  : undefined;
        return sample !== undefined && (name === undefined || holdsFunction(sample, name));
      }
      default:
        return false;
    }
  };
  const isReflectGetConstructor = (node: AnyNode): boolean => {
    if (node.type !== 'CallExpression' || !isGlobalMethod(node.callee, 'Reflect', 'get')) return false;
    const key = node.arguments[1];
    return key !== undefined && key.type !== 'SpreadElement' && foldConstant(key, fold)?.value === 'constructor';
  };
  const isGlobalMethod = (node: AnyNode, object: string, method: string): boolean =>
    node.type === 'MemberExpression' && nameOf(node) === method && isGlobalRef(node.object, object);
  const isBuiltinPrototype = (node: AnyNode): boolean =>
    node.type === 'MemberExpression' &&
    nameOf(node) === 'prototype' &&
    node.object.type === 'Identifier' &&
    BUILTINS.has(node.object.name) &&
    isFree(node.object);
  const isAssigned = (entry: Entry): boolean =>
    entry.parent !== undefined && entry.parent.type === 'AssignmentExpression' && entry.key === 'left';
  /** Written by any road: assigned, updated, a for-in/of target, or a target inside a destructuring pattern. */
  const isWritten = (entry: Entry): boolean => {
    let current: Entry | undefined = entry;
    while (current?.parent !== undefined) {
      const { parent, key } = current;
      switch (parent.type) {
        case 'AssignmentExpression':
        case 'ForOfStatement':
        case 'ForInStatement':
          return key === 'left';
        case 'UpdateExpression':
          return true;
        case 'ArrayPattern':
        case 'ObjectPattern':
        case 'RestElement':
          break;
        case 'AssignmentPattern':
          if (key !== 'left') return false;
          break;
        case 'Property':
          if (key !== 'value' || current.up?.parent?.type !== 'ObjectPattern') return false;
          break;
        default:
          return false;
      }
      current = current.up;
    }
    return false;
  };
  const checkBuiltString = (node: AnyNode, at: number): void => {
    // Cheap exits first: this runs on every call argument.
    if (node.type === 'Literal') {
      if (typeof node.value !== 'string' || !SENSITIVE_NAMES.has(node.value)) return;
    } else if (node.type === 'Identifier') {
      if (!constants.get(node.name)) return;
    } else if (node.type === 'CallExpression') {
      if (!mayFoldCall(node)) return;
    } else if (node.type !== 'BinaryExpression' && node.type !== 'TemplateLiteral') {
      return;
    }
    const folded = foldConstant(node, fold);
    if (folded?.built === true && typeof folded.value === 'string' && SENSITIVE_NAMES.has(folded.value)) {
      sink.add('obfuscated_name', `the name '${folded.value}' is assembled at run time, hiding it from readers`, at);
    }
  };
  const screenCodeArgument = (arg: AnyNode | undefined, what: string, at: number, rule: RuleId): void => {
    if (arg === undefined || arg.type === 'SpreadElement') return;
    const folded = foldConstant(arg, fold);
    if (folded === undefined && budget.chars <= 0) {
      sink.add(rule, `more code is given to ${what} than this screen reads; the rest is not screened`, at);
    } else if (folded === undefined) {
      sink.add(rule, `${what} runs code built at run time, which this screen cannot read`, at);
    } else if (typeof folded.value === 'string') {
      nested(folded.value, what, at);
    }
  };

  /** The parameters and body given to the Function constructor, as constants, or undefined. */
  const screenFunctionBody = (texts: string[] | undefined, at: number): void => {
    if (texts === undefined) {
      sink.add('function_from_string', 'builds a function from a string made at run time, which this screen cannot read', at);
      return;
    }
    const body = texts.pop() ?? '';
    nested(`(function anonymous(${texts.join(',')}\n) {\n${body}\n})`, 'Function', at);
  };

  for (const entry of entries) {
    const { node, parent } = entry;
    switch (node.type) {
      case 'Identifier': {
        // An escape always makes the source text longer than the name it spells.
        if (node.end - node.start !== node.name.length && hasEscapedAscii(code.slice(node.start, node.end))) {
          sink.add('escaped_identifier', `the name '${node.name}' is written with \\u escapes`, node.start);
        }
        if (!isReference(entry) || !isFree(node)) break;
        const inTypeof = parent?.type === 'UnaryExpression' && parent.operator === 'typeof';
        if (inTypeof) break;
        const hostMessage = Object.hasOwn(HOST_ONLY, node.name) ? HOST_ONLY[node.name] : undefined;
        if (hostMessage !== undefined) {
          sink.add('host_only_name', hostMessage, node.start);
        } else if (LIMIT_DEFEATING.has(node.name)) {
          sink.add('limit_defeating_global', removedMessage(node.name), node.start);
        } else if (node.name === 'eval' && !isCallee(entry)) {
          sink.add('eval_usage', 'indirect reference to eval: the code it runs cannot be screened', node.start);
        }
        break;
      }
      case 'MemberExpression': {
        const folded = memberName(node);
        if (folded === undefined) break;
        const name = String(folded.value);
        if (node.computed && folded.built && SENSITIVE_NAMES.has(name)) {
          sink.add('obfuscated_name', `the property name '${name}' is assembled at run time, hiding it from readers`, node.property.start);
        }
        if (name === 'constructor' && !isAssigned(entry) && isFunctionish(node.object)) {
          sink.add(
            'function_constructor_chain',
            'reads the constructor of a function, which is the Function constructor: it turns strings into code',
            node.property.start,
          );
        } else if (name === 'caller') {
          const object = node.object;
          const objectName = nameOf(object);
          if (objectName === 'caller' || (objectName === 'callee' && object.type === 'MemberExpression' && isArguments(object.object))) {
            sink.add('caller_chain', 'walks the call stack through .caller to reach the functions that called this code', node.property.start);
          }
        } else if (name === 'prepareStackTrace' && isWritten(entry)) {
          // Assigned, updated, destructured into or a for-of target: any write installs the hook.
          sink.add('stack_trace_tampering', 'installs a stack-trace hook (prepareStackTrace), which exposes call-site objects', node.start);
        } else if (name === '__proto__' && isAssigned(entry)) {
          sink.add('builtin_prototype_write', 'assigns __proto__; it affects only this job\'s isolate', node.start);
        } else if (isAssigned(entry) && isBuiltinPrototype(node.object)) {
          sink.add('builtin_prototype_write', 'writes to a built-in prototype; it affects only this job\'s isolate', node.start);
        } else if (name === 'eval' && isGlobalRef(node, 'eval') && !isCallee(entry)) {
          sink.add('eval_usage', 'indirect reference to eval: the code it runs cannot be screened', node.start);
        } else if (isGlobalRef(node, name) && !(parent?.type === 'UnaryExpression' && parent.operator === 'typeof')) {
          // `globalThis.process` is the free name `process` by another road.
          const hostMessage = Object.hasOwn(HOST_ONLY, name) ? HOST_ONLY[name] : undefined;
          if (hostMessage !== undefined) sink.add('host_only_name', hostMessage, node.start);
          else if (LIMIT_DEFEATING.has(name)) sink.add('limit_defeating_global', removedMessage(name), node.start);
        }
        break;
      }
      case 'CallExpression':
      case 'NewExpression': {
        // `(0, eval)(code)` calls the same eval, indirectly.
        const callee = node.callee.type === 'SequenceExpression' ? (node.callee.expressions.at(-1) ?? node.callee) : node.callee;
        const writes = callee.type === 'MemberExpression' && PROPERTY_WRITERS.has(nameOf(callee) ?? '');
        for (const arg of node.arguments) {
          checkBuiltString(arg, arg.start);
          // Reflect.set(Error, 'prepareStackTrace', f), Error.__defineGetter__('prepareStackTrace', g), defineProperty...
          if (writes && arg.type !== 'SpreadElement' && propertyKey(foldConstant(arg, fold)) === 'prepareStackTrace') {
            sink.add('stack_trace_tampering', 'sets the stack-trace hook (prepareStackTrace) by reflection, which exposes call-site objects', arg.start);
          }
        }
        if (callee.type === 'Super') break;
        const calleeName = callee.type === 'Identifier' ? callee.name : nameOf(callee);
        if (calleeName === undefined) break;
        if (node.type === 'CallExpression' && calleeName === 'eval' && isGlobalRef(callee, 'eval')) {
          screenCodeArgument(node.arguments[0], 'eval', node.start, 'eval_usage');
          break;
        }
        if (calleeName === 'Function' && isGlobalRef(callee, 'Function')) {
          const args = node.arguments.map((arg) => (arg.type === 'SpreadElement' ? undefined : foldConstant(arg, fold)));
          const texts = args.every((arg) => arg !== undefined && typeof arg.value !== 'object')
            ? args.map((arg) => String(arg?.value))
            : undefined;
          screenFunctionBody(texts, node.start);
          break;
        }
        if (node.type === 'CallExpression' && (calleeName === 'setTimeout' || calleeName === 'setInterval') && isGlobalRef(callee, calleeName)) {
          const [first] = node.arguments;
          if (first !== undefined && isStringish(first)) screenCodeArgument(first, 'a timer given a string', node.start, 'eval_usage');
          break;
        }
        if (callee.type !== 'MemberExpression') break;
        const method = calleeName;
        const [first, second] = node.arguments;
        if (isReflectGetConstructor(node)) {
          const [target] = node.arguments;
          if (target !== undefined && target.type !== 'SpreadElement' && isFunctionish(target)) {
            sink.add('function_constructor_chain', 'reads the constructor of a function through Reflect.get, which is the Function constructor', node.start);
          }
        } else if (method === 'constructor' && !isFunctionish(callee.object) && callee.object.type !== 'ThisExpression') {
          if (node.arguments.some((arg) => isStringish(arg))) {
            sink.add('function_constructor_chain', 'calls a .constructor with a string, the way the Function constructor is reached', node.start);
          }
        } else if (method === 'captureStackTrace' && first !== undefined && first.type !== 'ThisExpression') {
          sink.add('capture_stack_trace', 'captures a stack trace onto an object other than `this`', node.start);
        } else if ((method === 'call' || method === 'apply' || method === 'bind') && isGlobalRef(callee.object, 'Function')) {
          sink.add('function_from_string', 'calls the Function constructor indirectly; the code it builds cannot be screened', node.start);
        } else if ((method === 'construct' || method === 'apply') && first !== undefined && isGlobalRef(first, 'Function')) {
          // Reflect.construct(Function, [params..., body]) / Reflect.apply(Function, this, [...]).
          const list = node.arguments[method === 'construct' ? 1 : 2];
          const folded = list === undefined || list.type === 'SpreadElement' ? undefined : foldConstant(list, fold);
          screenFunctionBody(folded !== undefined && typeof folded.value === 'object' ? [...folded.value] : undefined, node.start);
        } else if (
          (method === 'defineProperty' || method === 'defineProperties' || method === 'setPrototypeOf' || method === 'assign') &&
          first !== undefined
        ) {
          // A 'prepareStackTrace' argument was reported above.
          if (isBuiltinPrototype(first)) {
            sink.add('builtin_prototype_write', `${method} on a built-in prototype; it affects only this job's isolate`, node.start);
          }
        }
        break;
      }
      case 'Property': {
        if (parent?.type === 'ObjectPattern') {
          // `{ constructor: { constructor: F } } = anything`: the constructor of any object is a
          // function, and its constructor is the Function constructor.
          const inner = node.value.type === 'AssignmentPattern' ? node.value.left : node.value;
          if (keyName(node.key, node.computed, fold) === 'constructor' && inner.type === 'ObjectPattern') {
            const chained = inner.properties.some(
              (property) => property.type === 'Property' && keyName(property.key, property.computed, fold) === 'constructor',
            );
            if (chained) {
              sink.add('function_constructor_chain', 'destructures the constructor of a constructor, which is the Function constructor', node.start);
            }
          }
          break;
        }
        if (parent?.type !== 'ObjectExpression') break;
        // `{ '\x63onstructor': C }` spells a sensitive key as [k] would, without brackets.
        if (node.computed || node.key.type === 'Literal') checkBuiltString(node.key, node.key.start);
        if (keyName(node.key, node.computed, fold) === 'prepareStackTrace') {
          sink.add('stack_trace_tampering', 'sets a stack-trace hook (prepareStackTrace), which exposes call-site objects', node.start);
        }
        break;
      }
      case 'VariableDeclarator':
      case 'AssignmentExpression': {
        const [target, source] = node.type === 'VariableDeclarator' ? [node.id, node.init] : [node.left, node.right];
        if (target.type !== 'ObjectPattern' || source === null || source === undefined) break;
        if (!isFunctionish(source)) break;
        for (const property of target.properties) {
          if (property.type === 'Property' && keyName(property.key, property.computed, fold) === 'constructor') {
            sink.add('function_constructor_chain', 'destructures the constructor of a function, which is the Function constructor', property.start);
          }
        }
        break;
      }
      case 'ArrayExpression': {
        // [['prepareStackTrace', f]]: an entry as Object.fromEntries and Map take it.
        const [first] = node.elements;
        if (node.elements.length === 2 && first && first.type !== 'SpreadElement' && foldConstant(first, fold)?.value === 'prepareStackTrace') {
          sink.add('stack_trace_tampering', 'pairs the stack-trace hook (prepareStackTrace) with a value, as an entry to set it from', node.start);
        }
        break;
      }
      case 'MethodDefinition':
      case 'PropertyDefinition':
        // A class whose static prepareStackTrace becomes Error's through setPrototypeOf.
        if (node.static && keyName(node.key, node.computed, fold) === 'prepareStackTrace') {
          sink.add('stack_trace_tampering', 'defines a static prepareStackTrace, which becomes the stack-trace hook of a class it is made the prototype of', node.start);
        }
        break;
      case 'ImportExpression':
        sink.add('dynamic_import', 'dynamic import() is not available: modules are not available in the sandbox', node.start);
        break;
      case 'ImportDeclaration':
      case 'ExportAllDeclaration':
        sink.add('module_import', `imports '${String(node.source.value)}': modules are not available in the sandbox`, node.start);
        break;
      case 'ExportNamedDeclaration':
        if (node.source) {
          sink.add('module_import', `re-exports from '${String(node.source.value)}': modules are not available in the sandbox`, node.start);
        }
        break;
      case 'MetaProperty':
        if (node.meta.name === 'import') {
          sink.add('module_import', 'import.meta is not available: the snippet is not loaded from a module URL', node.start);
        }
        break;
      case 'WithStatement':
        sink.add('with_statement', 'with makes names resolve at run time, so this screen cannot tell what they refer to', node.start);
        break;
      default:
        break;
    }
  }
}

function removedMessage(name: string): string {
  return `'${name}' is removed from the sandbox: this code path fails with a ReferenceError`;
}

/** Whether the node is what a call calls: `f(...)`, or the last of `(0, f)(...)`. */
function isCallee({ node, parent, key, up }: Entry): boolean {
  if (parent?.type === 'CallExpression') return key === 'callee';
  return (
    parent?.type === 'SequenceExpression' &&
    parent.expressions.at(-1) === node &&
    up?.parent?.type === 'CallExpression' &&
    up.key === 'callee'
  );
}

function isArguments(node: AnyNode): boolean {
  return node.type === 'Identifier' && node.name === 'arguments';
}

function isStringish(node: AnyNode, depth = 0): boolean {
  if (node.type === 'Literal') return typeof node.value === 'string';
  if (node.type === 'TemplateLiteral') return true;
  if (node.type === 'BinaryExpression' && node.operator === '+' && depth < MAX_SHAPE_DEPTH) {
    return isStringish(node.left, depth + 1) || isStringish(node.right, depth + 1);
  }
  return false;
}

/** The prototype a literal's properties are read from; null for null. */
function literalPrototype(value: unknown): object | undefined {
  if (value === null) return undefined;
  return Object.getPrototypeOf(Object(value)) as object;
}

/** A builtin as this process has it (the isolate's are the same language's); an unknown one counts as holding functions. */
function builtinSample(name: string): object {
  const value: unknown = (globalThis as Record<string, unknown>)[name];
  return (typeof value === 'object' && value !== null) || typeof value === 'function' ? value : { [name]: () => undefined };
}

/**
 * Whether `name` on `sample` (or its prototypes) is a function, or an accessor (not read here, so
 * counted as one); a property it does not have is not.
 */
function holdsFunction(sample: object, name: string): boolean {
  for (let at: object | null = sample; at !== null; at = Object.getPrototypeOf(at) as object | null) {
    const descriptor = Object.getOwnPropertyDescriptor(at, name);
    if (descriptor !== undefined) return typeof descriptor.value === 'function' || descriptor.get !== undefined;
  }
  return false;
}

/**
 * The identifiers of `program` that name a global: references no scope around them binds
 * (eslint-scope's analysis). A name a snippet binds in one function is still the global elsewhere:
 * `function f(eval) {}` leaves every other `eval` the global one. Undefined when the analysis
 * fails: every reference is then taken for a global, the stricter reading.
 */
function freeReferences(program: Program): ReadonlySet<AnyNode> | undefined {
  try {
    const manager = analyze(program as never, { ecmaVersion: 2025, sourceType: program.sourceType, fallback: 'iteration' });
    return new Set(manager.globalScope?.through.map((reference) => reference.identifier as unknown as AnyNode) ?? []);
  } catch {
    return undefined;
  }
}

/** The property key a folded value makes, as V8 converts it: an array is its items joined with commas (o[['k']] is o.k). */
function propertyKey(folded: Folded | undefined): string | undefined {
  if (folded === undefined) return undefined;
  return typeof folded.value === 'object' ? folded.value.join(',') : String(folded.value);
}

/** Methods that write a property named by an argument: Reflect.set, (Object|Reflect).defineProperty, __defineGetter__... */
const PROPERTY_WRITERS = new Set(['set', 'defineProperty', '__defineGetter__', '__defineSetter__']);

function keyName(key: AnyNode, computed: boolean, fold: FoldContext): string | undefined {
  if (!computed) return key.type === 'Identifier' ? key.name : key.type === 'Literal' ? String(key.value) : undefined;
  const folded = foldConstant(key, fold);
  return folded && typeof folded.value !== 'object' ? String(folded.value) : undefined;
}

/** True when a raw identifier spells an ASCII character as a \u escape. */
function hasEscapedAscii(raw: string): boolean {
  for (const match of raw.matchAll(/\\u(?:\{([0-9a-fA-F]+)\}|([0-9a-fA-F]{4}))/g)) {
    const code = Number.parseInt(match[1] ?? match[2] ?? '', 16);
    if (code < 0x80) return true;
  }
  return false;
}
