// The `sandpool` command against a real queue: a real redis-server on a free port, a real
// `sandpool worker` process, and `sandpool submit` / `sandpool run --redis` as a user runs them.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT_CODES } from '../../src/cli.ts';
import type { Result } from '../../src/result.ts';
import { BIN, cleanEnv, sandpool } from '../helpers/cli.ts';
import { startRedis, uniqueQueue, type RedisServer } from '../helpers/redis.ts';

let redis: RedisServer;
let worker: ChildProcess;
let workerExit: Promise<number | null>;
const queue = uniqueQueue('cli');

beforeAll(async () => {
  redis = await startRedis();
  // The worker's own pre-screen settings: a rule the default only warns on, blocked.
  const policy = join(mkdtempSync(join(tmpdir(), 'sandpool-cli-queue-')), 'policy.json');
  // And one the default blocks, only warned on: the client leaves screening to the workers.
  writeFileSync(policy, JSON.stringify({ prescreen: { rules: { dynamic_import: 'block', function_constructor_chain: 'warn' } } }));
  const tools = new URL('../../examples/tools.json', import.meta.url).pathname;
  worker = spawn(
    process.execPath,
    [BIN, 'worker', '--redis', redis.url, '--queue', queue, '--executors', '1', '--metrics-port', '0', '--tools', tools, '--policy', policy],
    { env: cleanEnv(), stdio: ['ignore', 'pipe', 'inherit'] },
  );
  workerExit = new Promise((resolve) => worker.once('exit', resolve));
  await new Promise<void>((resolve, reject) => {
    let buffered = '';
    worker.stdout?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      if (buffered.includes('"worker ready"')) resolve();
    });
    void workerExit.then((code) => reject(new Error(`worker exited with ${code} before it was ready`)));
  });
});

/** Resolves once a worker runs a job of the queue (nothing comes back before a job's Result). */
async function untilRunning(): Promise<void> {
  const probe = new Queue(queue, { connection: { url: redis.url } });
  try {
    const deadline = Date.now() + 10_000;
    while ((await probe.getActiveCount()) === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25));
  } finally {
    await probe.close();
  }
}

afterAll(async () => {
  if (worker.exitCode === null) worker.kill('SIGKILL');
  await redis?.dispose();
});

