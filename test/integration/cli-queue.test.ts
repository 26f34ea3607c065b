// The `sandpool` command against a real queue: a real redis-server on a free port, a real
// `sandpool worker` process, and `sandpool submit` / `sandpool run --redis` as a user runs them.
import { spawn, type ChildProcess } from 'node:child_process';
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
  worker = spawn(
    process.execPath,
    [BIN, 'worker', '--redis', redis.url, '--queue', queue, '--executors', '1', '--metrics-port', '0'],
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

  it('a bad environment variable stops the command with a message naming it', async () => {
    const run = await sandpool(['submit', '-', '--queue', queue], '1', { SANDPOOL_REDIS_URL: 'http://nope' });
    expect(run.code).toBe(EXIT_CODES.usage);
    expect(run.stderr).toContain('SANDPOOL_REDIS_URL');
  });

  it('the worker drains and exits 0 on SIGTERM', async () => {
    worker.kill('SIGTERM');
    expect(await workerExit).toBe(0);
  });
});
