import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, truncateSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, defaultExecutors, loadClientConfig, loadConfig, redactUrl, unknownVariables } from '../../src/config.ts';
import { DEFAULT_CEILINGS, LIMIT_FLOORS } from '../../src/limits.ts';
import { compilePoolOptions } from '../../src/pool-options.ts';

/** The ConfigError loadConfig throws for `env` (fails the test when it throws anything else or nothing). */
function configError(env: Record<string, string>, load: (env: Record<string, string>) => unknown = loadConfig): ConfigError {
  try {
    load(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

/**
 * loadConfig(env) in a child process, under a time limit and an address-space cap: what these tests
 * point it at (a FIFO, /dev/zero) hangs or grows without end when read whole, and a synchronous hang
 * in this process would stop vitest's own timeout too. Resolves with the error message, if any.
 */
function loadConfigInChild(env: Record<string, string>): { message: string | undefined; timedOut: boolean } {
  const configUrl = new URL('../../src/config.ts', import.meta.url).href;
  const script = `
    const { loadConfig } = await import(${JSON.stringify(configUrl)});
    try { loadConfig(${JSON.stringify(env)}); console.log(JSON.stringify({ message: null })); }
    catch (error) { console.log(JSON.stringify({ message: String(error?.message) })); }`;
  const child = spawnSync(
    'sh',
    ['-c', 'ulimit -v 3000000 && exec "$0" "$@"', process.execPath, '--input-type=module', '-e', script],
    { encoding: 'utf8', timeout: 10_000 },
  );
  const line = child.stdout.trim().split('\n').at(-1) ?? '';
  const message = line.startsWith('{') ? (JSON.parse(line) as { message: string | null }).message ?? undefined : undefined;
  return { message, timedOut: child.signal !== null || line === '' };
}

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
    // The built-in default timeout (5 s) is lowered to the file's ceiling: the worker starts.
    expect(config.defaults.timeoutMs).toBe(1000);
    expect(() => compilePoolOptions({ ceilings: config.ceilings, defaults: config.defaults })).not.toThrow();

    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ ceilings: { timeoutMs: -5 } }));
    expect(() => loadConfig({ SANDPOOL_POLICY_FILE: bad })).toThrow(/ceilings\.timeoutMs/);
    writeFileSync(bad, '{ nope');
    expect(() => loadConfig({ SANDPOOL_POLICY_FILE: bad })).toThrow(/not valid JSON/);
    expect(() => loadConfig({ SANDPOOL_POLICY_FILE: join(dir, 'missing.json') })).toThrow(/ENOENT/);
  });
});

describe('secrets in messages', () => {
  it('never quotes a Redis password, and shows a parseable URL redacted', () => {
    const malformed = configError({ SANDPOOL_REDIS_URL: 'redis//:hunter2@h:6379' }).message;
    expect(malformed).toMatch(/SANDPOOL_REDIS_URL=.*expected a redis:\/\/ or rediss:\/\/ URL/);
    expect(malformed).not.toContain('hunter2');

    const http = configError({ SANDPOOL_REDIS_URL: 'http://admin:hunter2@h' }).message;
    expect(http).toContain('SANDPOOL_REDIS_URL="http://***@h/"');
    expect(http).not.toMatch(/hunter2|admin/);

    // Another bad variable next to a good URL with a password: the URL is not in the message.
    const other = configError({ SANDPOOL_REDIS_URL: 'redis://:hunter2@h:6379', SANDPOOL_QUEUE: 'a b' }).message;
    expect(other).toMatch(/SANDPOOL_QUEUE="a b"/);
    expect(other).not.toContain('hunter2');
  });

  it('refuses, at config time, Redis URLs that ioredis would throw on or misread', () => {
    // Each of these passed the old scheme-only check: ioredis then threw TypeError (Invalid URL),
    // URIError (%zz), connected to a default host, or sent SELECT with a non-number.
    for (const url of ['redis://:hunter2@[x', 'redis://:hunter2@', 'redis://:hunter2%zz@h:6379', 'redis://:hunter2@h:6379/zero']) {
      const message = configError({ SANDPOOL_REDIS_URL: url }).message;
      expect(message, url).toMatch(/^invalid configuration: SANDPOOL_REDIS_URL=/);
      expect(message, url).not.toContain('hunter2');
    }
    for (const url of ['redis://h', 'rediss://user:secret@redis.internal:6380/2', 'redis://[::1]:6379/0', ' redis://h:6379/ ']) {
      expect(loadConfig({ SANDPOOL_REDIS_URL: url }).redisUrl, url).toBe(url.trim());
    }
  });

  it('redactUrl hides the user, password, query and fragment, and an unparseable URL whole', () => {
    expect(redactUrl('redis://admin:hunter2@h:6379/0')).toBe('redis://***@h:6379/0');
    expect(redactUrl('rediss://:hunter2@h')).toBe('rediss://***@h');
    expect(redactUrl('redis://h:6379')).toBe('redis://h:6379');
    expect(redactUrl('redis://:hun@ter2@h:6379')).toBe('redis://***@h:6379');
    for (const url of ['redis://h:6379?password=hunter2', 'redis://h#hunter2', 'redis://h/hunter2', 'redis:admin:hunter2@h', 'redis://:hunter2@[x', 'redis//:hunter2@h']) {
      expect(redactUrl(url), url).not.toContain('hunter2');
    }
  });
});

