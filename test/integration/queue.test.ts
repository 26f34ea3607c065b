// Queue mode against a real redis-server and the real engine: client ⇄ BullMQ ⇄ worker ⇄ pool.
// Each test serves its own uniquely named queue; the pool (executor processes) is shared.
import { readFileSync } from 'node:fs';
import { Job, Queue, QueueEvents } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, QueueError, type Client, type ClientOptions } from '../../src/client.ts';
import { createPool } from '../../src/pool.ts';
import { submitTransactions, type BullConnection, type SubmitTransactions } from '../../src/queue-admission.ts';
import { DEFAULT_LIMITS } from '../../src/limits.ts';
import { cancelledResult, createRedis, idempotentJobId, queueKeys } from '../../src/queue.ts';
import { requestJsonSchema } from '../../src/request.ts';
import { resultWithoutRun, type Result } from '../../src/result.ts';
import { createWorker, type WorkerHandle, type WorkerOptions } from '../../workers/main.ts';
import { createProcessor } from '../../workers/processor.ts';
import { pino } from 'pino';
import { startRedis, uniqueQueue, type RedisServer } from '../helpers/redis.ts';

let redis: RedisServer;
let pool: Awaited<ReturnType<typeof createPool>>;
const closers: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  redis = await startRedis();
  pool = await createPool({ executors: 1, threadsPerExecutor: 2, ceilings: { timeoutMs: 10_000, cpuTimeMs: 10_000, memoryMb: 128, maxOutputBytes: 1 << 20, maxResultBytes: 1 << 20 } });
});

afterAll(async () => {
  for (const close of closers.reverse()) await close().catch(() => undefined);
  await pool?.close({ deadlineMs: 2_000 });
  await redis?.dispose();
});

async function worker(queue: string, options: Partial<WorkerOptions> = {}): Promise<WorkerHandle> {
  const handle = await createWorker({ connection: redis.url, queue, pool, concurrency: 2, ...options });
  closers.push(() => handle.close({ graceMs: 1_000 }));
  return handle;
}

async function client(queue: string, options: Partial<ClientOptions> = {}): Promise<Client> {
  const c = await createClient({ connection: redis.url, queue, ...options });
  closers.push(() => c.close());
  return c;
}

function rawQueue(queue: string): Queue {
  const q = new Queue(queue, { connection: { url: redis.url } });
  closers.push(() => q.close());
  return q;
}

/** Events of a queue, ready, closed with the rest. */
async function queueEvents(queue: string): Promise<QueueEvents> {
  const events = new QueueEvents(queue, { connection: { url: redis.url } });
  closers.push(() => events.close());
  await events.waitUntilReady();
  return events;
}

/** A plain Redis connection, for writing what no BullMQ producer would. */
function plainRedis(): ReturnType<typeof createRedis> {
  const plain = createRedis(redis.url);
  closers.push(async () => plain.disconnect());
  return plain;
}

async function until<T>(what: string, probe: () => Promise<T | undefined | false>, tries = 200): Promise<T> {
  for (let i = 0; i < tries; i++) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`gave up waiting for ${what}`);
}

