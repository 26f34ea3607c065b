import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { DEFAULT_CEILINGS } from '../../src/limits.ts';

describe('loadConfig', () => {
  it('gives defaults for an empty environment, frozen', () => {
    const config = loadConfig({});
    expect(config.queue).toBe('sandpool');
    expect(config.prefix).toBe('bull');
    expect(config.redisUrl).toBe('redis://127.0.0.1:6379');
    expect(config.ceilings).toEqual(DEFAULT_CEILINGS);
    expect(config.concurrency).toBe(config.executors * config.threadsPerExecutor);
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('reads the variables it knows, blanks count as unset', () => {
    const config = loadConfig({
      SANDPOOL_REDIS_URL: 'rediss://user:secret@redis.internal:6380/2',
      SANDPOOL_QUEUE: 'jobs',
      SANDPOOL_PREFIX: '{sp}',
      SANDPOOL_CONCURRENCY: '8',
      SANDPOOL_METRICS_PORT: 'off',
      SANDPOOL_LOCK_DURATION_MS: '',
      SANDPOOL_STALLED_INTERVAL_MS: '2000',
    });
    expect(config).toMatchObject({
      redisUrl: 'rediss://user:secret@redis.internal:6380/2',
      queue: 'jobs',
      prefix: '{sp}',
      concurrency: 8,
      metricsPort: null,
      lockDurationMs: 30_000,
      stalledIntervalMs: 2000,
    });
  });

  it('names the bad variable and what it holds', () => {
    expect(() => loadConfig({ SANDPOOL_CONCURRENCY: 'lots' })).toThrow(/SANDPOOL_CONCURRENCY="lots"/);
    expect(() => loadConfig({ SANDPOOL_REDIS_URL: 'http://x' })).toThrow(/SANDPOOL_REDIS_URL.*redis:\/\//);
    expect(() => loadConfig({ SANDPOOL_PREFIX: 'a:b' })).toThrow(ConfigError);
    expect(() => loadConfig({ SANDPOOL_LOG_LEVEL: 'loud' })).toThrow(/SANDPOOL_LOG_LEVEL/);
  });

  it('reads a policy file and names its bad fields', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sandpool-config-'));
    const good = join(dir, 'good.json');
    writeFileSync(good, JSON.stringify({ ceilings: { timeoutMs: 1000 }, defaults: { memoryMb: 32 }, ceilingMode: 'reject' }));
    const config = loadConfig({ SANDPOOL_POLICY_FILE: good });
    expect(config.ceilings.timeoutMs).toBe(1000);
    expect(config.ceilings.memoryMb).toBe(DEFAULT_CEILINGS.memoryMb);
    expect(config.defaults.memoryMb).toBe(32);
    expect(config.ceilingMode).toBe('reject');

    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ ceilings: { timeoutMs: -5 } }));
    expect(() => loadConfig({ SANDPOOL_POLICY_FILE: bad })).toThrow(/ceilings\.timeoutMs/);
    writeFileSync(bad, '{ nope');
    expect(() => loadConfig({ SANDPOOL_POLICY_FILE: bad })).toThrow(/not valid JSON/);
    expect(() => loadConfig({ SANDPOOL_POLICY_FILE: join(dir, 'missing.json') })).toThrow(/cannot be read/);
  });
});
