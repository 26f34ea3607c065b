// Stable string codes are API: never renamed, never reused. This is the one table of them (the
// pre-screen's rule ids have their own, RULES in src/prescreen-rules.ts); README.md shows both, and
// test/unit/codes.test.ts fails when the code, this table and the README disagree.

/** `error.code` of an `internal_error` Result, or `.code` of a thrown error. */
export const ERROR_CODES = Object.freeze({
  POOL_CLOSED: 'execute() after close(), or a job still unfinished when close()\'s deadline passed',
  EXECUTOR_DIED: 'the executor process running the job died and no retry was left to run it elsewhere',
  EXECUTOR_FAILED: 'the executor could not run the job (its thread died) and no retry was left',
  EXECUTOR_UNAVAILABLE: 'executors keep failing to start; waiting jobs are answered instead of waiting forever',
  PIPELINE_FAILED: 'a bug in the pool\'s own pipeline; the request itself was not judged',
  JOB_FAILED: 'queue mode: the job failed on the infrastructure side on every attempt',
  INVALID_REQUEST: 'client: the request failed validation or the pre-screen before anything reached Redis',
  QUEUE_FULL: 'client: the queue holds as many waiting jobs as the configured bound',
  TENANT_QUEUE_FULL: 'client: this tenant holds as many waiting jobs as its bound',
  REDIS_UNAVAILABLE: 'client: Redis did not answer within the connect/command timeout',
  WAIT_TIMEOUT: 'client: execute()\'s waitMs passed before the job finished (the job goes on)',
  CLIENT_CLOSED: 'client: used after close()',
} as const);
export type ErrorCode = keyof typeof ERROR_CODES;

/** `rejection.reasons[].rule` for rejections that are not pre-screen findings. */
export const REJECTION_RULES = Object.freeze({
  validation: 'the request does not match the schema; `field` names the bad field',
  code_too_large: '`code` is larger than sizeLimits.maxCodeBytes',
  input_too_large: '`input` as JSON is larger than sizeLimits.maxInputBytes',
  limit_above_ceiling: 'a limit asked for more than its ceiling, with ceilingMode `reject`',
  unknown_tool: 'no tool of that name is registered',
  tool_input_invalid: 'the tool\'s input does not match its JSON Schema; `field` names where',
  pool_full: 'embedded: the pool holds `maxQueued` waiting jobs; nothing of this one ran, and it may be sent again',
} as const);
export type RejectionRule = keyof typeof REJECTION_RULES;