describe('client and worker over real Redis', () => {
  it('executes a snippet and returns its Result with the job id and queue metrics', async () => {
    const queue = uniqueQueue('exec');
    await worker(queue);
    const c = await client(queue);
    const result = await c.execute({ code: 'console.log("hi"); input.a + 1', input: { a: 41 } });
    expect(result.status).toBe('ok');
    expect(result.value).toBe(42);
    expect(result.stdout).toContain('hi');
    expect(typeof result.id).toBe('string');
    expect(result.metrics.attempt).toBe(1);
    expect(result.metrics.queueWaitMs).toBeGreaterThanOrEqual(0);
  });

  it('rejects a bad request before Redis: execute gives a rejected Result, submit a typed error, no job added', async () => {
    const queue = uniqueQueue('invalid');
    const c = await client(queue);
    const result = await c.execute({ code: 42, tenantId: 'bad tenant!' } as never);
    expect(result.status).toBe('rejected');
    const fields = result.rejection?.reasons.map((r) => r.field);
    expect(fields).toEqual(expect.arrayContaining(['code', 'tenantId']));
    await expect(c.submit({ limits: { timeoutMs: -1 } } as never)).rejects.toMatchObject({ code: 'INVALID_REQUEST' });
    const error = await c.submitBatch([{ code: '1' }, { code: '1', bogus: true } as never]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(QueueError);
    expect((error as QueueError).issues.map((i) => i.field).join(' ')).toContain('[1]');
    expect(await rawQueue(queue).count()).toBe(0);
  });

  it('checks sizes on the client as the pool does: oversize code or input and cyclic input never reach Redis', async () => {
    const queue = uniqueQueue('sizes');
    const c = await client(queue, { sizeLimits: { maxCodeBytes: 64, maxInputBytes: 64 } });
    const bigCode = await c.execute({ code: `// ${'é'.repeat(40)}\n1` });
    expect(bigCode.status).toBe('rejected');
    expect(bigCode.rejection?.reasons).toEqual([expect.objectContaining({ rule: 'code_too_large', field: 'code' })]);
    const bigInput = await c.execute({ code: 'input', input: { text: 'x'.repeat(100) } });
    expect(bigInput.rejection?.reasons).toEqual([expect.objectContaining({ rule: 'input_too_large', field: 'input' })]);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const cycle = await c.execute({ code: 'input', input: cyclic } as never);
    expect(cycle.status).toBe('rejected');
    expect(cycle.rejection?.reasons[0]).toMatchObject({ field: 'input' });
    await expect(c.submit({ code: 'x'.repeat(65) })).rejects.toMatchObject({ code: 'INVALID_REQUEST' });
    expect(await rawQueue(queue).count()).toBe(0);
  });

  it('pre-screens on the client (TypeScript after stripping): a blocked construct never reaches Redis', async () => {
    const queue = uniqueQueue('prescreen');
    const c = await client(queue);
    const result = await c.execute({ code: 'this.constructor.constructor("return process")()' });
    expect(result.status).toBe('rejected');
    expect(result.rejection?.reasons.length).toBeGreaterThan(0);
    const typed = await c.execute({
      code: 'const f: Function = this.constructor.constructor;\nf("return process")()',
      language: 'typescript',
    });
    expect(typed.status).toBe('rejected');
    expect(typed.rejection?.reasons[0]?.line).toBe(1);
    // Large code is screened on a thread, to the same effect.
    const padding = '// padding\n'.repeat(3_000);
    const large = await c.execute({ code: `${padding}this.constructor.constructor("return process")()` });
    expect(large.status).toBe('rejected');
    expect(large.rejection?.reasons[0]?.line).toBe(3_001);
    expect(await rawQueue(queue).count()).toBe(0);
  });

  it('TypeScript that the stripper cannot finish in time goes to the worker, whose Result says so', async () => {
    const queue = uniqueQueue('strip-bound');
    await worker(queue);
    const c = await client(queue);
    const code = `let a = ${'(<any>'.repeat(24)}b${')'.repeat(24)}`;
    const result = await c.execute({ code, language: 'typescript', limits: { timeoutMs: 400 } });
    expect(result).toMatchObject({ status: 'timeout', error: { limit: 'wall', phase: 'compile' }, metrics: { attempt: 1 } });
    expect(await c.execute({ code: '1 + 1' })).toMatchObject({ status: 'ok', value: 2 });
  });

  it('never retries user outcomes: a throw is an error Result on the first attempt', async () => {
    const queue = uniqueQueue('user-error');
    await worker(queue);
    const c = await client(queue);
    const result = await c.execute({ code: 'throw new TypeError("nope")' });
    expect(result.status).toBe('error');
    expect(result.error?.message).toContain('nope');
    expect(result.metrics.attempt).toBe(1);
    const job = await rawQueue(queue).getJob(result.id as string);
    // BullMQ counts the finished attempt too: one attempt, no retry.
    expect(job?.attemptsMade).toBe(1);
    expect(await job?.getState()).toBe('completed');
  });

  it('clamps limits to the worker ceilings whatever the producer asked', async () => {
    const queue = uniqueQueue('clamp');
    await worker(queue);
    const c = await client(queue);
    const result = await c.execute({ code: '1', limits: { timeoutMs: 3_600_000, memoryMb: 4096 } });
    expect(result.status).toBe('ok');
    expect(result.limits.timeoutMs).toBe(10_000);
    expect(result.limits.memoryMb).toBe(128);
  });

  it('submitBatch adds many jobs at once, each with its Result', async () => {
    const queue = uniqueQueue('batch');
    await worker(queue);
    const c = await client(queue);
    const ids = await c.submitBatch([{ code: '1' }, { code: '2' }, { code: '3' }]);
    expect(new Set(ids).size).toBe(3);
    const values = await Promise.all(
      ids.map((id) => until(`result of ${id}`, () => c.getResult(id)).then((r: Result) => r.value)),
    );
    expect(values).toEqual([1, 2, 3]);
  });
});

describe('infrastructure failures', () => {
  it('are retried with backoff; when the tries run out the caller gets internal_error', { timeout: 60_000 }, async () => {
    // The pool's stand-in thread module (test/fixtures/threads/scripted.ts) aborts its executor on
    // `abort`: the real pool answers internal_error after its own retries, every time.
    const crashing = await createPool({
      executors: 1,
      threadsPerExecutor: 1,
      maxAttempts: 1,
      threadModule: new URL('../fixtures/threads/scripted.ts', import.meta.url),
    });
    closers.push(() => crashing.close({ deadlineMs: 1_000 }));
    const queue = uniqueQueue('infra');
    await worker(queue, { pool: crashing, concurrency: 1 });
    const c = await client(queue, { attempts: 3, backoffMs: 50 });
    const result = await c.execute({ code: 'abort' });
    expect(result.status).toBe('internal_error');
    expect(result.metrics.attempt).toBe(3);
    const job = await rawQueue(queue).getJob(result.id as string);
    expect(job?.attemptsMade).toBe(3);
    // The last try completes the job with its Result, so a raw producer reads it as a return value too.
    expect(await job?.getState()).toBe('completed');
    const echo = await c.execute({ code: 'echo' });
    expect(echo.status).toBe('ok');
  });
});

describe('raw BullMQ producers (no sandpool code)', () => {
  it('a plain Queue.add gets the Result as the return value', async () => {
    const queue = uniqueQueue('raw-good');
    await worker(queue);
    const producer = rawQueue(queue);
    const events = await queueEvents(queue);
    const job = await producer.add('anything', { code: 'export default (x) => x * 2', input: 21 });
    const result = (await job.waitUntilFinished(events, 20_000)) as Result;
    expect(result.status).toBe('ok');
    expect(result.value).toBe(42);
    expect(result.id).toBe(job.id);
  });

  it('malformed data completes with a rejected Result naming the fields, without retries', async () => {
    const queue = uniqueQueue('raw-bad');
    await worker(queue);
    const producer = rawQueue(queue);
    const events = await queueEvents(queue);
    const job = await producer.add('x', { code: 7, limits: { timeoutMs: 'soon' }, extra: 1 }, { attempts: 3 });
    const result = (await job.waitUntilFinished(events, 20_000)) as Result;
    expect(result.status).toBe('rejected');
    const fields = result.rejection?.reasons.map((r) => r.field) ?? [];
    expect(fields).toEqual(expect.arrayContaining(['code', 'limits.timeoutMs']));
    expect(result.rejection?.reasons.every((r) => r.rule === 'validation')).toBe(true);
    expect((await producer.getJob(job.id as string))?.attemptsMade).toBe(1);
  });

  it('hand-written jobs: data that is not JSON, a timestamp that is no time, a bad tool name; each a Result, nothing logged of them', async () => {
    const queue = uniqueQueue('raw-hostile');
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(line) });
    await worker(queue, { logger });
    const producer = rawQueue(queue);
    const events = await queueEvents(queue);
    const plain = plainRedis();

    // Data no BullMQ producer would write: parked as delayed, rewritten, then released.
    const parked = await producer.add('x', { code: '1' }, { delay: 60_000, attempts: 3 });
    await plain.hset(`bull:${queue}:${parked.id}`, 'data', 'SECRET-TOKEN {not json');
    await parked.promote();
    const unreadable = (await parked.waitUntilFinished(events, 20_000)) as Result;
    expect(unreadable.status).toBe('rejected');
    expect(unreadable.rejection?.reasons).toEqual([expect.objectContaining({ field: '(root)', message: expect.stringContaining('not JSON') })]);

    // A timestamp that is not a time is read as "now": the job runs, on its first attempt.
    const stamped = await producer.add('x', { code: '6 * 7' }, { timestamp: 'abc' as never, attempts: 3 });
    const ran = (await stamped.waitUntilFinished(events, 20_000)) as Result;
    expect(ran).toMatchObject({ status: 'ok', value: 42, metrics: { attempt: 1 } });
    expect(ran.metrics.queueWaitMs).toBeLessThan(60_000);
    const ancient = await producer.add('x', { code: '1' }, { timestamp: 1.5 });
    expect(((await ancient.waitUntilFinished(events, 20_000)) as Result).metrics.queueWaitMs).toBeLessThan(60_000);

    const badTool = await producer.add('x', { tool: 'SECRET-TOKEN;' + 'y'.repeat(10_000) });
    expect(((await badTool.waitUntilFinished(events, 20_000)) as Result).status).toBe('rejected');

    // A name that could be a tool's but is none: whatever the producer wrote, so not logged.
    const unknownTool = await producer.add('x', { tool: 'SECRET-TOKEN-tool', input: {} });
    expect(((await unknownTool.waitUntilFinished(events, 20_000)) as Result).status).toBe('rejected');
    // A producer picks its own job ids, of any length: logged cut, with the length said.
    const longId = await producer.add('x', { code: '1' }, { jobId: `id-${'J'.repeat(20_000)}` });
    expect(((await longId.waitUntilFinished(events, 20_000)) as Result).status).toBe('ok');

    const good = await producer.add('x', { code: '2 + 2' });
    expect(((await good.waitUntilFinished(events, 20_000)) as Result).value).toBe(4);
    await until('the log lines', async () => lines.filter((line) => line.includes('job finished')).length >= 7);
    expect(lines.join('\n')).not.toContain('SECRET-TOKEN');
    expect(lines.find((line) => line.includes('id-JJJ'))).toContain('(20003 characters)');
    for (const line of lines) expect(line.length).toBeLessThan(2_000);
  });

  it('an attempt whose completion Redis refuses (its lock was lost) has no audit line; the run that counts has one', async () => {
    const queue = uniqueQueue('lost-lock');
    const lines: { msg?: string; jobId?: string; status?: string }[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });
    await worker(queue, { logger, lockDurationMs: 1_000, stalledIntervalMs: 500 });
    const producer = rawQueue(queue);
    const events = await queueEvents(queue);
    const plain = plainRedis();

    // A producer's own id, long: BullMQ's error messages quote it, and the log cuts them.
    const id = `lost-${'L'.repeat(5_000)}`;
    const job = await producer.add('x', { code: 'new Promise((resolve) => setTimeout(() => resolve(7), 600))' }, { jobId: id });
    // Another worker's stall check could do this; here the lock is taken away by hand mid-run.
    await until('the run to start', async () => (await plain.exists(`bull:${queue}:${id}:lock`)) === 1);
    await plain.del(`bull:${queue}:${id}:lock`);
    const result = (await job.waitUntilFinished(events, 20_000)) as Result;
    expect(result).toMatchObject({ status: 'ok', value: 7 });
    // The first run's completion was thrown away and the job ran again: one line, for the second.
    const audit = (line: (typeof lines)[number]) => line.msg === 'job finished' && line.jobId?.startsWith('lost-LLL') === true;
    await until('the audit line', async () => lines.some(audit));
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(lines.filter(audit)).toHaveLength(1);
    const refused = lines.filter((line) => line.msg === 'worker error').map((line) => String((line as { err?: string }).err));
    expect(refused.some((err) => err.includes('lost-LLL') && err.includes('characters)'))).toBe(true);
    for (const line of lines) expect(JSON.stringify(line).length).toBeLessThan(2_000);
  });

  it('data too long to parse is rejected unread, its length said; the next job runs', async () => {
    const queue = uniqueQueue('long-data');
    await expect(worker(queue, { maxDataChars: 10 })).rejects.toThrow(/options\.maxDataChars/);
    await worker(queue, { maxDataChars: 4_096 });
    const producer = rawQueue(queue);
    const events = await queueEvents(queue);
    const data = { code: 'input.length', input: 'SECRET'.repeat(1_000) };
    const long = await producer.add('x', data);
    const refused = (await long.waitUntilFinished(events, 20_000)) as Result;
    expect(refused.status).toBe('rejected');
    expect(refused.rejection?.reasons).toEqual([
      expect.objectContaining({ rule: 'validation', field: '(root)', message: expect.stringContaining(`${JSON.stringify(data).length} characters of JSON, more than the 4096`) }),
    ]);
    const short = await producer.add('x', { code: 'input.length', input: 'x'.repeat(3_000) });
    expect(((await short.waitUntilFinished(events, 20_000)) as Result).value).toBe(3_000);
  });

  it('data longer than a valid job is without escapes is read on a thread: escapes pass, bulk is rejected with its size', async () => {
    const queue = uniqueQueue('escaped-data');
    // Reads text up to 251,072 characters; takes 151,072 with escapes undone (20,000 + 128 K).
    await worker(queue, { maxDataChars: 131_072 + 6 * 20_000 });
    const producer = rawQueue(queue);
    const events = await queueEvents(queue);
    // Control characters in code: 6 characters of JSON each, 180 K as written, 30 K undone.
    const escaped = await producer.add('x', { code: `"${'\u0001'.repeat(30_000)}".length` });
    expect(JSON.stringify(escaped.data).length).toBeGreaterThan(151_072);
    expect(((await escaped.waitUntilFinished(events, 20_000)) as Result).value).toBe(30_000);
    // As long as written, with nothing to undo: refused, its size said.
    const bulk = await producer.add('x', { code: 'input.length', input: 'x'.repeat(160_000) });
    const refused = (await bulk.waitUntilFinished(events, 20_000)) as Result;
    expect(refused.status).toBe('rejected');
    expect(refused.rejection?.reasons).toEqual([
      expect.objectContaining({ rule: 'validation', field: '(root)', message: expect.stringMatching(/^\(root\): the job's data is 16\d{4} characters of JSON with its escapes undone \(16\d{4} as written\), more than the 151072 this worker reads$/) }),
    ]);
    // Text that is not JSON, long enough to be read on the thread: rejected as such.
    await producer.pause();
    const broken = await producer.add('x', { code: '1' });
    await plainRedis().hset(`bull:${queue}:${broken.id}`, 'data', `{"code": "${'y'.repeat(200_000)}`);
    await producer.resume();
    const unreadable = (await broken.waitUntilFinished(events, 20_000)) as Result;
    expect(unreadable.rejection?.reasons).toEqual([expect.objectContaining({ message: "(root): the job's data in Redis is not JSON" })]);
    // The worker goes on.
    expect(((await (await producer.add('x', { code: '2' })).waitUntilFinished(events, 20_000)) as Result).value).toBe(2);
  });

  it('hand-written fields BullMQ cannot fetch past (options, progress, parent, attempt counts) are reset at the stall: every job ends', async () => {
    const queue = uniqueQueue('raw-fields');
    const lines: { msg?: string; fields?: string[]; err?: string }[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });
    await worker(queue, { logger, lockDurationMs: 1_000, stalledIntervalMs: 500 });
    const producer = rawQueue(queue);
    const plain = plainRedis();
    const broken: Record<string, Record<string, string>> = {
      opts: { opts: 'SECRET {not json' },
      optsNull: { opts: 'null' },
      progress: { progress: 'SECRET not json' },
      parent: { parent: 'SECRET not json' },
      started: { ats: 'zz' },
      // A number to JavaScript, not a count to Redis's HINCRBY.
      startedPadded: { ats: '007' },
      // Read as 1e20 attempts: BullMQ's count of the next one failed half-way, losing the job.
      made: { atm: '99999999999999999999' },
    };
    const ids: Record<string, string> = {};
    for (const [name, fields] of Object.entries(broken)) {
      const parked = await producer.add('x', { code: '1' }, { delay: 60_000 });
      await plain.hset(`bull:${queue}:${parked.id}`, fields);
      await parked.promote();
      ids[name] = parked.id as string;
    }
    // BullMQ cannot read most of them to run or fail them; at their stall the worker resets them.
    for (const [name, id] of Object.entries(ids)) {
      const state = await until(`the ${name} job to end`, async () => {
        const now = await producer.getJobState(id);
        return now === 'completed' || now === 'failed' ? now : undefined;
      });
      expect({ name, state }).toEqual({ name, state: expect.stringMatching(/^(completed|failed)$/) });
    }
    expect(((await producer.getJob(ids.made as string))?.returnvalue as Result)).toMatchObject({ status: 'ok', value: 1, metrics: { attempt: 1 } });
    const reset = lines.filter((line) => line.msg === 'job fields in Redis were unreadable: reset, so that the job can end').flatMap((line) => line.fields);
    expect(reset).toEqual(expect.arrayContaining(['opts', 'progress', 'parent', 'ats']));
    const good = await producer.add('x', { code: '2 + 2' });
    const finished = await until('the next job to finish', async () => (await producer.getJobState(good.id as string)) === 'completed');
    expect(finished).toBe(true);
    expect(((await producer.getJob(good.id as string))?.returnvalue as Result).value).toBe(4);
  });

  it("a job whose id is one of the queue's key names, or a setting written by hand, does not stop the queue or lose jobs", async () => {
    const queue = uniqueQueue('raw-keys');
    const lines: { msg?: string; err?: string; repaired?: string[]; repeatsNotLogged?: number }[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });
    await worker(queue, { logger });
    const producer = rawQueue(queue);
    const events = await queueEvents(queue);
    const plain = plainRedis();
    // A plain BullMQ add, nothing written by hand: its job hash lands on the queue's own key.
    for (const jobId of ['wait', 'active', 'stalled']) await producer.add('x', { code: '1' }, { jobId }).catch(() => undefined);
    const first = await until('a job to be taken again', async () => producer.add('x', { code: '6 * 7' }).catch(() => undefined));
    expect(((await first.waitUntilFinished(events, 20_000)) as Result).value).toBe(42);
    // An events cap that is not a count failed every finish half-way, losing the job: one running
    // while it is written (the check, every 2 s, comes before the job's 3 s are up).
    const busy = 'const end = Date.now() + 3000; while (Date.now() < end) {} 49';
    const second = await producer.add('x', { code: busy, limits: { timeoutMs: 8_000, cpuTimeMs: 8_000 } });
    await until('the job to run', async () => (await producer.getJobState(second.id as string)) === 'active');
    await plain.hset(`bull:${queue}:meta`, 'opts.maxLenEvents', '0010', 'concurrency', 'abc', 'max', '1000', 'duration', 'abc');
    expect(((await second.waitUntilFinished(events, 20_000)) as Result).value).toBe(49);
    expect(await plain.hget(`bull:${queue}:meta`, 'opts.maxLenEvents')).toBe('10000');
    // A rate limit half unreadable is removed whole; one BullMQ reads (any number) is left alone.
    expect(await plain.hmget(`bull:${queue}:meta`, 'max', 'duration', 'concurrency')).toEqual([null, null, null]);
    await plain.hset(`bull:${queue}:meta`, 'max', '1000', 'duration', '1500.5', 'concurrency', '2.5');
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    expect(await plain.hmget(`bull:${queue}:meta`, 'max', 'duration', 'concurrency')).toEqual(['1000', '1500.5', '2.5']);
    const third = await producer.add('x', { code: '8 * 8' });
    expect(((await third.waitUntilFinished(events, 20_000)) as Result).value).toBe(64);
    const repaired = lines.filter((line) => line.msg === 'queue keys or settings in Redis were unreadable: repaired').flatMap((line) => line.repaired);
    expect(repaired).toEqual(expect.arrayContaining(['active', 'wait', 'stalled', 'meta.opts.maxLenEvents', 'meta.concurrency', 'meta.max+duration']));
    // BullMQ retried the failing fetch thousands of times a second; the log says so in few lines.
    expect(lines.filter((line) => line.msg === 'worker error').length).toBeLessThan(20);
  });

  it("a job whose id names a tenant's count key does not block that tenant's submits", async () => {
    const queue = uniqueQueue('raw-tenant-key');
    const c = await client(queue);
    await rawQueue(queue).add('x', { code: '1' }, { jobId: 'sandpool:queued:victim', removeOnComplete: false });
    expect(await c.submit({ code: '1', tenantId: 'victim' })).toEqual(expect.any(String));
  });

  it('a flood on the cancel channel is dropped past its rate, long messages unread; jobs run and real cancels still land', async () => {
    const queue = uniqueQueue('cancel-flood');
    const lines: { msg?: string; messages?: number }[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });
    await worker(queue, { logger });
    const c = await client(queue);
    const plain = plainRedis();
    const channel = `bull:${queue}:sandpool:cancel`;
    const burst = plain.pipeline();
    for (let i = 0; i < 5_000; i++) burst.publish(channel, `garbage-${i}`);
    for (let i = 0; i < 20; i++) burst.publish(channel, 'G'.repeat(1 << 20));
    await burst.exec();
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    await plain.publish(channel, 'after');
    expect((await c.execute({ code: '6 * 7' })).value).toBe(42);
    await until('the flood line', async () => lines.some((line) => line.msg === 'cancel channel flooded: messages past the rate were dropped'));
    // A real cancel of a running job still lands, through the channel or the job's mark.
    const id = await c.submit({ code: 'while (true) {}', limits: { timeoutMs: 8_000 } });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await c.cancel(id)).toBe(true);
    const cancelled = await until('the cancelled Result', async () => c.getResult(id));
    expect(cancelled.status).toBe('cancelled');
  });

  it("a failure reason a producer stored with its job is not logged; BullMQ's own are", async () => {
    const queue = uniqueQueue('raw-defa');
    const lines: { msg?: string; err?: string }[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });
    await worker(queue, { logger });
    const producer = rawQueue(queue);
    const plain = plainRedis();
    const parked = await producer.add('x', { code: '1' }, { delay: 60_000 });
    await plain.hset(`bull:${queue}:${parked.id}`, 'defa', 'SECRET-REASON');
    await parked.promote();
    await until('the job to fail', async () => (await producer.getJobState(parked.id as string)) === 'failed');
    const failed = await until('its log line', async () => lines.find((line) => line.msg === 'job attempt failed'));
    expect(failed.err).toBe('(a failure reason stored with the job: not logged)');
    expect(JSON.stringify(lines)).not.toContain('SECRET');
  });
});

