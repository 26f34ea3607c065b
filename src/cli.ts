// The `sandpool` command. Runs in the user's shell process; `run` is embedded (the pool spawns the
// executor processes that hold the isolates), `worker` and `submit` go to the queue side.
import { existsSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { extname } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { LIMIT_MAXIMA } from './limits.ts';
import { requestJsonSchema, type RequestInput } from './request.ts';
import type { Result, Status } from './result.ts';
import type { ConfigError } from './config.ts';
import type { QueueError } from './queue.ts';
import { createToolRegistry, formatToolSpecs, type ToolDefinitionInput, type ToolRegistry } from './tools.ts';

/**
 * Exit codes, one per status, documented in the README. 2 is also a usage or configuration error;
 * 8 is sandpool itself failing (never a job's doing), so that 1 always means the snippet's `error`.
 */
export const EXIT_CODES: Readonly<Record<Status | 'usage' | 'failure' | 'unanswered', number>> = Object.freeze({
  ok: 0,
  error: 1,
  usage: 2,
  timeout: 3,
  memory_limit: 4,
  rejected: 5,
  cancelled: 6,
  internal_error: 7,
  failure: 8,
  unanswered: 9,
});

/**
 * The exit code of a queue-side failure: a refused request is `rejected`; a full queue or a wait
 * that ran out is `unanswered` (the job was not taken, or may still run: worth trying again or
 * asking later); anything else (Redis away) is the infrastructure's, `internal_error`.
 */
export function queueErrorExit(code: QueueError['code']): number {
  if (code === 'INVALID_REQUEST') return EXIT_CODES.rejected;
  if (code === 'QUEUE_FULL' || code === 'TENANT_QUEUE_FULL' || code === 'WAIT_TIMEOUT') return EXIT_CODES.unanswered;
  return EXIT_CODES.internal_error;
}

/** The most a FILE (code or tool definitions) or standard input is read: past it, a usage error. */
export const MAX_SOURCE_BYTES = 64 * 1024 * 1024;

const USAGE = `Usage: sandpool <command> [options]

Commands:
  run FILE|-        run a snippet embedded (no Redis); with --redis, through the queue
  worker            serve jobs from Redis (see: sandpool worker --help)
  submit FILE|-     submit a snippet to the queue (see: sandpool submit --help)
  result ID         print the Result of a submitted job (--tenant ID: the submitter's tenant)
  cancel ID         cancel a submitted job, waiting or running (--tenant ID)
  bench             measure what isolation costs (bench/engine.ts; --quick for a short run)
  tools             print tool definitions (JSON Schema) for LLM APIs
  schema            print the request's JSON Schema
  --version         print sandpool's version

Options for run:
  --json            print the Result as one JSON line on stdout
  --input JSON      the value of the global \`input\`
  --language LANG   javascript | typescript (default: from the file name, else javascript)
  --timeout MS      wall-clock limit          --cpu-time MS   CPU-time limit (each has its
                    own default, 5000: raising --timeout alone leaves the CPU limit at 5000)
  --memory MB       isolate heap limit        --max-output BYTES  cap on stdout and stderr each
  --max-result BYTES  cap on the result       --tenant ID     tenant id
  --tools FILE      JSON file of tool definitions (an array), for --tool
  --tool NAME       invoke a registered tool with --input instead of running code
  --redis URL       go through the queue at this Redis instead of running embedded
  --queue NAME      with --redis: the queue (default: SANDPOOL_QUEUE, else sandpool)
  --prefix PREFIX   with --redis: the key prefix (default: SANDPOOL_PREFIX, else bull)
  --no-prescreen    do not pre-screen (the sandbox does not depend on it)
`;

const TOOLS_USAGE = `Usage: sandpool tools [--tools FILE] [--format anthropic|openai]

Prints tool definitions (JSON Schema) for an LLM API: the built-in execute_code, then the tools
defined in FILE (a JSON array of { name, description, inputSchema, code }).
`;

/** From src/ in a checkout, from dist/src/ in an installed package. */
const PACKAGE_JSON = import.meta.url.endsWith('.ts') ? '../package.json' : '../../package.json';

const SCHEMA_USAGE = `Usage: sandpool schema

Prints the request's JSON Schema (draft 2020-12), for producers that do not use sandpool's client.
`;

export class UsageError extends Error {
  override name = 'UsageError';
}

/** Flags that shape the request, shared by `run` and `submit`. */
export const REQUEST_FLAGS = {
  json: { type: 'boolean' },
  input: { type: 'string' },
  language: { type: 'string' },
  timeout: { type: 'string' },
  'cpu-time': { type: 'string' },
  memory: { type: 'string' },
  'max-output': { type: 'string' },
  'max-result': { type: 'string' },
  tenant: { type: 'string' },
  tool: { type: 'string' },
  redis: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

const RUN_OPTIONS = {
  ...REQUEST_FLAGS,
  tools: { type: 'string' },
  'no-prescreen': { type: 'boolean' },
  queue: { type: 'string' },
  prefix: { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

/** The environment, as the process entry handed it over; read only through loadConfig. */
export type Env = Readonly<Record<string, string | undefined>>;

function parse<O extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: O) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (cause) {
    throw new UsageError((cause as Error).message, { cause });
  }
}

/**
 * A flag's whole-number value, from `min` to `max`, or undefined when the flag was not given. A value
 * out of range is a usage error (exit 2), as any bad flag is, not a `rejected` job.
 */
export function integerFlag(name: string, value: string | undefined, min = 0, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (value === undefined) return undefined;
  const number = /^\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(number) || number < min || number > max) {
    const range = max < Number.MAX_SAFE_INTEGER ? ` from ${min} to ${max}` : min > 0 ? ` of at least ${min}` : '';
    throw new UsageError(`--${name} expects a whole number${range}, got '${value}'`);
  }
  return number;
}

/**
 * A FILE, or standard input for '-', as UTF-8; at most MAX_SOURCE_BYTES are read (/dev/zero, a
 * runaway pipe), so what is too large fails at once instead of filling memory first.
 */
async function readSource(path: string): Promise<string> {
  const tooLarge = () => new UsageError(`${path === '-' ? 'standard input' : path} is larger than ${MAX_SOURCE_BYTES} bytes`);
  const chunks: Buffer[] = [];
  let total = 0;
  const take = (chunk: Buffer) => {
    total += chunk.length;
    if (total > MAX_SOURCE_BYTES) throw tooLarge();
    chunks.push(chunk);
  };
  if (path === '-') {
    for await (const chunk of process.stdin) take(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }
  const cannot = (cause: unknown) =>
    new UsageError(`cannot read ${path}: ${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message}`, { cause });
  let file;
  try {
    file = await open(path, 'r');
  } catch (cause) {
    throw cannot(cause);
  }
  try {
    for (;;) {
      const buffer = Buffer.allocUnsafe(1024 * 1024);
      let read;
      try {
        ({ bytesRead: read } = await file.read(buffer, 0, buffer.length, null));
      } catch (cause) {
        throw cannot(cause);
      }
      if (read === 0) break;
      take(buffer.subarray(0, read));
    }
  } finally {
    await file.close();
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function readTools(path: string | undefined): Promise<ToolDefinitionInput[]> {
  if (path === undefined) return [];
  const text = await readSource(path);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    throw new UsageError(`--tools ${path}: not JSON (${(cause as Error).message})`, { cause });
  }
  if (!Array.isArray(parsed)) throw new UsageError(`--tools ${path}: expected a JSON array of tool definitions`);
  return parsed as ToolDefinitionInput[];
}

/** The registry of the tools in FILE; a bad definition is a usage error naming the tool and field. */
async function toolRegistry(path: string | undefined): Promise<ToolRegistry> {
  const definitions = await readTools(path);
  try {
    return createToolRegistry(definitions);
  } catch (cause) {
    throw new UsageError(`--tools ${path ?? ''}: ${(cause as Error).message}`, { cause });
  }
}

/** Builds the request of `run`/`submit` from flags; exported for the queue side's `submit`. */
export async function requestFromFlags(
  values: Partial<Record<keyof typeof REQUEST_FLAGS, string | boolean | undefined>>,
  file: string | undefined,
  command: 'run' | 'submit' = 'run',
): Promise<RequestInput> {
  const str = (key: keyof typeof REQUEST_FLAGS) => {
    const value = values[key];
    return typeof value === 'string' ? value : undefined;
  };
  const request: RequestInput = {};
  const tool = str('tool');
  if (tool !== undefined) {
    if (file !== undefined) throw new UsageError('give either --tool NAME or a FILE, not both');
    request.tool = tool;
  } else {
    if (file === undefined) throw new UsageError(`${command} needs a FILE (or - for standard input)`);
    request.code = await readSource(file);
  }
  const language = str('language') ?? (file && ['.ts', '.mts', '.cts'].includes(extname(file)) ? 'typescript' : undefined);
  if (language !== undefined) {
    if (language !== 'javascript' && language !== 'typescript') {
      throw new UsageError(`--language expects javascript or typescript, got '${language}'`);
    }
    request.language = language;
  }
  const input = str('input');
  if (input !== undefined) {
    try {
      request.input = JSON.parse(input);
    } catch (cause) {
      throw new UsageError(`--input expects JSON: ${(cause as Error).message}`, { cause });
    }
  }
  const limits = {
    // The bounds a request may ask for (its limits are then raised to their floor, clamped or
    // refused at the ceilings as any request's are).
    timeoutMs: integerFlag('timeout', str('timeout'), 1, LIMIT_MAXIMA.timeoutMs),
    cpuTimeMs: integerFlag('cpu-time', str('cpu-time'), 1, LIMIT_MAXIMA.cpuTimeMs),
    memoryMb: integerFlag('memory', str('memory'), 1, LIMIT_MAXIMA.memoryMb),
    maxOutputBytes: integerFlag('max-output', str('max-output'), 0, LIMIT_MAXIMA.maxOutputBytes),
    maxResultBytes: integerFlag('max-result', str('max-result'), 1, LIMIT_MAXIMA.maxResultBytes),
  };
  const given = Object.fromEntries(Object.entries(limits).filter(([, value]) => value !== undefined));
  if (Object.keys(given).length > 0) request.limits = given;
  const tenant = str('tenant');
  if (tenant !== undefined) request.tenantId = tenant;
  return request;
}

/** Prints a Result the way a person reads it, or as one JSON line. */
export function printResult(result: Result, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return;
  }
  if (result.stdout) process.stdout.write(result.stdout.endsWith('\n') ? result.stdout : `${result.stdout}\n`);
  if (result.stderr) process.stderr.write(result.stderr.endsWith('\n') ? result.stderr : `${result.stderr}\n`);
  for (const warning of result.warnings) {
    const at = warning.line !== undefined ? ` (line ${warning.line}, column ${warning.column ?? 0})` : '';
    process.stderr.write(`sandpool: warning ${warning.rule}: ${warning.message}${at}\n`);
  }
  const { truncated, output } = result;
  if (truncated.stdout) process.stderr.write(`sandpool: stdout truncated, ${output.stdout.omittedBytes} bytes omitted\n`);
  if (truncated.stderr) process.stderr.write(`sandpool: stderr truncated, ${output.stderr.omittedBytes} bytes omitted\n`);
  if (result.status === 'ok') {
    if (result.value !== undefined) process.stdout.write(`${JSON.stringify(result.value, null, 2)}\n`);
    if (truncated.value) process.stderr.write('sandpool: value truncated at maxResultBytes\n');
    return;
  }
  const detail =
    result.status === 'rejected'
      ? (result.rejection?.reasons ?? [])
          .map((r) => `\n  ${r.rule}: ${r.message}${r.line !== undefined ? ` (line ${r.line}, column ${r.column ?? 0})` : ''}`)
          .join('')
      : result.error
        ? `: ${result.error.name}: ${result.error.message}${result.error.limit ? ` (${result.error.limit} limit)` : ''}`
        : '';
  process.stderr.write(`sandpool: ${result.status}${detail}\n`);
  if (result.error?.stack && result.status === 'error') process.stderr.write(`${result.error.stack}\n`);
}

async function runCommand(argv: string[], env: Env): Promise<number> {
  const { values, positionals } = parse(argv, RUN_OPTIONS);
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (positionals.length > 1) throw new UsageError(`run takes one FILE, got ${positionals.length}`);
  if (values.redis !== undefined && (values.tools !== undefined || values['no-prescreen'])) {
    // Through the queue the workers' own tools and pre-screen apply: these would be ignored.
    throw new UsageError('--tools and --no-prescreen apply to an embedded run, not with --redis');
  }
  if (values.redis === undefined && (values.queue !== undefined || values.prefix !== undefined)) {
    throw new UsageError('--queue and --prefix name the queue of a run with --redis');
  }
  const request = await requestFromFlags(values, positionals[0]);
  const tools = await toolRegistry(values.tools);
  const abort = new AbortController();
  const onSignal = () => abort.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let result: Result;
  try {
    if (values.redis !== undefined) {
      const { connectClient } = await import('./submit.ts');
      const client = await connectClient(env, { redis: values.redis, queue: values.queue, prefix: values.prefix });
      try {
        result = await client.execute(request, { signal: abort.signal });
      } finally {
        await client.close();
      }
    } else {
      const { createPool } = await import('./pool.ts');
      const pool = await createPool({
        executors: 1,
        threadsPerExecutor: 1,
        tools,
        ...(values['no-prescreen'] ? { prescreen: { mode: 'off' as const } } : {}),
      });
      try {
        result = await pool.execute(request, { signal: abort.signal });
      } finally {
        await pool.close();
      }
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  printResult(result, values.json === true);
  return EXIT_CODES[result.status];
}

async function toolsCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { tools: { type: 'string' }, format: { type: 'string' }, help: { type: 'boolean', short: 'h' } });
  if (values.help) {
    process.stdout.write(TOOLS_USAGE);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`tools takes no arguments (a file of tools is --tools FILE), got '${positionals[0]}'`);
  const format = values.format ?? 'anthropic';
  if (format !== 'anthropic' && format !== 'openai') {
    throw new UsageError(`--format expects anthropic or openai, got '${format}'`);
  }
  const registry = await toolRegistry(values.tools);
  process.stdout.write(`${JSON.stringify(formatToolSpecs(registry.specs(), format), null, 2)}\n`);
  return 0;
}

const BENCH_USAGE = 'Usage: sandpool bench [--quick]\n\nRuns bench/engine.ts: sandpool against raw isolated-vm and node:vm, in one run.\n';

async function benchCommand(argv: string[]): Promise<number> {
  // Checked here: the bench script itself ignores what it does not know, so a typo ran the full bench.
  const { values, positionals } = parse(argv, { quick: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } });
  if (values.help) {
    process.stdout.write(BENCH_USAGE);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`bench takes no arguments, got '${positionals[0]}'`);
  const script = new URL('../bench/engine.ts', import.meta.url);
  if (!existsSync(script)) {
    // The installed package ships dist/ only: the bench's TypeScript is in a checkout.
    throw new UsageError('bench runs from a checkout of sandpool (git clone, npm ci, then npx sandpool bench): the installed package does not include bench/');
  }
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, ['--no-node-snapshot', script.pathname, ...(values.quick ? ['--quick'] : [])], { stdio: 'inherit' });
  return await new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? 1)));
}