describe('the policy file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sandpool-policy-'));
  const file = (name: string, content: string | Buffer) => {
    const path = join(dir, name);
    writeFileSync(path, content);
    return path;
  };

  it('says why it cannot be read, with the error code', () => {
    expect(configError({ SANDPOOL_POLICY_FILE: '/nonexistent/policy.json' }).message).toMatch(
      /SANDPOOL_POLICY_FILE="\/nonexistent\/policy.json": .*ENOENT \(no such file\)/,
    );
    const sub = join(dir, 'a-directory');
    mkdirSync(sub);
    expect(configError({ SANDPOOL_POLICY_FILE: sub }).message).toMatch(/not a regular file \(a directory\)/);
    if (process.getuid?.() !== 0) {
      const locked = file('locked.json', '{}');
      chmodSync(locked, 0o000);
      expect(configError({ SANDPOOL_POLICY_FILE: locked }).message).toMatch(/EACCES \(permission denied\)/);
    }
  });

  it("refuses a file over 1 MiB before reading it, and takes one of exactly 1 MiB", () => {
    const huge = join(dir, 'huge.json');
    writeFileSync(huge, '');
    truncateSync(huge, 600 * 1024 * 1024); // sparse: no disk used
    expect(configError({ SANDPOOL_POLICY_FILE: huge }).message).toMatch(
      /SANDPOOL_POLICY_FILE=.*629145600 bytes, over the limit of 1 MiB \(1048576 bytes\)/,
    );
    const policy = '{"ceilingMode":"reject"}';
    const exact = file('exact.json', policy + ' '.repeat(1024 * 1024 - policy.length));
    expect(loadConfig({ SANDPOOL_POLICY_FILE: exact }).ceilingMode).toBe('reject');
    const over = file('over.json', policy + ' '.repeat(1024 * 1024 - policy.length + 1));
    expect(configError({ SANDPOOL_POLICY_FILE: over }).message).toMatch(/over the limit of 1 MiB/);
  });

  it('refuses a device or a FIFO without reading it or waiting', () => {
    const zero = loadConfigInChild({ SANDPOOL_POLICY_FILE: '/dev/zero' });
    expect(zero.timedOut).toBe(false);
    expect(zero.message).toMatch(/SANDPOOL_POLICY_FILE="\/dev\/zero": not a regular file \(a character device\)/);

    const fifo = join(dir, 'fifo');
    const made = spawnSync('mkfifo', [fifo]);
    expect(made.status, 'mkfifo').toBe(0);
    const result = loadConfigInChild({ SANDPOOL_POLICY_FILE: fifo });
    expect(result.timedOut).toBe(false);
    expect(result.message).toMatch(/not a regular file \(a FIFO\)/);
  });

  it("gives the JSON parser's message, and skips a UTF-8 BOM", () => {
    const bad = file('bad.json', '{"ceilings": {"timeoutMs": 1000 "x"}}');
    expect(configError({ SANDPOOL_POLICY_FILE: bad }).message).toMatch(
      /not valid JSON \(Expected ',' or '}' after property value in JSON at position 32 \(line 1 column 33\)\)/,
    );
    const token = file('token.json', '{ "ceilings": nope }');
    expect(configError({ SANDPOOL_POLICY_FILE: token }).message).toMatch(/not valid JSON \(Unexpected token 'o'/);
    const bom = file('bom.json', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"ceilings":{"timeoutMs":1500}}')]));
    expect(loadConfig({ SANDPOOL_POLICY_FILE: bom }).ceilings.timeoutMs).toBe(1500);
    const latin1 = file('latin1.json', Buffer.from([0x7b, 0x22, 0xe9, 0x22, 0x3a, 0x31, 0x7d]));
    expect(configError({ SANDPOOL_POLICY_FILE: latin1 }).message).toMatch(/not UTF-8 text/);
  });

  it('names SANDPOOL_* variables no configuration reads (a misspelt one fell back to the default unsaid)', () => {
    expect(unknownVariables({ SANDPOOL_REDIS: 'redis://x', SANDPOOL_REDIS_URL: 'redis://y', SANDPOOL_QUEUE: 'q', PATH: '/bin', SANDPOOL_PORT: '1' })).toEqual([
      'SANDPOOL_PORT',
      'SANDPOOL_REDIS',
    ]);
    expect(unknownVariables({ SANDPOOL_EXECUTORS: '1' })).toEqual([]);
  });

  it('refuses a ceiling or a default below the hard floor, or a default above its ceiling, naming the field', () => {
    const low = file('low.json', JSON.stringify({ ceilings: { memoryMb: 4 } }));
    expect(configError({ SANDPOOL_POLICY_FILE: low }).message).toMatch(/ceilings\.memoryMb: 4 is below the floor of 8/);
    const lowDefault = file('low-default.json', JSON.stringify({ defaults: { maxResultBytes: 10 } }));
    expect(configError({ SANDPOOL_POLICY_FILE: lowDefault }).message).toMatch(
      /defaults\.maxResultBytes: 10 is below the floor of 16/,
    );
    // Above its ceiling (the file's, or the built-in one) a default would never apply.
    const high = file('high-default.json', JSON.stringify({ defaults: { timeoutMs: DEFAULT_CEILINGS.timeoutMs + 1 } }));
    expect(configError({ SANDPOOL_POLICY_FILE: high }).message).toMatch(
      new RegExp(`defaults\\.timeoutMs: ${DEFAULT_CEILINGS.timeoutMs + 1} is above the ceiling of ${DEFAULT_CEILINGS.timeoutMs}`),
    );
    const underOwn = file('under-own.json', JSON.stringify({ ceilings: { memoryMb: 32 }, defaults: { memoryMb: 48 } }));
    expect(configError({ SANDPOOL_POLICY_FILE: underOwn }).message).toMatch(/defaults\.memoryMb: 48 is above the ceiling of 32/);
    // Lowered ceilings alone lower the built-in defaults with them.
    const lowered = file('lowered.json', JSON.stringify({ ceilings: { timeoutMs: 1000 } }));
    expect(loadConfig({ SANDPOOL_POLICY_FILE: lowered }).ceilings.timeoutMs).toBe(1000);
    // createPool says the same of its options.
    expect(() => compilePoolOptions({ ceilings: { cpuTimeMs: 2000 }, defaults: { cpuTimeMs: 3000 } })).toThrow(
      /options\.defaults\.cpuTimeMs: 3000 is above the ceiling of 2000/,
    );
    expect(compilePoolOptions({ ceilings: { cpuTimeMs: 2000 } }).ceilings.cpuTimeMs).toBe(2000);
    const atFloor = file('at-floor.json', JSON.stringify({ ceilings: LIMIT_FLOORS, defaults: LIMIT_FLOORS }));
    const config = loadConfig({ SANDPOOL_POLICY_FILE: atFloor });
    expect(config.ceilings).toEqual(LIMIT_FLOORS);
    expect(config.defaults).toEqual(LIMIT_FLOORS);
  });

  it("carries the operator's pre-screen settings, checked at start-up", () => {
    const report = file('prescreen.json', JSON.stringify({ prescreen: { mode: 'report', rules: { dynamic_import: 'block' } } }));
    expect(loadConfig({ SANDPOOL_POLICY_FILE: report }).prescreen).toEqual({ mode: 'report', rules: { dynamic_import: 'block' } });
    expect(loadConfig({}).prescreen).toBeUndefined();
    const unknownRule = file('unknown-rule.json', JSON.stringify({ prescreen: { rules: { no_such_rule: 'off' } } }));
    expect(configError({ SANDPOOL_POLICY_FILE: unknownRule }).message).toMatch(/prescreen\.rules: Unrecognized key: "no_such_rule"/);
  });

  it('is not read by loadClientConfig, which still checks the variables', () => {
    const env = { SANDPOOL_POLICY_FILE: join(dir, 'missing.json'), SANDPOOL_QUEUE: 'jobs' };
    expect(() => loadConfig(env)).toThrow(/SANDPOOL_POLICY_FILE.*ENOENT/);
    const client = loadClientConfig(env);
    expect(client.queue).toBe('jobs');
    expect(Object.isFrozen(client)).toBe(true);
    expect(client).not.toHaveProperty('ceilings');
    expect(configError({ ...env, SANDPOOL_CONCURRENCY: 'lots' }, loadClientConfig).message).toMatch(/SANDPOOL_CONCURRENCY/);
  });
});

