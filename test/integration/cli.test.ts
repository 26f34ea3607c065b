// The `sandpool` command as a user runs it: a real process through bin/sandpool.js, embedded mode
// (no Redis), checking what it prints and the documented exit codes.
import { mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { EXIT_CODES, MAX_SOURCE_BYTES } from '../../src/cli.ts';
import { LIMIT_MAXIMA } from '../../src/limits.ts';
import type { Result } from '../../src/result.ts';
import { sandpool, sandpoolWith } from '../helpers/cli.ts';

const EXAMPLES = fileURLToPath(new URL('../../examples/', import.meta.url));

describe('sandpool run', () => {
  it('runs a file embedded: echoes its output, prints the value, exits 0', async () => {
    const run = await sandpool(['run', `${EXAMPLES}hello.js`, '--input', '"hi"']);
    expect(run.code).toBe(EXIT_CODES.ok);
    expect(run.stdout).toContain('hello from a fresh isolate');
    expect(JSON.parse(run.stdout.slice(run.stdout.indexOf('{')))).toEqual({
      primes: [2, 3, 5, 7, 11, 13, 17, 19, 23, 29],
      input: 'hi',
    });
  });

  it('prints one JSON Result line with --json and reads code from stdin', async () => {
    const run = await sandpool(['run', '-', '--json'], 'console.error("careful"); [1, 2].map((n) => n * 2)');
    expect(run.code).toBe(0);
    const lines = run.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const result = JSON.parse(lines[0] ?? '') as Result;
    expect(result).toMatchObject({ status: 'ok', value: [2, 4], stderr: 'careful\n' });
    expect(result.metrics.worker.pid).not.toBe(process.pid);
  });

  it('strips TypeScript chosen by the file name and calls the default export with input', async () => {
    const run = await sandpool(['run', `${EXAMPLES}word-count.ts`, '--json', '--input', '{"text":"a b a"}']);
    expect(JSON.parse(run.stdout)).toMatchObject({ status: 'ok', value: { a: 2, b: 1 } });
  });

  it('invokes a registered tool', async () => {
    const run = await sandpool(['run', '--tools', `${EXAMPLES}tools.json`, '--tool', 'add', '--input', '{"a":2,"b":40}']);
    expect(run.code).toBe(0);
    expect(run.stdout.trim()).toBe('42');
  });

  it.each([
    ['error', 'throw new TypeError("bad")', [], 'TypeError: bad'],
    ['timeout', 'while (true) {}', ['--timeout', '300'], 'wall limit'],
    ['memory_limit', 'const a = []; for (;;) a.push("x".repeat(1e4) + a.length)', ['--memory', '16'], 'memory_limit'],
    ['rejected', 'this.constructor.constructor("return 1")()', [], 'function_constructor_chain'],
  ] as const)('exits with the code of %s and says why on stderr', async (status, code, flags, said) => {
    const run = await sandpool(['run', '-', ...flags], code);
    expect(run.code).toBe(EXIT_CODES[status]);
    expect(run.stderr).toContain(said);
  });

  it('runs hostile code that the pre-screen would reject when screening is off, still contained', async () => {
    const run = await sandpool(['run', '-', '--no-prescreen', '--json'], 'this.constructor.constructor("return typeof process")()');
    expect(JSON.parse(run.stdout)).toMatchObject({ status: 'ok', value: 'undefined' });
  });

  it('answers bad usage with exit 2 and a message naming the problem', async () => {
    expect(await sandpool(['run', '-', '--timeout', 'soon'], '1')).toMatchObject({
      code: EXIT_CODES.usage,
      stderr: expect.stringContaining('--timeout expects a whole number'),
    });
    // Past 2^53 a number is no longer the digits given: refused, not rounded.
    expect(await sandpool(['run', '-', '--memory', '99999999999999999999'], '1')).toMatchObject({
      code: EXIT_CODES.usage,
      stderr: expect.stringContaining('--memory expects a whole number'),
    });
    expect(await sandpool(['submit', '-', '--wait-ms', '0'], '1')).toMatchObject({
      code: EXIT_CODES.usage,
      stderr: expect.stringContaining(`--wait-ms expects a whole number from 1 to ${2 ** 31 - 1}`),
    });
    // Out of what a request may ask: a bad flag too, not a rejected job (exit 5).
    for (const [flag, value, range] of [
      ['--timeout', '0', `from 1 to ${LIMIT_MAXIMA.timeoutMs}`],
      ['--memory', '1000000', `from 1 to ${LIMIT_MAXIMA.memoryMb}`],
      ['--max-result', '0', `from 1 to ${LIMIT_MAXIMA.maxResultBytes}`],
    ] as const) {
      expect(await sandpool(['run', '-', flag, value], '1')).toMatchObject({
        code: EXIT_CODES.usage,
        stderr: expect.stringContaining(`${flag} expects a whole number ${range}, got '${value}'`),
      });
    }
    expect(await sandpool(['run', '/nonexistent/x.js'])).toMatchObject({ code: 2, stderr: expect.stringContaining('ENOENT') });
    expect(await sandpool(['frobnicate'])).toMatchObject({ code: 2, stderr: expect.stringContaining("unknown command 'frobnicate'") });
    expect(await sandpool(['run', '-', '--input', '{bad'], '1')).toMatchObject({ code: 2 });
  });
});

describe('sandpool on bad input of its own: a clear line and a documented exit code, never a stack trace', () => {
  const noStack = (text: string) => expect(text).not.toMatch(/\n\s+at /);

  it('stops reading a source past its bound instead of filling memory', async () => {
    const file = await sandpool(['run', '/dev/zero']);
    expect(file).toMatchObject({ code: EXIT_CODES.usage, stderr: expect.stringContaining(`/dev/zero is larger than ${MAX_SOURCE_BYTES} bytes`) });
    const stdin = await sandpoolWith(['run', '-'], [openSync('/dev/zero', 'r'), 'pipe', 'pipe']);
    expect(stdin).toMatchObject({ code: EXIT_CODES.usage, stderr: expect.stringContaining('standard input is larger than') });
  });

  it('names a bad tool definition as a usage error, whether running or listing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sandpool-cli-'));
    const tools = join(dir, 'tools.json');
    writeFileSync(tools, JSON.stringify([{ name: '1bad', description: 'x', inputSchema: {}, code: '1' }]));
    for (const args of [['run', '-', '--tools', tools], ['tools', '--tools', tools]]) {
      const run = await sandpool(args, '1');
      expect(run).toMatchObject({ code: EXIT_CODES.usage, stderr: expect.stringContaining('tools[0].name') });
      noStack(run.stderr);
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses embedded-only flags with --redis, which would ignore them', async () => {
    const run = await sandpool(['run', '-', '--redis', 'redis://127.0.0.1:1', '--no-prescreen'], '1');
    expect(run).toMatchObject({ code: EXIT_CODES.usage, stderr: expect.stringContaining('--no-prescreen apply to an embedded run') });
  });

  it('reports a Redis it cannot reach through run --redis as internal_error, in one line', async () => {
    const run = await sandpool(['run', '-', '--redis', 'redis://127.0.0.1:1'], '1', { SANDPOOL_REDIS_TIMEOUT_MS: '500' });
    expect(run).toMatchObject({ code: EXIT_CODES.internal_error, stderr: expect.stringContaining('REDIS_UNAVAILABLE') });
    noStack(run.stderr);
  });

  it('names the flag given, never its password, for a bad --redis URL; a client needs no policy file', async () => {
    for (const command of [['submit', '-'], ['run', '-']]) {
      const run = await sandpool([...command, '--redis', 'http://admin:hunter2@example.com'], '1', { SANDPOOL_POLICY_FILE: '/nonexistent' });
      expect(run).toMatchObject({ code: EXIT_CODES.usage, stderr: expect.stringContaining('--redis="http://***@example.com') });
      expect(run.stderr).not.toContain('hunter2');
      expect(run.stderr).not.toContain('SANDPOOL_POLICY_FILE');
      noStack(run.stderr);
    }
  });

  it('prints usage on stderr when given no command', async () => {
    expect(await sandpool([])).toMatchObject({ code: EXIT_CODES.usage, stdout: '', stderr: expect.stringContaining('Usage: sandpool') });
  });

  it('exits 8, not 1 (a snippet error), when its own output cannot be written', async () => {
    const run = await sandpoolWith(['schema'], ['pipe', openSync('/dev/full', 'w'), 'pipe']);
    expect(run).toMatchObject({ code: EXIT_CODES.failure, stderr: expect.stringContaining('cannot write the output: ENOSPC') });
    noStack(run.stderr);
  });
});

