// The request: the one shape a caller, a client or a raw BullMQ producer hands sandpool. Validated
// with zod at every edge (pool.execute, client.submit, the worker's job.data); its JSON Schema is
// published for producers in other languages (`sandpool schema`, schema/request.schema.json).
import { z } from 'zod';
import { LIMIT_MAXIMA } from './limits.ts';
import type { RejectionReason } from './result.ts';

/** Tenant ids appear in Redis keys, logs and metrics labels: keep them to a safe alphabet. */
export const TENANT_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
export const TOOL_NAME_PATTERN = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;

const positiveInt = (max: number) => z.number().int().positive().max(max);

export const LimitsRequestSchema = z
  .object({
    timeoutMs: positiveInt(LIMIT_MAXIMA.timeoutMs).describe('Wall-clock limit for the whole run, async work included'),
    cpuTimeMs: positiveInt(LIMIT_MAXIMA.cpuTimeMs).describe('CPU-time limit of the isolate'),
    memoryMb: positiveInt(LIMIT_MAXIMA.memoryMb).describe('Isolate heap limit in MiB'),
    maxOutputBytes: z.number().int().min(0).max(LIMIT_MAXIMA.maxOutputBytes).describe('Cap on stdout and on stderr, each'),
    maxResultBytes: positiveInt(LIMIT_MAXIMA.maxResultBytes).describe('Cap on the JSON-serialised result value'),
  })
  .partial()
  .strict();

/** The longest queueTimeoutMs a request may ask for: a day. */
export const MAX_QUEUE_TIMEOUT_MS = 86_400_000;

/** Input nested deeper than this is refused (zod's recursion gave out somewhere past 1,000). */
export const MAX_INPUT_DEPTH = 1_000;

/** Labels a request may carry, and rule overrides: counted before anything walks them (see parseRequest). */
const MAX_LABELS = 32;
const MAX_RULE_OVERRIDES = 64;
/**
 * Fields an object of the request's own may hold (the request has ten, `limits` five): more is
 * refused before zod lists every unknown key, which took 1.8 s for 400,000 of them.
 */
const MAX_FIELDS = 32;

export const PrescreenRequestSchema = z
  .object({
    mode: z
      .enum(['enforce', 'report'])
      .describe('enforce: block rules reject the job; report: every finding is only a warning'),
    rules: z
      .record(z.string().max(64), z.enum(['block', 'warn', 'off']))
      .describe('Per-rule severity overrides; loosening needs the operator to allow it')
      .meta({ maxProperties: MAX_RULE_OVERRIDES }),
  })
  .partial()
  .strict();

const LabelsSchema = z
  .record(z.string().min(1).max(64), z.string().max(256))
  .refine((labels) => Object.keys(labels).length <= MAX_LABELS, { message: `at most ${MAX_LABELS} labels` })
  .meta({ maxProperties: MAX_LABELS });

export const RequestSchema = z
  .object({
    code: z.string().describe('JavaScript or TypeScript source: a classic script or a module with export default'),
    tool: z.string().regex(TOOL_NAME_PATTERN).describe('Name of a registered tool to invoke instead of code'),
    // parseRequest checks input with inputFault (below), not this: same rules, a hundred times faster.
    input: z.json().describe(`Any JSON value (numbers finite, nested at most ${MAX_INPUT_DEPTH} levels), visible to the code as the global \`input\` (a deep copy)`),
    language: z.enum(['javascript', 'typescript']).default('javascript'),
    limits: LimitsRequestSchema,
    tenantId: z.string().regex(TENANT_ID_PATTERN).default('default'),
    idempotencyKey: z.string().min(1).max(256),
    labels: LabelsSchema,
    queueTimeoutMs: positiveInt(MAX_QUEUE_TIMEOUT_MS).describe('A job not handed to an executor within this many ms of its submit ends as a timeout (limit queue)'),
    prescreen: PrescreenRequestSchema,
  })
  .partial({
    code: true,
    tool: true,
    input: true,
    limits: true,
    idempotencyKey: true,
    labels: true,
    queueTimeoutMs: true,
    prescreen: true,
  })
  .strict()
  // The JSON Schema says what the refinement below checks.
  .meta({ oneOf: [{ required: ['code'] }, { required: ['tool'] }] })
  .superRefine((request, ctx) => {
    const hasCode = request.code !== undefined;
    const hasTool = request.tool !== undefined;
    if (hasCode === hasTool) {
      ctx.addIssue({
        code: 'custom',
        path: hasCode ? ['tool'] : ['code'],
        message: hasCode ? 'give either code or tool, not both' : 'one of code or tool is required',
      });
    }
  });