describe('tenants, idempotency, backpressure, deadlines', () => {
  it('getResult shows a job only to the tenant that submitted it', async () => {
    const queue = uniqueQueue('privacy');
    await worker(queue);
    const c = await client(queue);
    const result = await c.execute({ code: '"secret"', tenantId: 'alice' });
    const id = result.id as string;
    expect(await c.getResult(id, { tenantId: 'bob' })).toBeUndefined();
    expect(await c.getResult(id)).toBeUndefined();
    expect((await c.getResult(id, { tenantId: 'alice' }))?.value).toBe('secret');
    expect(await c.cancel(id, { tenantId: 'bob' })).toBe(false);
    expect(await c.getResult('no-such-job', { tenantId: 'alice' })).toBeUndefined();
  });

  it('the same idempotencyKey gives the same job, per tenant', async () => {
    const queue = uniqueQueue('idem');
    const c = await client(queue);
    const first = await c.submit({ code: '1', idempotencyKey: 'order:17' });
    const again = await c.submit({ code: '2', idempotencyKey: 'order:17' });
    const other = await c.submit({ code: '1', idempotencyKey: 'order:17', tenantId: 'other' });
    expect(again).toBe(first);
    expect(other).not.toBe(first);
    expect(first).not.toContain(':');
    expect(await rawQueue(queue).count()).toBe(2);
    await worker(queue);
    const result = await c.execute({ code: '3', idempotencyKey: 'order:17' });
    expect(result.id).toBe(first);
    expect(result.value).toBe(1);
    // Once finished, a repeat is answered from the stored Result (no event will come for it).
    const repeat = await c.execute({ code: '4', idempotencyKey: 'order:17' });
    expect([repeat.id, repeat.value]).toEqual([first, 1]);
  });

  it('fails fast with typed errors past the queue bound and the tenant bound', async () => {
    const queue = uniqueQueue('bound');
    const c = await client(queue, { maxQueued: 4, maxQueuedPerTenant: 2 });
    await c.submit({ code: '1', tenantId: 'a' });
    await c.submit({ code: '1', tenantId: 'a' });
    await expect(c.submit({ code: '1', tenantId: 'a' })).rejects.toMatchObject({ code: 'TENANT_QUEUE_FULL' });
    await c.submit({ code: '1', tenantId: 'b' });
    // A raw producer's job counts against the queue bound too.
    await rawQueue(queue).add('raw', { code: '1' });
    await expect(c.submit({ code: '1', tenantId: 'c' })).rejects.toMatchObject({ code: 'QUEUE_FULL' });
    await expect(c.submitBatch([{ code: '1', tenantId: 'd' }, { code: '1', tenantId: 'd' }])).rejects.toMatchObject({
      code: 'QUEUE_FULL',
    });
    // A refused job leaves nothing under its id (the check and the add share one transaction),
    // so its idempotency key stays free.
    const refused = { code: '6', tenantId: 'c', idempotencyKey: 'refused-once' };
    await expect(c.submit(refused)).rejects.toMatchObject({ code: 'QUEUE_FULL' });
    expect(await rawQueue(queue).getJob(idempotentJobId('c', 'refused-once'))).toBeUndefined();
    expect(await rawQueue(queue).count()).toBe(4);
    // Once a worker has taken them, there is room again.
    await worker(queue);
    await until('the queue to drain', async () => (await rawQueue(queue).count()) === 0);
    expect((await c.execute({ code: '5', tenantId: 'a' })).value).toBe(5);
    expect((await c.execute(refused)).value).toBe(6);
  });

  it('a job that finds a shared pool full waits in the worker and runs, attempts untouched; the worker\'s own pool has room for its concurrency', { timeout: 60_000 }, async () => {
    const SCRIPTED = new URL('../fixtures/threads/scripted.ts', import.meta.url);
    for (const own of [false, true]) {
      const lines: { msg?: string }[] = [];
      const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });
      const queue = uniqueQueue(own ? 'own-pool' : 'shared-pool');
      // One thread, two jobs in flight, one waiting: four jobs at once leave one that finds it full.
      const poolOptions = { executors: 1, threadsPerExecutor: 1, maxQueued: 1, threadModule: SCRIPTED };
      if (own) {
        const handle = await createWorker({ connection: redis.url, queue, poolOptions, concurrency: 4, logger });
        closers.push(() => handle.close({ graceMs: 1_000 }));
      } else {
        const shared = await createPool(poolOptions);
        closers.push(() => shared.close({ deadlineMs: 1_000 }));
        await worker(queue, { pool: shared, concurrency: 4, logger });
      }
      const c = await client(queue, { attempts: 1 });
      const results = await Promise.all(Array.from({ length: 4 }, (_, index) => c.execute({ code: 'sleep 300', input: index })));
      expect(results.map((result) => result.status)).toEqual(['ok', 'ok', 'ok', 'ok']);
      expect(results.map((result) => result.metrics.attempt)).toEqual([1, 1, 1, 1]);
      const waited = lines.filter((line) => line.msg === 'job waiting: the pool is full').length;
      if (own) expect(waited).toBe(0);
      else expect(waited).toBeGreaterThan(0);
      for (const result of results) {
        const job = await rawQueue(queue).getJob(result.id as string);
        expect(job?.attemptsStarted).toBe(1);
      }
    }
  });

  it('a job waiting for a full shared pool is cancelled, or times out in the queue, as any waiting job', { timeout: 60_000 }, async () => {
    const full = await createPool({ executors: 1, threadsPerExecutor: 1, maxQueued: 1, threadModule: new URL('../fixtures/threads/scripted.ts', import.meta.url) });
    closers.push(() => full.close({ deadlineMs: 0 }));
    // Two on the executor, one waiting: the pool stays full for 3 s.
    const held = [0, 1, 2].map(() => full.execute({ code: 'sleep 3000' }));
    const queue = uniqueQueue('full-pool');
    await worker(queue, { pool: full, concurrency: 2 });
    const c = await client(queue, { attempts: 1 });
    const id = await c.submit({ code: 'echo' });
    await until('the job to be taken', async () => (await rawQueue(queue).getJobState(id)) === 'active');
    expect(await c.cancel(id)).toBe(true);
    expect((await until('its Result', async () => await c.getResult(id))).status).toBe('cancelled');
    const late = await c.execute({ code: 'echo', queueTimeoutMs: 500 });
    expect(late).toMatchObject({ status: 'timeout', error: { limit: 'queue' } });
    // Answered at its deadline, not at the end of a pause that ran past it.
    expect(late.metrics.queueWaitMs).toBeLessThan(700);
    void held;
  });

  it('a worker shutting down hands a job waiting for a full engine back at once, its attempts untouched', { timeout: 60_000 }, async () => {
    const full = {
      execute: async () =>
        resultWithoutRun('rejected', DEFAULT_LIMITS, { host: 'h', pid: 0, thread: 0 }, { reasons: [{ rule: 'pool_full', message: 'full' }] }),
    };
    const queue = uniqueQueue('full-drain');
    const handle = await createWorker({ connection: redis.url, queue, pool: full, concurrency: 1 });
    const c = await client(queue, { attempts: 1 });
    const id = await c.submit({ code: 'echo' });
    await until('the job to be taken', async () => (await rawQueue(queue).getJobState(id)) === 'active');
    const start = performance.now();
    await handle.close({ graceMs: 20_000 });
    // Handed back without waiting out the grace: nothing of it had run.
    expect(performance.now() - start).toBeLessThan(10_000);
    expect(await rawQueue(queue).getJobState(id)).toBe('waiting');
    expect((await rawQueue(queue).getJob(id))?.attemptsMade).toBe(0);
  });

  it('a job waiting for an engine that is always full ends at a cancel, or when its lock is lost', { timeout: 60_000 }, async () => {
    // An engine that turns every job away, even a cancelled one: the worker must not ask it in a loop.
    let asked = 0;
    const full = {
      execute: async () => {
        asked++;
        return resultWithoutRun('rejected', DEFAULT_LIMITS, { host: 'h', pid: 0, thread: 0 }, { reasons: [{ rule: 'pool_full', message: 'full' }] });
      },
    };
    const lines: { msg?: string }[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });
    const queue = uniqueQueue('always-full');
    await worker(queue, { pool: full, concurrency: 2, logger, lockDurationMs: 1_000, stalledIntervalMs: 60_000 });
    const c = await client(queue, { attempts: 1 });
    const cancelled = await c.submit({ code: 'echo' });
    await until('the job to be taken', async () => (await rawQueue(queue).getJobState(cancelled)) === 'active');
    expect(await c.cancel(cancelled)).toBe(true);
    expect((await until('its Result', async () => await c.getResult(cancelled))).status).toBe('cancelled');
    const askedAfterCancel = asked;
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(asked).toBe(askedAfterCancel);
    // Its lock taken from it (as when another worker took the job after a stall): its run here stops.
    const lost = await c.submit({ code: 'echo' });
    await until('the job to be taken', async () => (await rawQueue(queue).getJobState(lost)) === 'active');
    await plainRedis().del(`bull:${queue}:${lost}:lock`);
    await until('the run to stop', async () => lines.some((line) => line.msg === 'job lock lost: its run here stopped'));
    const askedAfterLoss = asked;
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(asked).toBe(askedAfterLoss);
  });

  it('a job not started within queueTimeoutMs ends as timeout with limit queue', async () => {
    const queue = uniqueQueue('deadline');
    const c = await client(queue);
    const id = await c.submit({ code: '1', queueTimeoutMs: 1 });
    await new Promise((resolve) => setTimeout(resolve, 20));
    await worker(queue);
    const result = await until('the result', () => c.getResult(id));
    expect(result.status).toBe('timeout');
    expect(result.error?.limit).toBe('queue');
    expect(result.metrics.queueWaitMs).toBeGreaterThan(1);
  });

  it('a cancel that races the job finishing never takes away the Result it finished with', { timeout: 60_000 }, async () => {
    const queue = uniqueQueue('cancel-race');
    const lines: { msg?: string; jobId?: string; status?: string }[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });
    await worker(queue, { logger });
    const c = await client(queue);
    const outcomes: { id: string; cancelled: boolean }[] = [];
    for (let i = 0; i < 80; i++) {
      const id = await c.submit({ code: 'const t = Date.now(); while (Date.now() - t < 30) {} "done"' });
      await new Promise((resolve) => setTimeout(resolve, 15 + (i % 25)));
      outcomes.push({ id, cancelled: await c.cancel(id) });
    }
    for (const { id } of outcomes) {
      const result = await until(`the Result of ${id}`, async () => c.getResult(id));
      const finished = lines.find((line) => line.msg === 'job finished' && line.jobId === id);
      // What the worker finished a job with is the job's Result: ok stays ok.
      if (finished?.status === 'ok') expect(result, id).toMatchObject({ status: 'ok', value: 'done' });
      else expect(result.status).toBe('cancelled');
    }
  });

  it('a cancel that finds its job waiting never takes away the Result a worker finished it with meanwhile', { timeout: 60_000 }, async () => {
    const queue = uniqueQueue('cancel-wait-race');
    const lines: { msg?: string; jobId?: string; status?: string }[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });
    await worker(queue, { logger, concurrency: 4 });
    const c = await client(queue);
    // Trivial jobs, each cancelled as soon as it is queued: the cancel reads it waiting, and a
    // worker may take and finish it before the cancel's next step.
    const outcomes = await Promise.all(
      Array.from({ length: 150 }, async (_, i) => {
        await new Promise((resolve) => setTimeout(resolve, i * 4));
        const id = await c.submit({ code: `${i}` });
        await new Promise((resolve) => setTimeout(resolve, i % 3));
        return { id, i, cancelled: await c.cancel(id) };
      }),
    );
    const counts = { ok: 0, cancelled: 0 };
    for (const { id, i } of outcomes) {
      const result = await until(`the Result of ${id}`, async () => c.getResult(id));
      const finished = lines.find((line) => line.msg === 'job finished' && line.jobId === id);
      if (finished?.status === 'ok') expect(result, id).toMatchObject({ status: 'ok', value: i });
      else expect(result.status, id).toBe('cancelled');
      counts[result.status === 'ok' ? 'ok' : 'cancelled']++;
    }
    // Both sides of the race were run, or the test showed nothing.
    expect(counts.ok).toBeGreaterThan(0);
    expect(counts.cancelled).toBeGreaterThan(0);
  });

  it('an idempotency key submitted again after its waiting job was cancelled runs a new job, whole', { timeout: 30_000 }, async () => {
    const queue = uniqueQueue('idem-cancel');
    const c = await client(queue);
    const raw = rawQueue(queue);
    await raw.pause();
    await worker(queue);
    const request = { code: 'const t = Date.now(); while (Date.now() - t < 300) {} "ran to the end"', idempotencyKey: 'again' };
    const id = await c.submit(request);
    // Paused: it waits, and the cancel removes it; its mark stays (for getResult), and the worker
    // heard the cancel on its channel and remembers the id.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await c.cancel(id)).toBe(true);
    const cancelled = await c.getResult(id);
    expect(cancelled?.status).toBe('cancelled');
    // Never run: all its time was queue wait.
    expect(cancelled?.metrics.queueWaitMs).toBeGreaterThanOrEqual(100);
    await raw.resume();
    // Neither the mark nor the worker's memory of that cancel stops the new job under the same id.
    const again = await c.execute(request);
    expect(again.id).toBe(id);
    expect(again).toMatchObject({ status: 'ok', value: 'ran to the end' });
  });

  it('an entry in the events stream that BullMQ cannot read does not leave the client without events', { timeout: 30_000 }, async () => {
    const queue = uniqueQueue('events-poison');
    await worker(queue);
    const c = await client(queue);
    expect((await c.execute({ code: '1' })).value).toBe(1);
    const plain = plainRedis();
    const events = `bull:${queue}:events`;
    const answeredByEvents = async () => {
      for (let i = 0; i < 3; i++) {
        const started = performance.now();
        expect((await c.execute({ code: `${i} + 1` })).value).toBe(i + 1);
        // Answered by its event: a client without a listener reads the job only after a second.
        expect(performance.now() - started).toBeLessThan(900);
      }
    };
    // Written by hand: a completed event whose return value is not JSON ends BullMQ's listener loop.
    await plain.xadd(events, '*', 'event', 'completed', 'jobId', 'forged', 'returnvalue', '{not json');
    await answeredByEvents();
    // So does one with no return value at all, here behind more entries than one page of the scan.
    const pipeline = plain.pipeline();
    for (let i = 0; i < 1_100; i++) pipeline.xadd(events, '*', 'event', 'waiting', 'jobId', `w${i}`);
    await pipeline.exec();
    await plain.xadd(events, '*', 'event', 'completed', 'jobId', 'forged');
    await answeredByEvents();
  });

  it('cancel removes a waiting job: its Result is cancelled', async () => {
    const queue = uniqueQueue('cancel-wait');
    const c = await client(queue);
    const id = await c.submit({ code: '1', tenantId: 't1' });
    expect(await c.cancel(id, { tenantId: 't1' })).toBe(true);
    expect(await rawQueue(queue).getJob(id)).toBeUndefined();
    expect((await c.getResult(id, { tenantId: 't1' }))?.status).toBe('cancelled');
    expect(await c.getResult(id, { tenantId: 't2' })).toBeUndefined();
  });

  it('cancel stops a running job wherever it runs; execute resolves cancelled', async () => {
    const queue = uniqueQueue('cancel-run');
    await worker(queue);
    const producer = await client(queue);
    const canceller = await client(queue);
    const running = producer.execute({ code: 'while (true) {}', limits: { timeoutMs: 9_000, cpuTimeMs: 9_000 } });
    const producerQueue = rawQueue(queue);
    const id = await until('the job to run', async () => {
      const [job] = await producerQueue.getActive();
      return job?.id;
    });
    expect(await canceller.cancel(id)).toBe(true);
    const result = await running;
    expect(result.status).toBe('cancelled');
    expect(result.id).toBe(id);
  });

  it('a job cancelled while the client strips its types is answered cancelled then, and never queued', { timeout: 30_000 }, async () => {
    const queue = uniqueQueue('cancel-strip');
    const c = await client(queue);
    // Strips for the whole 2 s bound (amaro's parser backtracks on it).
    const bomb = `let a = ${'(<any>'.repeat(24)}b${')'.repeat(24)}`;
    const controller = new AbortController();
    const pending = c.execute({ code: bomb, language: 'typescript', limits: { timeoutMs: 10_000 } }, { signal: controller.signal });
    await new Promise((resolve) => setTimeout(resolve, 200));
    const abortedAt = performance.now();
    controller.abort();
    expect(await pending).toMatchObject({ status: 'cancelled' });
    // Well inside the strip's 2 s bound, which it used to wait out.
    expect(performance.now() - abortedAt).toBeLessThan(1_000);
    const counts = await rawQueue(queue).getJobCounts('waiting', 'active', 'completed', 'failed');
    expect(Object.values(counts).reduce((sum, n) => sum + n, 0)).toBe(0);
    // Closed while another one strips: that call says the client is closed at once, rather than
    // after the strip or submitting it.
    const closing = await createClient({ connection: redis.url, queue });
    const orphan = closing.execute({ code: bomb, language: 'typescript', limits: { timeoutMs: 10_000 } });
    const refused = expect(orphan).rejects.toMatchObject({ code: 'CLIENT_CLOSED' });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const closedAt = performance.now();
    await closing.close();
    await refused;
    expect(performance.now() - closedAt).toBeLessThan(1_000);
    const after = await rawQueue(queue).getJobCounts('waiting', 'active', 'delayed', 'prioritized');
    expect(Object.values(after).reduce((sum, n) => sum + n, 0)).toBe(0);
  });

  it('a job cancelled as a worker takes it ends cancelled, even when its cancel mark is garbage', async () => {
    const queue = uniqueQueue('cancel-mark');
    const keys = queueKeys('bull', queue);
    const marks = createRedis(redis.url);
    closers.push(async () => marks.disconnect());
    const producer = rawQueue(queue);
    // The marks are in place before any worker runs: each is read as its job is taken.
    const marked = await producer.add('marked', { code: 'while (true) {}', limits: { timeoutMs: 9_000, cpuTimeMs: 9_000 } });
    const garbage = await producer.add('garbage', { code: 'while (true) {}', limits: { timeoutMs: 9_000, cpuTimeMs: 9_000 } });
    const mine = cancelledResult(DEFAULT_LIMITS);
    mine.error = { name: 'CancelledError', message: 'cancelled by the test' };
    await marks.set(keys.cancelled(marked.id as string), JSON.stringify({ tenantId: 'default', result: mine }));
    await marks.set(keys.cancelled(garbage.id as string), '{"result": not json');
    await worker(queue);
    const events = new QueueEvents(queue, { connection: { url: redis.url }, lastEventId: '0' });
    closers.push(() => events.close());
    const [first, second] = (await Promise.all([marked.waitUntilFinished(events, 20_000), garbage.waitUntilFinished(events, 20_000)])) as Result[];
    expect(first?.status).toBe('cancelled');
    // The mark's Result if the pool never started it (read within 5 ms of the take); else the run's.
    if (first?.metrics.wallTimeMs === 0) expect(first?.error?.message).toBe('cancelled by the test');
    else expect(first?.error?.message).not.toBe('cancelled by the test');
    expect(second?.status).toBe('cancelled');
    // The worker still serves.
    const c = await client(queue);
    expect((await c.execute({ code: '6 * 7' })).value).toBe(42);
  });

  it('a cancel message for a running job stops it only when the job has its cancel mark', { timeout: 30_000 }, async () => {
    const queue = uniqueQueue('forged-cancel');
    await worker(queue);
    const c = await client(queue);
    const plain = plainRedis();
    const channel = `bull:${queue}:sandpool:cancel`;
    const slow = { code: 'const t = Date.now(); while (Date.now() - t < 600) {} "done"' };
    // Published by hand, with no mark behind it: the job runs on to its own Result.
    const forged = await c.submit(slow);
    await until('the job to run', async () => (await rawQueue(queue).getActiveCount()) > 0);
    await plain.publish(channel, forged);
    expect(await until('its Result', async () => c.getResult(forged))).toMatchObject({ status: 'ok', value: 'done' });
    // The client's cancel writes the mark first: that one stops it.
    const real = await c.submit(slow);
    await until('the job to run', async () => (await rawQueue(queue).getActiveCount()) > 0);
    expect(await c.cancel(real)).toBe(true);
    expect((await until('its Result', async () => c.getResult(real))).status).toBe('cancelled');
  });

  it('a cancel heard before the job started stops it as it starts; other jobs run', async () => {
    const queue = uniqueQueue('pending-cancel');
    const producer = rawQueue(queue);
    const commands = createRedis(redis.url);
    closers.push(async () => commands.disconnect());
    const processor = createProcessor({ pool, redis: commands, keys: queueKeys('bull', queue), logger: pino({ level: 'silent' }) });
    const spinning = await producer.add('job', { code: 'while (true) {}', limits: { timeoutMs: 9_000, cpuTimeMs: 9_000 } });
    // As the worker's subscriber does when the channel names a job it is not running (yet); the
    // client wrote the job's mark before it published.
    await commands.set(queueKeys('bull', queue).cancelled(spinning.id as string), JSON.stringify({ tenantId: 'default' }));
    processor.noteCancel(spinning.id as string);
    const taken = await Job.fromId(producer, spinning.id as string);
    const cancelled = await processor(taken as Job);
    expect(cancelled.status).toBe('cancelled');
    expect(cancelled.metrics.wallTimeMs).toBe(0);
    // A note with no mark behind it (forged on the channel, or left from a cancelled job whose id a
    // new job took) cancels nothing.
    const forged = await Job.fromId(producer, (await producer.add('job', { code: '5 + 5' })).id as string);
    processor.noteCancel(forged?.id as string);
    expect((await processor(forged as Job)).value).toBe(10);
    const other = await Job.fromId(producer, (await producer.add('job', { code: '2 + 2' })).id as string);
    expect((await processor(other as Job)).value).toBe(4);
    // Ids past 512 characters are not remembered: anyone on the channel could park huge ones.
    const longId = 'j'.repeat(600);
    processor.noteCancel(longId);
    const long = await Job.fromId(producer, (await producer.add('job', { code: '3 + 3' }, { jobId: longId })).id as string);
    expect((await processor(long as Job)).value).toBe(6);
  });

  it('a running job reads its cancel mark again while it runs: a cancel whose message never came still lands', async () => {
    const queue = uniqueQueue('mark-recheck');
    const producer = rawQueue(queue);
    const commands = createRedis(redis.url);
    closers.push(async () => commands.disconnect());
    const keys = queueKeys('bull', queue);
    const processor = createProcessor({ pool, redis: commands, keys, logger: pino({ level: 'silent' }) });
    const spinning = await producer.add('job', { code: 'while (true) {}', limits: { timeoutMs: 9_000, cpuTimeMs: 9_000 } });
    const taken = await Job.fromId(producer, spinning.id as string);
    const running = processor(taken as Job);
    // The mark a client's cancel writes, after the run's first read, and no message on the channel
    // (a subscriber reconnecting, or a flood the worker dropped).
    await new Promise((resolve) => setTimeout(resolve, 300));
    await commands.set(keys.cancelled(spinning.id as string), JSON.stringify({ tenantId: 'default' }));
    expect((await running).status).toBe('cancelled');
    // A mark with the canceller's Result, read while the job runs: the job keeps its run's Result.
    const second = await producer.add('job', { code: 'while (true) {}', limits: { timeoutMs: 9_000, cpuTimeMs: 9_000 } });
    const takenAgain = await Job.fromId(producer, second.id as string);
    const runningAgain = processor(takenAgain as Job);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const mine = cancelledResult(DEFAULT_LIMITS);
    mine.error = { name: 'CancelledError', message: 'cancelled by the test' };
    await commands.set(keys.cancelled(second.id as string), JSON.stringify({ tenantId: 'default', result: mine }));
    const result = await runningAgain;
    expect(result.status).toBe('cancelled');
    expect(result.error?.message).not.toBe('cancelled by the test');
    expect(result.metrics.wallTimeMs).toBeGreaterThan(200);
    expect(result.metrics.worker.pid).not.toBe(0);
  });

  it('execute with an aborted signal cancels its job', async () => {
    const queue = uniqueQueue('abort');
    await worker(queue);
    const c = await client(queue);
    const abort = new AbortController();
    const running = c.execute({ code: 'while (true) {}', limits: { timeoutMs: 9_000, cpuTimeMs: 9_000 } }, { signal: abort.signal });
    await until('the job to run', async () => (await rawQueue(queue).getActiveCount()) > 0);
    abort.abort();
    expect((await running).status).toBe('cancelled');
    // Already aborted: nothing is submitted at all.
    const before = await rawQueue(queue).getJobCountByTypes('completed', 'failed', 'waiting', 'active');
    expect((await c.execute({ code: '1' }, { signal: abort.signal })).status).toBe('cancelled');
    expect(await rawQueue(queue).getJobCountByTypes('completed', 'failed', 'waiting', 'active')).toBe(before);
  });
});

