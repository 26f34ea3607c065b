// `sandpool submit FILE|-`: runs in the CLI process (src/cli.ts dispatches here). Puts one job on
// the queue and prints its id, or with --wait its Result, as `run` prints it.
import { parseArgs } from 'node:util';
import { EXIT_CODES, REQUEST_FLAGS, UsageError, integerFlag, printErrorLine, printResult, queueErrorExit, requestFromFlags, type Env } from './cli.ts';
import { createClient, QueueError, type Client } from './client.ts';
import { ConfigError, loadClientConfig, unknownVariables } from './config.ts';
import { MAX_TIMER_MS } from './options.ts';
import { MAX_QUEUE_TIMEOUT_MS, TENANT_ID_PATTERN } from './request.ts';

const USAGE = `Usage: sandpool submit FILE|- [options]

Adds a job to the queue (workers run it: sandpool worker) and prints its id; with --wait, waits for
its Result and prints it like \`sandpool run\` (exit code by status, see the README).

  --redis URL        Redis URL (default: SANDPOOL_REDIS_URL, else redis://127.0.0.1:6379)
  --queue NAME       queue name (default: SANDPOOL_QUEUE, else sandpool)
  --prefix PREFIX    key prefix (default: SANDPOOL_PREFIX, else bull)
  --wait             wait for the Result
  --wait-ms MS       give up waiting after this long
  --json             print the id, or the Result, as one JSON line
  --input JSON  --language L  --timeout MS  --cpu-time MS  --memory MB  --max-output BYTES
  --max-result BYTES  --tenant ID  --tool NAME  --idempotency-key KEY  --queue-timeout MS
`;

const OPTIONS = {
  ...REQUEST_FLAGS,
  queue: { type: 'string' },
  prefix: { type: 'string' },
  wait: { type: 'boolean' },
  'wait-ms': { type: 'string' },
  'idempotency-key': { type: 'string' },
  'queue-timeout': { type: 'string' },
} as const;

const FLAG_TO_ENV = { redis: 'SANDPOOL_REDIS_URL', queue: 'SANDPOOL_QUEUE', prefix: 'SANDPOOL_PREFIX' } as const;

/** A client configured from the environment (SANDPOOL_*), flags winning; throws ConfigError. */
export async function connectClient(
  env: Env,
  flags: { redis?: string | undefined; queue?: string | undefined; prefix?: string | undefined },
): Promise<Client> {
  const given = (Object.keys(FLAG_TO_ENV) as (keyof typeof FLAG_TO_ENV)[])
    .filter((flag) => flags[flag] !== undefined)
    .map((flag) => [flag, FLAG_TO_ENV[flag]] as const);
  const unknown = unknownVariables(env);
  if (unknown.length > 0) {
    process.stderr.write(`sandpool: ignoring environment variables sandpool does not read (misspelt?): ${unknown.slice(0, 20).join(', ')}\n`);
  }
  let config;
  try {
    config = loadClientConfig({ ...env, ...Object.fromEntries(given.map(([flag, variable]) => [variable, flags[flag]])) });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    // Name the flag the person typed rather than the variable it stands for.
    let message = error.message;
    for (const [flag, variable] of given) message = message.replaceAll(`${variable}=`, `--${flag}=`);
    throw new ConfigError(message, { cause: error });
  }
  return createClient({
    connection: config.redisUrl,
    queue: config.queue,
    prefix: config.prefix,
    maxQueued: config.maxQueued,
    maxQueuedPerTenant: config.maxQueuedPerTenant,
    attempts: config.attempts,
    backoffMs: config.backoffMs,
    redisTimeoutMs: config.redisTimeoutMs,
    // The workers screen every job with their own settings (their policy file may loosen or
    // tighten the defaults), and theirs decide: a screen here, with the defaults, would turn away
    // what they accept.
    prescreen: { mode: 'off' },
    // Retention and the events cap are the workers' settings (SANDPOOL_KEEP_*, SANDPOOL_EVENTS_MAX_LEN):
    // the client's jobs carry none of their own, and its queue leaves the cap alone.
  });
}