describe('the tools file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sandpool-tools-'));
  const file = (name: string, content: string) => {
    const path = join(dir, name);
    writeFileSync(path, content);
    return path;
  };
  const add = { name: 'add', description: 'a + b', inputSchema: { type: 'object' }, code: 'export default ({ a, b }) => a + b;' };

  it('registers the tools at start-up, so a bad one stops it naming the tool', () => {
    const good = file('good.json', JSON.stringify([add]));
    const config = loadConfig({ SANDPOOL_TOOLS_FILE: good });
    expect(config.tools?.has('add')).toBe(true);
    expect(config.toolsFile).toBe(good);
    expect(loadConfig({}).tools).toBeUndefined();
    const twice = file('twice.json', JSON.stringify([add, add]));
    expect(configError({ SANDPOOL_TOOLS_FILE: twice }).message).toMatch(/SANDPOOL_TOOLS_FILE=".*twice\.json": tool 'add': tools\[1\]\.name: 'add' is already defined/);
    const object = file('object.json', JSON.stringify(add));
    expect(configError({ SANDPOOL_TOOLS_FILE: object }).message).toMatch(/expected a JSON array of tool definitions/);
    expect(configError({ SANDPOOL_TOOLS_FILE: join(dir, 'missing.json') }).message).toMatch(/SANDPOOL_TOOLS_FILE=.*ENOENT/);
  });

  it("refuses, under the policy's ceilingMode reject, a tool whose own limit is above its ceiling, naming both files", () => {
    const slow = file('slow.json', JSON.stringify([{ ...add, limits: { timeoutMs: 30_000 } }]));
    const clamp = file('clamp.json', JSON.stringify({ ceilings: { timeoutMs: 2_000 } }));
    const reject = file('reject.json', JSON.stringify({ ceilings: { timeoutMs: 2_000 }, ceilingMode: 'reject' }));
    expect(loadConfig({ SANDPOOL_TOOLS_FILE: slow, SANDPOOL_POLICY_FILE: clamp }).tools?.has('add')).toBe(true);
    expect(configError({ SANDPOOL_TOOLS_FILE: slow, SANDPOOL_POLICY_FILE: reject }).message).toMatch(
      /SANDPOOL_TOOLS_FILE=".*slow\.json": tool 'add': limits\.timeoutMs: 30000 is above the ceiling of 2000: every call would be rejected \(the ceilings of SANDPOOL_POLICY_FILE=".*reject\.json"\)/,
    );
  });

  it('is read whole up to 64 MiB, as run --tools reads it: room for the tools\' code', () => {
    const padded = JSON.stringify([add]);
    const big = file('big.json', padded + ' '.repeat(2 * 1024 * 1024));
    expect(loadConfig({ SANDPOOL_TOOLS_FILE: big }).tools?.has('add')).toBe(true);
    const huge = join(dir, 'huge.json');
    writeFileSync(huge, '');
    truncateSync(huge, 65 * 1024 * 1024);
    expect(configError({ SANDPOOL_TOOLS_FILE: huge }).message).toMatch(/over the limit of 64 MiB/);
  });
});

