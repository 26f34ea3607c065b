// Tools: named snippets an operator registers, so a caller (often an LLM's tool call) invokes
// `{ tool, input }` instead of sending code. The registry validates definitions once, checks each
// call's input against the tool's JSON Schema (ajv), and prints definitions for LLM APIs.
// Pure: no I/O; the CLI reads tool files, the pool resolves requests through a registry.
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { z } from 'zod';
import { LimitsRequestSchema, TOOL_NAME_PATTERN, type Request } from './request.ts';
import { LIMIT_FLOORS, LIMIT_KEYS, type Limits } from './limits.ts';
import type { RejectionReason } from './result.ts';
import { linearRegExp, superLinearReason } from './tool-schema.ts';

export const ToolDefinitionSchema = z
  .object({
    name: z.string().regex(TOOL_NAME_PATTERN),
    description: z.string().min(1).max(4096),
    /** JSON Schema (draft-07 / 2019 subset ajv accepts) of the tool's input. */
    inputSchema: z.record(z.string(), z.unknown()),
    /** The tool's code: usually a module whose default export takes the input. */
    code: z.string().min(1),
    language: z.enum(['javascript', 'typescript']).default('javascript'),
    /** Default limits for calls to this tool; a request's own limits win, and ceilings bind both. */
    limits: LimitsRequestSchema.optional(),
  })
  .strict();

export type ToolDefinitionInput = z.input<typeof ToolDefinitionSchema>;
export type ToolDefinition = z.output<typeof ToolDefinitionSchema>;

/** What a tool call becomes: ordinary code with the tool's language and limits. */
export interface ResolvedTool {
  code: string;
  language: 'javascript' | 'typescript';
  /** zod's partial output: a field may be present and undefined, which means "not set". */
  limits: { [K in keyof Limits]?: Limits[K] | undefined } | undefined;
}

export type ResolveToolResult = { ok: true; tool: ResolvedTool } | { ok: false; reasons: RejectionReason[] };

/** A definition as LLM APIs take it: name, description and the JSON Schema of the input. */
export interface ToolSpec {
  name: string;
  description: string;
  input_schema: Record<string, unknown>;
}

/**
 * The built-in tool every agent gets: run a snippet. It is not a registered tool; a call to it is a
 * plain code request (`{ code, input, language }`).
 */
export const EXECUTE_CODE_TOOL: Readonly<ToolSpec> = Object.freeze({
  name: 'execute_code',
  description:
    'Run JavaScript or TypeScript in a fresh sandbox with no network, no filesystem and no modules. ' +
    'A classic script returns its last expression (a promise is awaited); a module returns what its ' +
    '`export default` function returns when called with `input`. console.log output is captured. ' +
    'Time, memory and output are capped.',
  input_schema: {
    type: 'object',
    properties: {
      code: { type: 'string', description: 'The source to run' },
      language: { type: 'string', enum: ['javascript', 'typescript'], default: 'javascript' },
      input: { description: 'Any JSON value, visible to the code as the global `input`' },
    },
    required: ['code'],
    additionalProperties: false,
  },
});

interface RegisteredTool {
  definition: ToolDefinition;
  validate: ValidateFunction;
}

export interface ToolRegistry {
  /** Turns a `{ tool, input }` request into code to run, or the reasons it cannot run. */
  resolve(request: Pick<Request, 'tool' | 'input'>): ResolveToolResult;
  /** Definitions for an LLM API: execute_code first, then the registered tools by name. */
  specs(): ToolSpec[];
  has(name: string): boolean;
  /**
   * Throws, naming the tool and the limit, when a tool's own limit is above `ceilings`: under
   * ceilingMode 'reject' every call would be rejected. createPool calls it in that mode.
   */
  checkLimits?(ceilings: Readonly<Limits>): void;
}

function describeAjvError(error: ErrorObject): RejectionReason {
  const field = error.instancePath === '' ? 'input' : `input${error.instancePath.replaceAll('/', '.')}`;
  return { rule: 'tool_input_invalid', field, message: `${field} ${error.message ?? 'is invalid'}` };
}