/** What callers write: every defaulted field optional. */
export type RequestInput = z.input<typeof RequestSchema>;
/** What internals take: defaults applied. */
export type Request = z.output<typeof RequestSchema>;
export type JsonValue = z.infer<ReturnType<typeof z.json>>;

export interface RequestIssue {
  /** Dotted path of the bad field, `(root)` for the request itself. */
  field: string;
  message: string;
}

export type ParseRequestResult =
  | { ok: true; request: Request }
  | { ok: false; issues: RequestIssue[] };

/** What parseRequest returned, so that executeValidated can tell its output from anything else. */
const parsedRequests = new WeakSet<object>();

/** Whether `request` is parseRequest's own output (an accepted request, as returned). */
export function isParsedRequest(request: unknown): request is Request {
  return typeof request === 'object' && request !== null && parsedRequests.has(request);
}

/** Whether `value` is an object with more than `max` enumerable keys, counting no further than that. */
function hasMoreKeys(value: unknown, max: number): boolean {
  if (typeof value !== 'object' || value === null) return false;
  let count = 0;
  for (const key in value) if (Object.hasOwn(value, key) && ++count > max) return true;
  return false;
}

interface InputFault {
  /** Where, from the input down; undefined for the input as a whole (too deep: its path is no help). */
  path: (string | number)[] | undefined;
  message: string;
}

/**
 * What makes `value` not JSON data, or undefined: it must be null, a boolean, a string, a finite
 * number, or an array without holes or a plain object (as zod tells one, no symbol keys) of such
 * values, at most MAX_INPUT_DEPTH deep. What z.json() checks, as the published
 * schema says, in one pass with no copies: z.json() took 0.4-1.2 s over a 2.8 MB input of 40,000
 * rows (this: ~10 ms), building a copy parseRequest threw away, on the event loop of the process
 * that takes jobs. A fault's path is built only on the way out of a fault.
 */
function inputFault(value: unknown, depth: number): InputFault | undefined {
  if (typeof value === 'string' || typeof value === 'boolean' || value === null) return undefined;
  if (typeof value === 'number') {
    return Number.isFinite(value) ? undefined : { path: [], message: `expected a finite number, got ${value}` };
  }
  if (typeof value !== 'object') return { path: [], message: `expected JSON data, got ${typeof value}` };
  if (depth >= MAX_INPUT_DEPTH) return { path: undefined, message: `nested deeper than ${MAX_INPUT_DEPTH} levels (or cyclic)` };
  if (Array.isArray(value)) {
    for (let index = 0; index < value.length; index++) {
      const fault = inputFault(value[index], depth + 1);
      if (fault) return (fault.path?.unshift(index), fault);
    }
    return undefined;
  }
  if (!isPlainObject(value)) return { path: [], message: 'expected JSON data: a plain object, not an instance of a class' };
  const symbols = Object.getOwnPropertySymbols(value);
  if (symbols.length > 0 && symbols.some((key) => Object.prototype.propertyIsEnumerable.call(value, key))) {
    return { path: [], message: 'expected JSON data: an object with symbol keys is not' };
  }
  // Own enumerable keys, as JSON.stringify and zod read them.
  for (const key in value) {
    if (!Object.hasOwn(value, key)) continue;
    const fault = inputFault((value as Record<string, unknown>)[key], depth + 1);
    if (fault) return (fault.path?.unshift(key), fault);
  }
  return undefined;
}

/**
 * zod's own test of a plain object (util.isPlainObject), so that input passes here exactly when it
 * passes z.json(): no constructor, or one whose prototype has its own isPrototypeOf (Object's, of
 * any realm).
 */
function isPlainObject(value: object): boolean {
  // The common case, without the lookups: zod agrees (an own `constructor` that is a function
  // is not JSON data anyway, and is refused as the value it is).
  const direct: unknown = Object.getPrototypeOf(value);
  if (direct === Object.prototype || direct === null) return true;
  const constructor: unknown = (value as { constructor?: unknown }).constructor;
  if (constructor === undefined || typeof constructor !== 'function') return true;
  const prototype: unknown = (constructor as { prototype?: unknown }).prototype;
  if (typeof prototype !== 'object' || prototype === null || Array.isArray(prototype)) return false;
  return Object.prototype.hasOwnProperty.call(prototype, 'isPrototypeOf');
}

