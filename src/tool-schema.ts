// What keeps a tool's input check linear in the input. The check (ajv) runs on the event loop of the
// process taking the job, against input the caller (often an LLM) wrote, so a schema whose check can
// take super-linear time is a way to stall that process. Two keywords can:
//   - `pattern` / `patternProperties`: JavaScript's regex engine backtracks (`^([a-z0-9]+)*$` holds
//     a loop for hours on 40 characters). Patterns are matched here by RE2 (re2js), in time linear
//     in the input; one RE2 cannot compile (lookaround, backreferences) refuses the tool.
//   - `uniqueItems` over items ajv cannot hash compares every pair: quadratic (4 MiB of distinct
//     numbers, ~10^11 comparisons). Allowed only where `items` declares scalar types.
// And recursion (`$ref` back into itself, `$dynamicRef`, `$recursiveRef`) multiplies `anyOf`-style
// branching by the input's depth, so it is refused. Without it the check costs at most the schema's
// size times the input's. Everything is decided once, when the tool is registered.
import { RE2JS } from 're2js';

/** ajv's `code.regExp`: compiles a pattern (ajv passes flags 'u') into a linear-time matcher. */
export interface LinearRegExp {
  test(input: string): boolean;
  toString(): string;
}

export function linearRegExp(pattern: string, flags: string): LinearRegExp {
  let compiled: RE2JS;
  try {
    compiled = RE2JS.compile(pattern);
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    throw new Error(
      `pattern '${pattern.slice(0, 200)}' is not supported: tool patterns are matched by RE2 in linear time ` +
        `(no lookaround, no backreferences): ${reason}`,
      { cause },
    );
  }
  const source = `/${pattern}/${flags}`;
  // ajv keys its compiled patterns by toString(): it must tell patterns apart.
  return { test: (input) => compiled.test(input), toString: () => source };
}
// ajv writes `code` into generated source only in standalone mode, which sandpool does not use.
linearRegExp.code = 'linearRegExp';

const SCHEMA_KEYWORDS = [
  'additionalItems', 'additionalProperties', 'contains', 'else', 'if', 'items', 'not',
  'propertyNames', 'then', 'unevaluatedItems', 'unevaluatedProperties',
] as const;
const SCHEMA_LIST_KEYWORDS = ['allOf', 'anyOf', 'oneOf', 'prefixItems', 'items'] as const;
const SCHEMA_MAP_KEYWORDS = ['$defs', 'definitions', 'dependencies', 'dependentSchemas', 'patternProperties', 'properties'] as const;
/** Schemas nested in schemas, at most: far more than any tool's input needs. */
const MAX_SCHEMA_DEPTH = 64;
/**
 * The most schemas `$ref`s may add to what checking one input value applies, each use counting the
 * schema it points to: a chain of definitions each using the next twice doubles per level (1.9 KB
 * of schema, 28 levels deep, took 0.85 s to check a 2-item array). Schemas written out in full are
 * not counted: they cost what their text does.
 */
const MAX_SCHEMAS_ADDED_BY_REFS = 10_000;
const SCALAR_TYPES = new Set(['boolean', 'integer', 'null', 'number', 'string']);

type SchemaObject = Record<string, unknown>;
const isSchemaObject = (value: unknown): value is SchemaObject =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Whether ajv checks `uniqueItems` under `schema` with a hash (linear) rather than pairwise. */
function hashableItems(schema: SchemaObject): boolean {
  const items = schema.items;
  if (!isSchemaObject(items)) return false;
  const types = typeof items.type === 'string' ? [items.type] : items.type;
  return Array.isArray(types) && types.length > 0 && types.every((type) => typeof type === 'string' && SCALAR_TYPES.has(type));
}