/** Validates every definition (throws naming the bad tool and field) and compiles its schema. */
export function createToolRegistry(definitions: readonly ToolDefinitionInput[] = []): ToolRegistry {
  // strict: an unknown keyword in an operator's schema is a mistake worth failing start-up for.
  // Patterns are matched in linear time (see tool-schema.ts): the input is the caller's.
  const ajv = new Ajv({ strict: true, allErrors: true, code: { regExp: linearRegExp } });
  const tools = new Map<string, RegisteredTool>();
  definitions.forEach((input, index) => {
    // Where a message points: the definition's index, and its name when it has a valid one.
    const name = (input as { name?: unknown } | null)?.name;
    const named = typeof name === 'string' && TOOL_NAME_PATTERN.test(name) ? `tool '${name}': ` : '';
    const at = (path: string) => `${named}tools[${index}]${path ? `.${path}` : ''}`;
    const parsed = ToolDefinitionSchema.safeParse(input);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new Error(`${at(issue ? issue.path.map(String).join('.') : '')}: ${issue?.message ?? 'invalid tool definition'}`);
    }
    const definition = parsed.data;
    for (const key of LIMIT_KEYS) {
      const value = definition.limits?.[key];
      if (value !== undefined && value < LIMIT_FLOORS[key]) {
        throw new Error(`${at(`limits.${key}`)}: ${value} is below the floor of ${LIMIT_FLOORS[key]}: no job runs with less`);
      }
    }
    if (definition.name === EXECUTE_CODE_TOOL.name || tools.has(definition.name)) {
      throw new Error(`${at('name')}: '${definition.name}' is already defined`);
    }
    const slow = superLinearReason(definition.inputSchema);
    if (slow !== undefined) {
      // The reason starts with the path it found (`inputSchema.properties...: why`).
      const colon = slow.indexOf(': ');
      throw new Error(colon < 0 ? `${at('')}: ${slow}` : `${at(slow.slice(0, colon))}${slow.slice(colon)}`);
    }
    let validate: ValidateFunction;
    try {
      validate = ajv.compile(definition.inputSchema);
    } catch (cause) {
      throw new Error(`${at('inputSchema')}: ${(cause as Error).message}`, { cause });
    }
    tools.set(definition.name, { definition, validate });
  });

  return {
    checkLimits(ceilings) {
      for (const { definition } of tools.values()) {
        for (const key of LIMIT_KEYS) {
          const value = definition.limits?.[key];
          if (value !== undefined && value > ceilings[key]) {
            throw new Error(`tool '${definition.name}': limits.${key}: ${value} is above the ceiling of ${ceilings[key]}: every call would be rejected`);
          }
        }
      }
    },
    resolve(request) {
      const name = request.tool ?? '';
      const tool = tools.get(name);
      if (!tool) {
        return { ok: false, reasons: [{ rule: 'unknown_tool', field: 'tool', message: `no tool named '${name}'` }] };
      }
      if (!tool.validate(request.input ?? null)) {
        return { ok: false, reasons: (tool.validate.errors ?? []).slice(0, 20).map(describeAjvError) };
      }
      const { code, language, limits } = tool.definition;
      return { ok: true, tool: { code, language, limits } };
    },
    specs() {
      const registered = [...tools.values()]
        .map(({ definition }) => ({
          name: definition.name,
          description: definition.description,
          input_schema: definition.inputSchema,
        }))
        .sort((a, b) => a.name.localeCompare(b.name));
      return [{ ...EXECUTE_CODE_TOOL }, ...registered];
    },
    has(name) {
      return tools.has(name);
    },
  };
}

/** Tool specs in the shape an API family takes: `anthropic` (name/description/input_schema) or `openai`. */
export function formatToolSpecs(specs: readonly ToolSpec[], format: 'anthropic' | 'openai'): unknown[] {
  if (format === 'anthropic') return specs.map((spec) => ({ ...spec }));
  return specs.map((spec) => ({
    type: 'function',
    function: { name: spec.name, description: spec.description, parameters: spec.input_schema },
  }));
}