describe('sandpool tools and schema', () => {
  it('prints execute_code and registered tools for an LLM API', async () => {
    const run = await sandpool(['tools', '--tools', `${EXAMPLES}tools.json`, '--format', 'openai']);
    const tools = JSON.parse(run.stdout) as { function: { name: string } }[];
    expect(tools.map((tool) => tool.function.name)).toEqual(['execute_code', 'add']);
  });

  it('prints the request JSON Schema', async () => {
    const run = await sandpool(['schema']);
    expect(JSON.parse(run.stdout)).toMatchObject({ type: 'object', properties: { code: { type: 'string' } } });
  });

  it('schema, tools and bench refuse flags and arguments they do not take, and answer --help', async () => {
    for (const args of [['schema', '--bogus'], ['schema', 'x'], ['tools', 'tools.json'], ['bench', '--qiuck'], ['bench', 'x']]) {
      const run = await sandpool(args);
      expect(run.code, args.join(' ')).toBe(EXIT_CODES.usage);
      expect(run.stdout).toBe('');
    }
    const version = await sandpool(['--version']);
    expect(version.code).toBe(0);
    expect(version.stdout).toMatch(/^sandpool \d+\.\d+\.\d+\n$/);
    for (const command of ['schema', 'tools', 'bench']) {
      const run = await sandpool([command, '--help']);
      expect(run.code).toBe(0);
      expect(run.stdout).toContain(`Usage: sandpool ${command}`);
    }
  });
});