/** The request's own objects whose keys are counted (in this order) before anything walks them. */
const KEY_BOUNDS: readonly { field: string; max: number; message: string; of: (request: Record<string, unknown>) => unknown }[] = [
  { field: 'limits', max: MAX_FIELDS, message: `at most ${MAX_FIELDS} fields (limits has 5)`, of: (request) => request.limits },
  { field: 'prescreen', max: MAX_FIELDS, message: `at most ${MAX_FIELDS} fields (prescreen has 2)`, of: (request) => request.prescreen },
  { field: 'labels', max: MAX_LABELS, message: `at most ${MAX_LABELS} labels`, of: (request) => request.labels },
  {
    field: 'prescreen.rules',
    max: MAX_RULE_OVERRIDES,
    message: `at most ${MAX_RULE_OVERRIDES} rule overrides`,
    of: (request) => (request.prescreen as { rules?: unknown } | null | undefined)?.rules,
  },
];

/** Validates anything (a caller's object, a job's data straight from Redis) as a request. */
export function parseRequest(data: unknown): ParseRequestResult {
  let parsed: ReturnType<typeof RequestSchema.safeParse>;
  let given: Record<string, unknown> | undefined;
  let fault: InputFault | undefined;
  try {
    // Each field read once: a caller's getter that answers differently the second time cannot
    // slip past validation. Spreading keeps an own "__proto__" key as the own key it is.
    // A million labels, rule overrides or unknown fields took seconds to walk before their count
    // was checked. (Counting reads keys, not values: no getter runs.)
    if (!Array.isArray(data) && hasMoreKeys(data, MAX_FIELDS)) return { ok: false, issues: [{ field: '(root)', message: `at most ${MAX_FIELDS} fields (a request has 10)` }] };
    given = typeof data === 'object' && data !== null && !Array.isArray(data) ? { ...data } : undefined;
    if (given !== undefined) {
      for (const bound of KEY_BOUNDS) {
        if (hasMoreKeys(bound.of(given), bound.max)) return { ok: false, issues: [{ field: bound.field, message: bound.message }] };
      }
    }
    // The input is checked by inputFault, not zod (see there); zod checks the rest.
    if (given === undefined) {
      parsed = RequestSchema.safeParse(data);
    } else {
      const { input, ...rest } = given;
      fault = input === undefined ? undefined : inputFault(input, 0);
      parsed = RequestSchema.safeParse(rest);
    }
  } catch (error) {
    // An embedded caller's getter or proxy that throws, or a stack that gives out: a bad request,
    // not a crash.
    const why = error instanceof RangeError ? 'is nested too deeply' : 'is not plain JSON data';
    return { ok: false, issues: [{ field: '(root)', message: `the request ${why} to be validated` }] };
  }
  if (parsed.success && fault === undefined) {
    const request = parsed.data;
    // zod rebuilds objects by assignment, which turns an own "__proto__" key into a prototype and
    // drops it: the input goes on as given. It only ever travels as JSON text (JSON.stringify in
    // checkSizes, or BullMQ's): an embedded caller's own toJSON or getters shape that text, as
    // they would any JSON the caller makes, and nothing but the text reaches an isolate.
    if (given?.input !== undefined) request.input = given.input as JsonValue;
    parsedRequests.add(request);
    return { ok: true, request };
  }
  const faults = [
    ...(fault ? [{ path: ['input', ...(fault.path ?? [])], message: fault.message }] : []),
    ...(parsed.success ? [] : parsed.error.issues),
  ];
  return {
    ok: false,
    issues: faults.slice(0, MAX_ISSUES).map((issue) => ({
      field: capText(issue.path.length > 0 ? issue.path.map(String).join('.') : '(root)', MAX_ISSUE_FIELD_CHARS),
      message: capText(issue.message, MAX_ISSUE_MESSAGE_CHARS),
    })),
  };
}

/** A bad request's issues travel on its Result: this many at most, each cut to these lengths. */
const MAX_ISSUES = 20;
const MAX_ISSUE_FIELD_CHARS = 200;
const MAX_ISSUE_MESSAGE_CHARS = 500;

function capText(text: string, max: number): string {
  if (text.length <= max) return text;
  // Never half a surrogate pair.
  const end = /[\uD800-\uDBFF]/.test(text.charAt(max - 2)) ? max - 2 : max - 1;
  return `${text.slice(0, end)}…`;
}

/** Validation issues as the rejection reasons a `rejected` Result carries (rule `validation`). */
export function validationReasons(issues: readonly RequestIssue[]): RejectionReason[] {
  return issues.map((issue) => ({ rule: 'validation', field: issue.field, message: `${issue.field}: ${issue.message}` }));
}

/** The request's JSON Schema (draft 2020-12), for producers that do not use the sandpool client. */
export function requestJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(RequestSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
}