describe('Redis unreachable', () => {
  it('createClient fails with REDIS_UNAVAILABLE within its bound', async () => {
    const dead = await startRedis();
    const url = dead.url;
    await dead.dispose();
    const error = await createClient({ connection: url, redisTimeoutMs: 300 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(QueueError);
    expect((error as QueueError).code).toBe('REDIS_UNAVAILABLE');
  });

  it('a database the server does not have stops the client and the worker, where it went on with database 0', async () => {
    const error = await createClient({ connection: `${redis.url}/99`, redisTimeoutMs: 2_000 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(QueueError);
    expect((error as QueueError).message).toMatch(/Redis refused database 99/);
    const refused = await createWorker({ connection: `${redis.url}/99`, queue: uniqueQueue('db99'), pool }).catch((e: unknown) => e);
    expect((refused as Error).message).toMatch(/Redis refused database 99/);
    // One it has works, both ends on it.
    const queue = uniqueQueue('db3');
    closers.push(...[await createWorker({ connection: `${redis.url}/3`, queue, pool })].map((w) => () => w.close({ graceMs: 1_000 })));
    const c = await createClient({ connection: `${redis.url}/3`, queue });
    closers.push(() => c.close());
    expect((await c.execute({ code: '3 * 3' })).value).toBe(9);
    expect(await rawQueue(queue).getJobCountByTypes('completed')).toBe(0);
  });

  it('a submit while Redis is down fails with REDIS_UNAVAILABLE, and works again once it is back', async () => {
    const own = await startRedis();
    closers.push(() => own.dispose());
    const c = await createClient({ connection: own.url, queue: uniqueQueue('down'), redisTimeoutMs: 300 });
    closers.push(() => c.close());
    await c.submit({ code: '1' });
    await own.stop();
    await expect(c.submit({ code: '1' })).rejects.toMatchObject({ code: 'REDIS_UNAVAILABLE' });
    await expect(c.execute({ code: '1' })).rejects.toMatchObject({ code: 'REDIS_UNAVAILABLE' });
    await own.start();
    const id = await until('Redis to be back', () => c.submit({ code: '1' }).catch(() => undefined));
    expect(typeof id).toBe('string');
  });
});

describe('connections, key prefix, retention', () => {
  it('takes an ACL user and password through the URL; a wrong password is a clear error', async () => {
    const secured = await startRedis({ user: { name: 'sandpool', password: 's3cret' } });
    closers.push(() => secured.dispose());
    const url = `redis://sandpool:s3cret@127.0.0.1:${secured.port}`;
    const queue = uniqueQueue('acl');
    const handle = await createWorker({ connection: url, queue, pool, concurrency: 1 });
    closers.push(() => handle.close({ graceMs: 1_000 }));
    const c = await createClient({ connection: url, queue });
    closers.push(() => c.close());
    expect((await c.execute({ code: '"authenticated"' })).value).toBe('authenticated');
    const error = await createClient({ connection: `redis://sandpool:wrong@127.0.0.1:${secured.port}`, redisTimeoutMs: 2_000 }).catch(
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: 'REDIS_UNAVAILABLE' });
    // It says why, which the failed call alone ("Connection is closed") does not; the password stays out.
    expect((error as Error).message).toMatch(/WRONGPASS/);
    expect((error as Error).message).not.toContain('wrong@');
  });

  it('speaks TLS: ioredis options with the CA work; a rediss:// URL alone refuses the unknown certificate', async () => {
    const secured = await startRedis({ tls: true });
    closers.push(() => secured.dispose());
    const connection = { host: '127.0.0.1', port: secured.port, tls: { ca: secured.ca as string } };
    const queue = uniqueQueue('tls');
    const handle = await createWorker({ connection, queue, pool, concurrency: 1 });
    closers.push(() => handle.close({ graceMs: 1_000 }));
    const c = await createClient({ connection, queue });
    closers.push(() => c.close());
    expect((await c.execute({ code: '"over tls"' })).value).toBe('over tls');
    expect(secured.url.startsWith('rediss://')).toBe(true);
    const error = await createClient({ connection: secured.url, redisTimeoutMs: 1_000 }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'REDIS_UNAVAILABLE' });
  });

  it('a hash-tag prefix (Redis Cluster) is only configuration: every key carries it', async () => {
    const queue = uniqueQueue('tagged');
    await worker(queue, { prefix: '{sp}' });
    const c = await client(queue, { prefix: '{sp}' });
    expect((await c.execute({ code: '7' })).value).toBe(7);
    const { Redis } = await import('ioredis');
    const plain = new Redis(redis.url);
    closers.push(() => plain.quit());
    const keys = await plain.keys(`*${queue}*`);
    expect(keys.length).toBeGreaterThan(0);
    expect(keys.every((key) => key.startsWith(`{sp}:${queue}:`))).toBe(true);
  });

  it("submits travel in a MULTI on the client's own connection, or on BullMQ's when its add scripts cannot be copied", async () => {
    const queue = uniqueQueue('submit-path');
    const producer = rawQueue(queue);
    const bull = (await producer.getBackend().client) as unknown as BullConnection;
    const own = createRedis(redis.url);
    closers.push(async () => own.disconnect());
    // The same transaction shape the client sends: a command of its own, then BullMQ's add.
    const addThrough = async (transactions: SubmitTransactions, id: string) => {
      const transaction = transactions.make();
      transaction.runCommand('echo', ['before the add']);
      await new Job(producer, 'job', { code: '1' }, { jobId: id }, id).addJob(transaction as never);
      expect(transaction.queued()).toBe(2);
      const replies = await transaction.exec();
      expect(replies?.map(([error]) => error)).toEqual([null, null]);
      expect(replies?.[1]?.[1]).toBe(id);
      expect((await producer.getJob(id))?.data).toEqual({ code: '1' });
    };
    own.defineCommand('echo', { lua: 'return ARGV[1]', numberOfKeys: 0 });
    const lean = submitTransactions(own, bull);
    expect(lean.lean).toBe(true);
    await addThrough(lean, 'lean-1');
    // A BullMQ connection whose scripts cannot be read: every submit goes on it, and still works.
    bull.defineCommand('echo', { lua: 'return ARGV[1]', numberOfKeys: 0 });
    const opaque: BullConnection = { multi: () => bull.multi(), defineCommand: (name, definition) => bull.defineCommand(name, definition) };
    const fallback = submitTransactions(createRedis(redis.url, { lazyConnect: true }), opaque);
    expect(fallback.lean).toBe(false);
    await addThrough(fallback, 'fallback-1');
  });

  it("keeps finished jobs and caps the events stream as the worker is configured; a client overrides only when told", async () => {
    const queue = uniqueQueue('retention');
    await worker(queue, { keepCompleted: { ageSeconds: 3600, count: 2 }, eventsMaxLen: 500 });
    // A client with no retention or cap of its own, connected after the worker: the worker's apply.
    const plainClient = await client(queue);
    for (let i = 0; i < 5; i++) await plainClient.execute({ code: String(i) });
    const { Redis } = await import('ioredis');
    const plain = new Redis(redis.url);
    closers.push(() => plain.quit());
    const meta = `bull:${queue}:meta`;
    expect(await plain.hget(meta, 'opts.maxLenEvents')).toBe('500');
    expect(await plain.zcard(`bull:${queue}:completed`)).toBe(2);
    // A client given its own: its jobs carry it, and its queue writes its cap.
    const overriding = await client(queue, { keepCompleted: { ageSeconds: 3600, count: 4 }, eventsMaxLen: 700 });
    for (let i = 0; i < 5; i++) await overriding.execute({ code: String(i) });
    expect(await plain.hget(meta, 'opts.maxLenEvents')).toBe('700');
    expect(await plain.zcard(`bull:${queue}:completed`)).toBe(4);
    // BullMQ trims the whole completed set by a job's own retention: one that would keep less than
    // the worker's (every other tenant's Results gone) is not obeyed; `true` removes that job alone.
    const producer = rawQueue(queue);
    const events = await queueEvents(queue);
    const selfRemoving = await producer.add('x', { code: '1' }, { removeOnComplete: true });
    await selfRemoving.waitUntilFinished(events, 20_000);
    expect(await plain.zcard(`bull:${queue}:completed`)).toBe(4);
    for (const removeOnComplete of [{ count: 1 }, 1, { age: -10 }, { age: 1, count: 100 }, { count: 10.5 }, 1e300]) {
      const trimming = await producer.add('x', { code: '1' }, { removeOnComplete });
      await trimming.waitUntilFinished(events, 20_000);
      // The worker's own: the newest two.
      expect({ removeOnComplete, kept: await plain.zcard(`bull:${queue}:completed`) }).toEqual({ removeOnComplete, kept: 2 });
    }
  });
});

describe('worker side port', () => {
  it('answers /healthz, /readyz and /metrics with sandpool and BullMQ metrics', async () => {
    const queue = uniqueQueue('metrics');
    const handle = await worker(queue, { metricsPort: 0, metricsHost: '127.0.0.1' });
    const c = await client(queue);
    await c.execute({ code: '1' });
    await c.execute({ code: 'throw 1' });
    const base = `http://127.0.0.1:${handle.metricsPort}`;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    const text = await (await fetch(`${base}/metrics`)).text();
    expect(text).toMatch(/sandpool_jobs_total\{status="ok"\} 1/);
    expect(text).toMatch(/sandpool_jobs_total\{status="error"\} 1/);
    expect(text).toContain('sandpool_queue_wait_seconds_bucket');
    expect(text).toContain('sandpool_job_wall_seconds_bucket');
    expect(text).toContain('sandpool_job_cpu_seconds_bucket');
    expect(text).toContain('sandpool_pool_utilisation');
    expect(text).toMatch(/sandpool_queue_depth\{state="completed"\} 2/);
    expect(text).toContain('bullmq_job_count');
    expect(text).toMatch(/sandpool_pool_executors 1/);
    expect(text).toContain('sandpool_pool_executor_restarts');
    expect((await fetch(`${base}/nope`)).status).toBe(404);
    await handle.close({ graceMs: 1_000 });
    await expect(fetch(`${base}/healthz`)).rejects.toThrow();
  });
});

describe('published JSON Schema', () => {
  it('schema/request.schema.json is requestJsonSchema() as it is now', () => {
    const file = JSON.parse(readFileSync(new URL('../../schema/request.schema.json', import.meta.url), 'utf8'));
    expect(file).toEqual(requestJsonSchema());
  });
});

describe('the client under wrong use: errors naming the mistake, nothing sent, nothing broken', () => {
  it('refuses bad createClient options before connecting', async () => {
    const url = redis.url;
    const refused: [Record<string, unknown> | null, RegExp][] = [
      [null, /options: expected an object/],
      [{}, /options\.connection: required/],
      [{ connection: new URL(url) }, /options\.connection: .*a URL object/],
      [{ connection: url.replace('redis:', 'http:') }, /options\.connection: expected a redis:\/\/ or rediss:\/\/ URL/],
      [{ connection: { host: '127.0.0.1', keyPrefix: 'kp:' } }, /options\.connection\.keyPrefix/],
      [{ connection: url, redisTimeOutMs: 100 }, /options\.redisTimeOutMs: unknown option/],
      [{ connection: url, eventsMaxLen: 'x' }, /options\.eventsMaxLen: expected an integer from 100/],
      [{ connection: url, attempts: Number.NaN }, /options\.attempts/],
      [{ connection: url, maxQueued: -1 }, /options\.maxQueued/],
      [{ connection: url, redisTimeoutMs: Number.POSITIVE_INFINITY }, /options\.redisTimeoutMs/],
      [{ connection: url, queueTimeoutMs: -1 }, /options\.queueTimeoutMs/],
      [{ connection: url, sizeLimits: { maxCodeBytes: -1 } }, /options\.sizeLimits\.maxCodeBytes/],
      [{ connection: url, keepCompleted: { count: Number.NaN, ageSeconds: 1 } }, /options\.keepCompleted\.count/],
      [{ connection: url, queue: 5 }, /options\.queue: expected 1-128/],
      [{ connection: url, prefix: 'a:b' }, /options\.prefix/],
      [{ connection: url, prescreen: { bogus: 1 } }, /options\.prescreen: /],
    ];
    for (const [options, message] of refused) {
      await expect(createClient(options as never), JSON.stringify(options)).rejects.toThrow(message);
    }
  });

  it('checks execute options before submitting, and waits without a deadline of its own for Infinity', async () => {
    const queue = uniqueQueue('exec-options');
    const c = await client(queue);
    await expect(c.execute({ code: '1' }, { signal: {} as AbortSignal })).rejects.toThrow(/options\.signal must be an AbortSignal/);
    await expect(c.execute({ code: '1' }, null as never)).rejects.toThrow(/options must be an object/);
    await expect(c.execute({ code: '1' }, { timeoutMs: 5 } as never)).rejects.toThrow(/options\.timeoutMs: unknown option/);
    for (const waitMs of [Number.NaN, -1, 2 ** 31, 1.5]) {
      await expect(c.execute({ code: '1' }, { waitMs })).rejects.toThrow(/options\.waitMs/);
    }
    await expect(c.submitBatch('code' as never)).rejects.toThrow(/expected an array/);
    const counts = await rawQueue(queue).getJobCounts('waiting', 'active', 'delayed', 'prioritized');
    expect(Object.values(counts).reduce((sum, n) => sum + n, 0)).toBe(0);
    await worker(queue);
    expect(await c.execute({ code: '6 * 7' }, { waitMs: Number.POSITIVE_INFINITY })).toMatchObject({ status: 'ok', value: 42 });
  });

  it('rejects a call in flight with CLIENT_CLOSED when the client closes, and nothing goes unhandled', async () => {
    const queue = uniqueQueue('close-in-flight');
    const c = await createClient({ connection: redis.url, queue });
    // The first call starts listening; the second is admitted while close() comes.
    await expect(c.execute({ code: '1' }, { waitMs: 200 })).rejects.toMatchObject({ code: 'WAIT_TIMEOUT' });
    const inFlight = expect(c.execute({ code: '2' })).rejects.toMatchObject({ code: 'CLIENT_CLOSED' });
    await new Promise((resolve) => setImmediate(resolve));
    await c.close();
    await inFlight;
  });

  it('reads and cancels only what can be a job: never the queue\'s own keys, never a job with a bad tenant', async () => {
    const queue = uniqueQueue('ids');
    const c = await client(queue);
    const raw = rawQueue(queue);
    await raw.pause();
    await expect(c.getResult(123 as never)).rejects.toThrow(/job id must be a string/);
    await expect(c.cancel('x', null as never)).rejects.toThrow(/options must be an object/);
    await expect(c.cancel('x', { tenant: 'bob' } as never)).rejects.toThrow(/options\.tenant: unknown option/);
    await expect(c.getResult('x', { tenantId: 'not valid!' })).rejects.toThrow(/options\.tenantId/);
    // 'meta' is the queue's settings hash: cancelling it used to delete it (and unpause the queue).
    expect(await c.cancel('meta')).toBe(false);
    expect(await raw.isPaused()).toBe(true);
    for (const id of ['events', 'id', 'a:b', '']) expect(await c.getResult(id)).toBeUndefined();
    // A raw producer's job with a tenant id that is not valid belongs to no tenant, 'default' included.
    const job = await raw.add('run', { code: '1', tenantId: 'not valid!' });
    expect(await c.cancel(job.id as string)).toBe(false);
    expect(await raw.getJobCounts('waiting')).toEqual({ waiting: 1 });
  });
});