describe('sandpool submit and run --redis', () => {
  it('submit --wait --json prints the Result a worker produced', async () => {
    const run = await sandpool(['submit', '-', '--redis', redis.url, '--queue', queue, '--wait', '--json'], 'console.log("queued"); 6 * 7');
    expect(run.code).toBe(EXIT_CODES.ok);
    const result = JSON.parse(run.stdout) as Result;
    expect(result).toMatchObject({ status: 'ok', value: 42, stdout: 'queued\n' });
    expect(result.metrics.worker.pid).not.toBe(worker.pid);
  });

  it('submit without --wait prints the job id; the same idempotency key gives the same id', async () => {
    const args = ['submit', '-', '--redis', redis.url, '--queue', queue, '--idempotency-key', 'cli-once'];
    const first = await sandpool(args, '1');
    const second = await sandpool(args, '1');
    expect(first.code).toBe(0);
    expect(first.stdout.trim()).toMatch(/\S+/);
    expect(second.stdout.trim()).toBe(first.stdout.trim());
  });

  it('run --redis goes through the queue named by SANDPOOL_QUEUE and exits by status', async () => {
    const run = await sandpool(['run', '-', '--redis', redis.url, '--timeout', '300'], 'while (true) {}', { SANDPOOL_QUEUE: queue });
    expect(run.code).toBe(EXIT_CODES.timeout);
    expect(run.stderr).toContain('wall limit');
  });

  it('a request the client rejects never reaches Redis and exits as rejected', async () => {
    const run = await sandpool(['submit', '-', '--redis', redis.url, '--queue', queue, '--tenant', 'bad tenant!'], '1');
    expect(run.code).toBe(EXIT_CODES.rejected);
    expect(run.stderr).toContain('INVALID_REQUEST');
  });

  it("the worker's own tools and pre-screen settings apply to jobs from the queue", async () => {
    const tool = await sandpool(['run', '--redis', redis.url, '--tool', 'add', '--input', '{"a":2,"b":40}', '--json'], undefined, { SANDPOOL_QUEUE: queue });
    expect(tool.code).toBe(EXIT_CODES.ok);
    expect(JSON.parse(tool.stdout)).toMatchObject({ status: 'ok', value: 42 });
    // The client's default screen only warns on import(); the worker's policy blocks it.
    const blocked = await sandpool(['submit', '-', '--redis', redis.url, '--queue', queue, '--wait', '--json'], 'import("x").catch(() => 1)');
    expect(blocked.code).toBe(EXIT_CODES.rejected);
    expect(JSON.parse(blocked.stdout)).toMatchObject({ status: 'rejected', rejection: { reasons: [expect.objectContaining({ rule: 'dynamic_import' })] } });
    // The default blocks this; the worker's policy only warns, and the command does not overrule it.
    const chain = 'this.constructor.constructor("return 6 * 7")()';
    for (const args of [['submit', '-', '--wait'], ['run', '-']]) {
      const loosened = await sandpool([...args, '--redis', redis.url, '--queue', queue, '--json'], chain);
      expect(loosened.code, loosened.stderr).toBe(EXIT_CODES.ok);
      const result = JSON.parse(loosened.stdout) as Result;
      expect(result).toMatchObject({ status: 'ok', value: 42 });
      expect(result.warnings).toEqual([expect.objectContaining({ rule: 'function_constructor_chain' })]);
    }
  });

  it('submit --wait answers SIGTERM as SIGINT: the job is cancelled and its Result printed', async () => {
    const child = spawn(process.execPath, [BIN, 'submit', '-', '--redis', redis.url, '--queue', queue, '--wait', '--json'], {
      env: cleanEnv(),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
    child.stdin?.end('console.log("started"); for (;;) {}');
    await untilRunning();
    child.kill('SIGTERM');
    expect(await exited).toBe(EXIT_CODES.cancelled);
    const result = JSON.parse(stdout) as Result;
    expect(result.status).toBe('cancelled');
    // It ran: the Result is the worker's, not the cancel mark's.
    expect(result.metrics.worker.pid).not.toBe(child.pid);
    expect(result.metrics.wallTimeMs).toBeGreaterThan(0);
  });

  it('submit and run name themselves when the FILE is missing; --queue without --redis is refused', async () => {
    const submit = await sandpool(['submit', '--redis', redis.url, '--queue', queue]);
    expect(submit.code).toBe(EXIT_CODES.usage);
    expect(submit.stderr).toContain('submit needs a FILE');
    const run = await sandpool(['run', '-', '--queue', queue], '1');
    expect(run.code).toBe(EXIT_CODES.usage);
    expect(run.stderr).toContain('--queue and --prefix name the queue of a run with --redis');
  });

  it('a bad tools file stops the worker before it connects, naming the flag and the tool', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sandpool-cli-tools-'));
    const bad = join(dir, 'tools.json');
    // A pattern RE2 cannot compile (a lookahead): refused at registration, naming the tool.
    const inputSchema = { type: 'object', properties: { x: { type: 'string', pattern: '(?=a)' } } };
    writeFileSync(bad, JSON.stringify([{ name: 'lookahead', description: 'x', inputSchema, code: 'export default 1' }]));
    const run = await sandpool(['worker', '--redis', 'redis://127.0.0.1:1', '--tools', bad]);
    expect(run.code).toBe(EXIT_CODES.usage);
    expect(run.stderr).toContain(`--tools=${JSON.stringify(bad)}`);
    expect(run.stderr).toContain("'lookahead'");
  });

  it('a wait that runs out exits 9 (unanswered), and the job goes on to its own Result', async () => {
    const slow = 'const end = Date.now() + 1500; while (Date.now() < end) {} 5';
    const run = await sandpool(['submit', '-', '--redis', redis.url, '--queue', queue, '--wait', '--wait-ms', '200'], slow);
    expect(run.code).toBe(EXIT_CODES.unanswered);
    expect(run.stderr).toContain('WAIT_TIMEOUT');
  });

  it('result and cancel take a submitted job by id, for its own tenant only', async () => {
    const at = ['--redis', redis.url, '--queue', queue];
    const done = await sandpool(['submit', '-', ...at, '--tenant', 'acme'], '6 * 7');
    const id = done.stdout.trim();
    let result = await sandpool(['result', id, ...at, '--tenant', 'acme', '--json']);
    for (let i = 0; i < 100 && result.code === EXIT_CODES.unanswered; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      result = await sandpool(['result', id, ...at, '--tenant', 'acme', '--json']);
    }
    expect(result.code).toBe(EXIT_CODES.ok);
    expect(JSON.parse(result.stdout)).toMatchObject({ id, status: 'ok', value: 42 });
    // Another tenant's job is unknown to it: no Result, exit 9, and one JSON line saying so.
    const foreign = await sandpool(['result', id, ...at, '--json']);
    expect(foreign.code).toBe(EXIT_CODES.unanswered);
    expect(JSON.parse(foreign.stdout)).toMatchObject({ id, error: { code: 'NO_RESULT' } });
    expect((await sandpool(['cancel', id, ...at])).code).toBe(EXIT_CODES.unanswered);

    const spinning = (await sandpool(['submit', '-', ...at, '--tenant', 'acme', '--timeout', '20000', '--cpu-time', '20000'], 'for (;;) {}')).stdout.trim();
    await untilRunning();
    expect((await sandpool(['cancel', spinning, ...at, '--json'])).stdout).toBe(`${JSON.stringify({ id: spinning, cancelled: false })}\n`);
    const cancel = await sandpool(['cancel', spinning, ...at, '--tenant', 'acme']);
    expect(cancel.code).toBe(0);
    expect(cancel.stdout).toBe(`cancelled ${spinning}\n`);
    let after = await sandpool(['result', spinning, ...at, '--tenant', 'acme']);
    for (let i = 0; i < 100 && after.code === EXIT_CODES.unanswered; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      after = await sandpool(['result', spinning, ...at, '--tenant', 'acme']);
    }
    expect(after.code).toBe(EXIT_CODES.cancelled);
    expect((await sandpool(['result', ...at])).code).toBe(EXIT_CODES.usage);
  });

  it('with --json, a command that gets no Result still prints one JSON line', async () => {
    const dead = 'redis://127.0.0.1:1';
    for (const args of [['submit', '-', '--wait'], ['run', '-'], ['result', 'some-id']]) {
      const run = await sandpool([...args, '--redis', dead, '--json'], '1', { SANDPOOL_REDIS_TIMEOUT_MS: '300' });
      expect(run.code, args.join(' ')).toBe(EXIT_CODES.internal_error);
      expect(JSON.parse(run.stdout)).toMatchObject({ error: { code: 'REDIS_UNAVAILABLE' } });
    }
    const slow = 'const end = Date.now() + 1500; while (Date.now() < end) {} 5';
    const waited = await sandpool(['submit', '-', '--redis', redis.url, '--queue', queue, '--wait', '--wait-ms', '200', '--json'], slow);
    expect(waited.code).toBe(EXIT_CODES.unanswered);
    expect(JSON.parse(waited.stdout)).toMatchObject({ error: { code: 'WAIT_TIMEOUT' }, id: expect.any(String) });
  });

  it('a worker that cannot start says why on stderr, even with its log silenced', async () => {
    const { createServer } = await import('node:net');
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    try {
      const port = String((taken.address() as { port: number }).port);
      const run = await sandpool(['worker', '--redis', redis.url, '--queue', uniqueQueue('cli-port'), '--executors', '1', '--metrics-port', port], '', {
        SANDPOOL_LOG_LEVEL: 'silent',
      });
      expect(run.code).toBe(EXIT_CODES.failure);
      expect(run.stdout).toBe('');
      expect(run.stderr).toMatch(/^sandpool worker: failed to start: .*in use/m);
    } finally {
      taken.close();
    }
  });

  it('a bad environment variable stops the command with a message naming it', async () => {
    const run = await sandpool(['submit', '-', '--queue', queue], '1', { SANDPOOL_REDIS_URL: 'http://nope' });
    expect(run.code).toBe(EXIT_CODES.usage);
    expect(run.stderr).toContain('SANDPOOL_REDIS_URL');
    // A misspelt one is said, and the command goes on.
    const typo = await sandpool(['submit', '-', '--redis', redis.url, '--queue', queue], '1', { SANDPOOL_REDIS: 'redis://elsewhere' });
    expect(typo.code).toBe(0);
    expect(typo.stderr).toContain('environment variables sandpool does not read (misspelt?): SANDPOOL_REDIS');
  });

  it('the worker drains and exits 0 on SIGTERM', async () => {
    worker.kill('SIGTERM');
    expect(await workerExit).toBe(0);
  });
});
