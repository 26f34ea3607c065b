/**
 * sandpool: run untrusted JavaScript/TypeScript in fresh V8 isolates, embedded or over BullMQ.
 *
 * @example Embedded (no Redis):
 * ```ts
 * import { createPool } from 'sandpool';
 * const pool = await createPool();
 * const result = await pool.execute({ code: 'input.a + input.b', input: { a: 1, b: 2 } });
 * // result.status === 'ok', result.value === 3, result.metrics.wallTimeMs ...
 * await pool.close();
 * ```
 *
 * @example Over a queue (workers started with `sandpool worker --redis URL`):
 * ```ts
 * import { createClient } from 'sandpool';
 * const client = await createClient({ connection: 'redis://127.0.0.1:6379' });
 * const result = await client.execute({ code: 'console.log("hi"); 42', tenantId: 'acme' });
 * await client.close();
 * ```
 */
import type { WorkerHandle, WorkerOptions } from '../workers/main.ts';

export { createPool, PoolClosedError, POOL_ERROR_CODES } from './pool.ts';
export type { ExecuteOptions, Pool, PoolOptions, PoolStats } from './pool.ts';

export { createClient, QueueError } from './client.ts';
export type { Client, ClientOptions, QueueErrorCode } from './client.ts';

export { parseRequest, requestJsonSchema, RequestSchema } from './request.ts';
export type { JsonValue, Request, RequestInput, RequestIssue } from './request.ts';

export { STATUSES } from './result.ts';
export type {
  ErrorPhase,
  Metrics,
  OutputReport,
  RejectionReason,
  Result,
  ResultError,
  Status,
  TimeoutLimit,
  Warning,
} from './result.ts';

export { compileLimits, DEFAULT_CEILINGS, DEFAULT_LIMITS, DEFAULT_SIZE_LIMITS } from './limits.ts';
export type { CeilingMode, Limits, SizeLimits } from './limits.ts';

export { compilePrescreenOptions, DEFAULT_PRESCREEN, prescreen, RULES } from './prescreen.ts';
export type { PrescreenOptions, PrescreenReport, PrescreenRule } from './prescreen.ts';

export { createToolRegistry, EXECUTE_CODE_TOOL, formatToolSpecs } from './tools.ts';
export type { ToolDefinition, ToolDefinitionInput, ToolRegistry, ToolSpec } from './tools.ts';

export { ConfigError, loadConfig } from './config.ts';
export type { Config } from './config.ts';

export { ERROR_CODES, REJECTION_RULES } from './codes.ts';
export type { ErrorCode, RejectionRule } from './codes.ts';

export type { WorkerHandle, WorkerOptions } from '../workers/main.ts';

/**
 * Serves a queue in this process: a BullMQ Worker whose jobs run in the pool's supervised executor
 * processes (never in this one). The worker side is loaded on first use, so clients and embedded
 * pools never load it.
 */
export async function createWorker(options: WorkerOptions): Promise<WorkerHandle> {
  const extension = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
  const worker = (await import(new URL(`../workers/main${extension}`, import.meta.url).href)) as {
    createWorker(options: WorkerOptions): Promise<WorkerHandle>;
  };
  return worker.createWorker(options);
}