describe('numbers in the environment', () => {
  it('takes plain decimal digits only', () => {
    expect(loadConfig({ SANDPOOL_CONCURRENCY: '16', SANDPOOL_METRICS_PORT: '0' })).toMatchObject({ concurrency: 16, metricsPort: 0 });
    expect(loadConfig({ SANDPOOL_CONCURRENCY: '016' }).concurrency).toBe(16);
    for (const value of ['0x10', '0b11', '0o7', '1e3', '1.0', '+8', '-1', ' 8', '8 ', '8_000', 'Infinity']) {
      expect(configError({ SANDPOOL_CONCURRENCY: value }).message, value).toContain(
        `SANDPOOL_CONCURRENCY=${JSON.stringify(value)}: expected a whole number from 1 to 10000 (decimal digits only)`,
      );
    }
    expect(configError({ SANDPOOL_CONCURRENCY: '99999999999999999999999' }).message).toMatch(/from 1 to 10000/);
  });

  it("says the metrics port also takes 'off'", () => {
    expect(loadConfig({ SANDPOOL_METRICS_PORT: 'off' }).metricsPort).toBeNull();
    expect(loadConfig({ SANDPOOL_METRICS_PORT: '65535' }).metricsPort).toBe(65_535);
    for (const value of ['0x50', 'OFF', '65536']) {
      expect(configError({ SANDPOOL_METRICS_PORT: value }).message, value).toContain(
        `SANDPOOL_METRICS_PORT=${JSON.stringify(value)}: expected a port 0..65535 (decimal digits) or 'off'`,
      );
    }
  });
});