/** The target of a local `$ref` ('#' or '#/json/pointer'), or undefined. */
function resolveLocal(root: SchemaObject, ref: string): unknown {
  if (ref === '#') return root;
  if (!ref.startsWith('#/')) return undefined;
  let node: unknown = root;
  for (const raw of ref.slice(2).split('/')) {
    let decoded: string;
    try {
      decoded = decodeURIComponent(raw);
    } catch {
      // A malformed escape (`%` not followed by two hex digits) points nowhere.
      return undefined;
    }
    const key = decoded.replaceAll('~1', '/').replaceAll('~0', '~');
    if (typeof node !== 'object' || node === null || !Object.hasOwn(node, key)) return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return node;
}

/**
 * Why checking input against `schema` could take more than linear time in the input, as a message
 * naming where; undefined when it cannot. `pattern`s are not judged here (linearRegExp matches them).
 */
export function superLinearReason(schema: unknown): string | undefined {
  if (!isSchemaObject(schema)) return undefined;
  const root = schema;
  // Depth-first, three colours: a schema met again while still open is recursion.
  const open = new Set<object>();
  const done = new Set<object>();

  const visit = (node: unknown, at: string): string | undefined => {
    if (!isSchemaObject(node) || done.has(node)) return undefined;
    if (open.has(node)) return `${at}: the schema refers back into itself (recursion)`;
    // ajv compiles a schema by recursion too: past this depth it, or this walk, runs out of stack.
    if (open.size >= MAX_SCHEMA_DEPTH) return `inputSchema: nested deeper than ${MAX_SCHEMA_DEPTH} schemas`;
    open.add(node);
    const reason = visitKeywords(node, at);
    open.delete(node);
    done.add(node);
    return reason;
  };

  const visitKeywords = (node: SchemaObject, at: string): string | undefined => {
    if (node.uniqueItems === true && !hashableItems(node)) {
      return `${at}.uniqueItems: checking it compares every pair of items (quadratic in the input); declare scalar item types (items.type) or check uniqueness in the tool's code`;
    }
    for (const keyword of ['$dynamicRef', '$recursiveRef']) {
      if (keyword in node) return `${at}.${keyword}: recursive schemas are not supported`;
    }
    // Anchors and nested ids move what a $ref points at beyond what is read here.
    for (const keyword of ['$anchor', '$dynamicAnchor', ...(node === root ? [] : ['$id'])]) {
      if (keyword in node) return `${at}.${keyword}: not supported in a tool's schema (refer with '#/json/pointer')`;
    }
    if ('$ref' in node) {
      const target = typeof node.$ref === 'string' ? resolveLocal(root, node.$ref) : undefined;
      if (!isSchemaObject(target) && typeof target !== 'boolean') {
        return `${at}.$ref: only a '#/json/pointer' to a schema in the same document is supported`;
      }
      const reason = visit(target, `${at}.$ref`);
      if (reason !== undefined) return reason;
    }
    for (const keyword of SCHEMA_KEYWORDS) {
      const reason = visit(node[keyword], `${at}.${keyword}`);
      if (reason !== undefined) return reason;
    }
    for (const keyword of SCHEMA_LIST_KEYWORDS) {
      const list = node[keyword];
      if (!Array.isArray(list)) continue;
      for (const [index, item] of list.entries()) {
        const reason = visit(item, `${at}.${keyword}[${index}]`);
        if (reason !== undefined) return reason;
      }
    }
    for (const keyword of SCHEMA_MAP_KEYWORDS) {
      const map = node[keyword];
      if (!isSchemaObject(map)) continue;
      for (const [key, item] of Object.entries(map)) {
        const reason = visit(item, `${at}.${keyword}.${key}`);
        if (reason !== undefined) return reason;
      }
    }
    return undefined;
  };

  const reason = visit(root, 'inputSchema');
  if (reason !== undefined) return reason;
  // No recursion (checked above): each schema's size with its $refs expanded is finite.
  const sizes = new Map<object, number>();
  const expanded = (node: unknown): number => {
    if (!isSchemaObject(node)) return 1;
    const known = sizes.get(node);
    if (known !== undefined) return known;
    let size = 1;
    if (typeof node.$ref === 'string') size += expanded(resolveLocal(root, node.$ref));
    for (const keyword of SCHEMA_KEYWORDS) if (node[keyword] !== undefined) size += expanded(node[keyword]);
    for (const keyword of SCHEMA_LIST_KEYWORDS) {
      const list = node[keyword];
      if (Array.isArray(list)) for (const item of list) size += expanded(item);
    }
    for (const keyword of SCHEMA_MAP_KEYWORDS) {
      const map = node[keyword];
      if (isSchemaObject(map)) for (const item of Object.values(map)) size += expanded(item);
    }
    sizes.set(node, size);
    return size;
  };
  // done: every schema object met once, as written.
  const added = expanded(root) - done.size;
  if (added > MAX_SCHEMAS_ADDED_BY_REFS) {
    return `inputSchema: its $refs add ${added > 1e15 ? 'more than 10^15' : added} schemas to check per value (each use counting the schema it points to), more than the ${MAX_SCHEMAS_ADDED_BY_REFS} allowed`;
  }
  return undefined;
}