/** Resolves with the exit code; never calls process.exit. */
export async function submitMain(argv: string[], env: Env): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    process.stderr.write(`sandpool submit: ${(error as Error).message}\n${USAGE}`);
    return EXIT_CODES.usage;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  try {
    if (positionals.length > 1) throw new UsageError(`submit takes one FILE, got ${positionals.length}`);
    const request = await requestFromFlags(values, positionals[0], 'submit');
    if (values['idempotency-key'] !== undefined) request.idempotencyKey = values['idempotency-key'];
    const queueTimeout = integerFlag('queue-timeout', values['queue-timeout'], 1, MAX_QUEUE_TIMEOUT_MS);
    if (queueTimeout !== undefined) request.queueTimeoutMs = queueTimeout;
    const waitMs = integerFlag('wait-ms', values['wait-ms'], 1, MAX_TIMER_MS);

    const client = await connectClient(env, { redis: values.redis, queue: values.queue, prefix: values.prefix });
    try {
      if (!values.wait) {
        const id = await client.submit(request);
        process.stdout.write(values.json ? `${JSON.stringify({ id })}\n` : `${id}\n`);
        return 0;
      }
      const abort = new AbortController();
      const onSignal = () => abort.abort();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        const result = await client.execute(request, { signal: abort.signal, ...(waitMs !== undefined ? { waitMs } : {}) });
        printResult(result, values.json === true);
        return EXIT_CODES[result.status];
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    } finally {
      await client.close();
    }
  } catch (error) {
    return commandFailed('submit', error, values.json === true);
  }
}

/**
 * A usage, configuration or queue error: said on stderr; with --json also as one line on stdout
 * (`{"error":{"code","message"},"id"?}`), so that a program reading stdout is not left with nothing.
 */
function commandFailed(command: string, error: unknown, json: boolean): number {
  if (error instanceof UsageError || error instanceof ConfigError) {
    process.stderr.write(`sandpool ${command}: ${error.message}\n`);
    if (json) printErrorLine('USAGE', error.message);
    return EXIT_CODES.usage;
  }
  if (error instanceof QueueError) {
    process.stderr.write(`sandpool ${command}: ${error.code}: ${error.message}\n`);
    if (json) printErrorLine(error.code, error.message, error.jobId);
    return queueErrorExit(error.code);
  }
  throw error;
}

const JOB_OPTIONS = {
  redis: { type: 'string' },
  queue: { type: 'string' },
  prefix: { type: 'string' },
  tenant: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

const JOB_USAGE = (command: 'result' | 'cancel', what: string) => `Usage: sandpool ${command} ID [options]

${what}

  --tenant ID        the tenant that submitted the job (default: default); another's jobs are unknown
  --redis URL        Redis URL (default: SANDPOOL_REDIS_URL, else redis://127.0.0.1:6379)
  --queue NAME       queue name (default: SANDPOOL_QUEUE, else sandpool)
  --prefix PREFIX    key prefix (default: SANDPOOL_PREFIX, else bull)
  --json             print the outcome as one JSON line
`;

const RESULT_USAGE = JOB_USAGE(
  'result',
  'Prints the Result of a job submitted earlier (sandpool submit prints its id), exit code by its status\n' +
    'as `sandpool run`; a job with no Result yet (waiting, running, or unknown to the tenant) exits 9.',
);
const CANCEL_USAGE = JOB_USAGE(
  'cancel',
  'Cancels a job: a waiting one is removed, a running one stopped wherever it runs (its Result is then\n' +
    '`cancelled`). Exits 0, or 9 when there was nothing to cancel (finished, or unknown to the tenant).',
);

/** `sandpool result ID` and `sandpool cancel ID`: the client's getResult() and cancel(). */
export async function jobMain(command: 'result' | 'cancel', argv: string[], env: Env): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: JOB_OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    process.stderr.write(`sandpool ${command}: ${(error as Error).message}\n`);
    return EXIT_CODES.usage;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(command === 'result' ? RESULT_USAGE : CANCEL_USAGE);
    return 0;
  }
  const json = values.json === true;
  try {
    const [id] = positionals;
    if (positionals.length !== 1 || id === undefined || id === '') throw new UsageError(`${command} takes one job ID, got ${positionals.length}`);
    const tenantId = values.tenant ?? 'default';
    if (!TENANT_ID_PATTERN.test(tenantId)) throw new UsageError(`--tenant: expected ${TENANT_ID_PATTERN}, got '${tenantId.slice(0, 80)}'`);
    const client = await connectClient(env, { redis: values.redis, queue: values.queue, prefix: values.prefix });
    try {
      if (command === 'cancel') {
        const cancelled = await client.cancel(id, { tenantId });
        if (json) process.stdout.write(`${JSON.stringify({ id, cancelled })}\n`);
        else if (cancelled) process.stdout.write(`cancelled ${id}\n`);
        else process.stderr.write(`sandpool cancel: nothing to cancel: job ${id} has finished, or is unknown to tenant ${tenantId}\n`);
        return cancelled ? 0 : EXIT_CODES.unanswered;
      }
      const result = await client.getResult(id, { tenantId });
      if (result === undefined) {
        const message = `job ${id} has no Result yet: it is waiting or running, or unknown to tenant ${tenantId}`;
        process.stderr.write(`sandpool result: ${message}\n`);
        if (json) printErrorLine('NO_RESULT', message, id);
        return EXIT_CODES.unanswered;
      }
      printResult(result, json);
      return EXIT_CODES[result.status];
    } finally {
      await client.close();
    }
  } catch (error) {
    return commandFailed(command, error, json);
  }
}