describe('executors and threads', () => {
  it('accepts exactly what createPool accepts', () => {
    const option = { SANDPOOL_EXECUTORS: 'executors', SANDPOOL_THREADS_PER_EXECUTOR: 'threadsPerExecutor', SANDPOOL_STANDBY_EXECUTORS: 'standbyExecutors' } as const;
    for (const variable of ['SANDPOOL_EXECUTORS', 'SANDPOOL_THREADS_PER_EXECUTOR', 'SANDPOOL_STANDBY_EXECUTORS'] as const) {
      for (const value of [0, 1, 2, 8, 9, 63, 64, 65, 100, 256]) {
        let poolAccepts = true;
        try {
          compilePoolOptions({ [option[variable]]: value });
        } catch {
          poolAccepts = false;
        }
        let config: ReturnType<typeof loadConfig> | undefined;
        try {
          config = loadConfig({ [variable]: String(value) });
        } catch (error) {
          expect(error, `${variable}=${value}`).toBeInstanceOf(ConfigError);
          expect((error as Error).message).toContain(`${variable}="${value}"`);
        }
        expect(config !== undefined, `${variable}=${value}`).toBe(poolAccepts);
        if (config !== undefined) {
          const { executors, threadsPerExecutor, standbyExecutors } = config;
          expect(() => compilePoolOptions({ executors, threadsPerExecutor, standbyExecutors })).not.toThrow();
          expect(config[option[variable]], `${variable}=${value}`).toBe(value);
        }
      }
    }
  });

  it('caps the default executor count at what createPool accepts', () => {
    for (const cores of [1, 2, 64, 65, 128, 256]) {
      const executors = defaultExecutors(cores);
      expect(executors).toBe(Math.min(cores, 64));
      expect(() => compilePoolOptions({ executors })).not.toThrow();
    }
    expect(loadConfig({}).executors).toBe(defaultExecutors(availableParallelism()));
  });
});