/** Runs the command line; resolves with the exit code. Never calls process.exit itself. */
export async function main(argv: string[], env: Env): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'run':
        return await runCommand(rest, env);
      case 'worker': {
        // The worker side lives in workers/; src never imports it statically.
        const worker = (await import(new URL('../workers/main' + extname(import.meta.url), import.meta.url).href)) as {
          main(argv: string[], env: Env): Promise<number>;
        };
        return await worker.main(rest, env);
      }
      case 'submit': {
        const { submitMain } = await import('./submit.ts');
        return await submitMain(rest, env);
      }
      case 'result':
      case 'cancel': {
        const { jobMain } = await import('./submit.ts');
        return await jobMain(command, rest, env);
      }
      case 'bench':
        return await benchCommand(rest);
      case 'tools':
        return await toolsCommand(rest);
      case 'schema': {
        const { values, positionals } = parse(rest, { help: { type: 'boolean', short: 'h' } });
        if (values.help) {
          process.stdout.write(SCHEMA_USAGE);
          return 0;
        }
        if (positionals.length > 0) throw new UsageError(`schema takes no arguments, got '${positionals[0]}'`);
        process.stdout.write(`${JSON.stringify(requestJsonSchema(), null, 2)}\n`);
        return 0;
      }
      case '--version':
      case 'version': {
        const { readFileSync } = await import('node:fs');
        const pkg = JSON.parse(readFileSync(new URL(PACKAGE_JSON, import.meta.url), 'utf8')) as { version: string };
        process.stdout.write(`sandpool ${pkg.version}\n`);
        return 0;
      }
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        // Asked for: on stdout. Given nothing: a usage error, on stderr.
        (command === undefined ? process.stderr : process.stdout).write(USAGE);
        return command === undefined ? EXIT_CODES.usage : 0;
      default:
        throw new UsageError(`unknown command '${command}'`);
    }
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`sandpool: ${error.message}\n(see: sandpool --help)\n`);
      return EXIT_CODES.usage;
    }
    // By name: the queue side (ioredis, BullMQ) is loaded only by the commands that use it.
    if (isNamed<ConfigError>(error, 'ConfigError')) {
      process.stderr.write(`sandpool: ${error.message}\n`);
      return EXIT_CODES.usage;
    }
    if (isNamed<QueueError>(error, 'QueueError')) {
      process.stderr.write(`sandpool: ${error.code}: ${error.message}\n`);
      // `run --redis --json` with no Result (Redis away, a full queue): stdout still gets one line.
      if (command === 'run' && rest.includes('--json')) printErrorLine(error.code, error.message, error.jobId);
      return queueErrorExit(error.code);
    }
    // Not the job's doing and not the user's: one line, and an exit code of its own.
    process.stderr.write(`sandpool: failed: ${describe(error)}\n`);
    return EXIT_CODES.failure;
  }
}

/** With --json, where a command has no Result to print: `{"error":{"code","message"},"id"?}`, one line on stdout. */
export function printErrorLine(code: string, message: string, id?: string): void {
  process.stdout.write(`${JSON.stringify({ ...(id !== undefined ? { id } : {}), error: { code, message } })}\n`);
}

function isNamed<E extends Error>(error: unknown, name: string): error is E {
  return error instanceof Error && error.name === name;
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error).slice(0, 500);
  const code = (error as NodeJS.ErrnoException).code;
  return `${code ? `${code}: ` : ''}${error.message}`.slice(0, 500);
}
