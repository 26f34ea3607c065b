// The pool's per-job pipeline (validation, size limits, ceilings, tools, TypeScript, code form)
// through real executor processes. The thread is the scripted fixture, which echoes the task it
// got, so each test sees exactly what reached the thread.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CEILINGS, DEFAULT_LIMITS } from '../../src/limits.ts';
import { availableParallelism } from 'node:os';
import { createPool, type Pool } from '../../src/pool.ts';
import { compilePoolOptions } from '../../src/pool-options.ts';
import { createJobPipeline, type Preparation } from '../../src/pool-job.ts';
import type { Result } from '../../src/result.ts';
import { parseRequest } from '../../src/request.ts';

const SCRIPTED = new URL('../fixtures/threads/scripted.ts', import.meta.url);

interface Echo {
  code: string;
  form: string;
  input: unknown;
  limits: Record<string, number>;
}

function echoed(result: Result): Echo {
  expect(result.status).toBe('ok');
  return result.value as unknown as Echo;
}

describe('pool pipeline (clamp mode)', () => {
  let pool: Pool;
  beforeAll(async () => {
    pool = await createPool({
      executors: 1,
      threadsPerExecutor: 1,
      threadModule: SCRIPTED,
      ceilings: { timeoutMs: 10_000 },
      sizeLimits: { maxCodeBytes: 1_000, maxInputBytes: 100 },
      hostName: 'test-host',
      tools: [
        {
          name: 'doubler',
          description: 'doubles n',
          inputSchema: { type: 'object', properties: { n: { type: 'number' } }, required: ['n'] },
          code: 'echo\nexport default ({ n }: { n: number }) => n * 2',
          language: 'typescript',
          limits: { timeoutMs: 2_000, memoryMb: 32 },
        },
      ],
    });
  });
  afterAll(() => pool.close());

  it('answers code sent again as it did the first time: each Result owns its warnings, and stricter settings are screened afresh', async () => {
    const code = 'echo\nError.captureStackTrace({})';
    const first = await pool.execute({ code });
    expect(first.warnings).toEqual([expect.objectContaining({ rule: 'capture_stack_trace' })]);
    first.warnings.splice(0);
    const second = await pool.execute({ code });
    expect(second).toMatchObject({ status: 'ok', warnings: [expect.objectContaining({ rule: 'capture_stack_trace' })] });
    // The pool's screen of this code is known now; a request's own stricter settings do not get it.
    const strict = await pool.execute({ code, prescreen: { rules: { capture_stack_trace: 'block' } } });
    expect(strict).toMatchObject({ status: 'rejected', rejection: { reasons: [expect.objectContaining({ rule: 'capture_stack_trace' })] } });
  });

  it('answers TypeScript sent again as it did the first time, stripped or not', async () => {
    for (let round = 0; round < 2; round++) {
      expect(echoed(await pool.execute({ code: 'echo\nconst n: number = 1', language: 'typescript' }))).toMatchObject({
        code: 'echo\nconst n         = 1',
        form: 'script',
      });
      expect(await pool.execute({ code: 'echo\nlet x: = 1', language: 'typescript' })).toMatchObject({
        status: 'error',
        error: { name: 'SyntaxError', phase: 'compile' },
      });
    }
  });

  it('hands the thread the code, the input as JSON, and the applied limits; reports who ran it', async () => {
    const result = await pool.execute({ code: 'echo', input: { list: [1, 'two', null] }, labels: { team: 'a' } }, { id: 'job-1', attempt: 3 });
    expect(echoed(result)).toEqual({ code: 'echo', form: 'script', input: { list: [1, 'two', null] }, limits: DEFAULT_LIMITS, cancelSlot: 0 });
    expect(result).toMatchObject({ id: 'job-1', labels: { team: 'a' }, limits: DEFAULT_LIMITS, stdout: 'echo\n', warnings: [] });
    expect(result.metrics).toMatchObject({ attempt: 3, stdoutBytes: 5, worker: { host: 'test-host' } });
    expect(result.metrics.worker.pid).not.toBe(process.pid);
    expect(result.metrics.worker.thread).toBeGreaterThan(0);
    expect(result.metrics.queueWaitMs).toBeGreaterThanOrEqual(0);
  });

  it('measures queue wait to the microsecond: never more than the whole round trip', async () => {
    for (let round = 0; round < 10; round++) {
      const started = performance.now();
      const result = await pool.execute({ code: 'echo' });
      const elapsed = performance.now() - started;
      expect(result.metrics.queueWaitMs).toBeGreaterThanOrEqual(0);
      expect(result.metrics.queueWaitMs).toBeLessThanOrEqual(elapsed);
    }
  });

  it('executeValidated takes only parseRequest\'s own output', async () => {
    await expect(pool.executeValidated({ code: 'echo' } as never)).rejects.toThrow(/executeValidated\(\): expected parseRequest\(\)'s own output/);
    await expect(pool.executeValidated(null as never)).rejects.toThrow(TypeError);
    const parsed = parseRequest({ code: 'echo' });
    if (!parsed.ok) throw new Error('parseRequest refused a plain request');
    expect(await pool.executeValidated(parsed.request)).toMatchObject({ status: 'ok' });
  });

  it('gives each job a fresh id unless one is given', async () => {
    const [a, b] = await Promise.all([pool.execute({ code: 'echo' }), pool.execute({ code: 'echo' })]);
    expect(a.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(a.id).not.toBe(b.id);
  });

  it('rejects invalid requests naming every bad field', async () => {
    const result = await pool.execute({ code: 42, language: 'cobol', limits: { timeoutMs: -1 }, extra: true });
    expect(result.status).toBe('rejected');
    const fields = result.rejection?.reasons.map((reason) => reason.field) ?? [];
    expect(fields).toEqual(expect.arrayContaining(['code', 'language', 'limits.timeoutMs']));
    for (const reason of result.rejection?.reasons ?? []) {
      expect(reason.rule).toBe('validation');
      expect(reason.message).toContain(reason.field);
    }
    expect(result.metrics.worker.pid).toBe(0);
  });

  it('rejects what is not an object at all, and neither code nor tool', async () => {
    for (const request of [null, 'echo', 7, [], {}]) {
      const result = await pool.execute(request);
      expect(result.status).toBe('rejected');
      expect(result.rejection?.reasons[0]?.rule).toBe('validation');
    }
  });

  it('rejects cyclic and absurdly deep input as validation errors', async () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    let deep: unknown = 0;
    for (let level = 0; level < 100_000; level++) deep = [deep];
    for (const input of [cyclic, deep]) {
      const result = await pool.execute({ code: 'echo', input });
      expect(result.status).toBe('rejected');
      expect(result.rejection?.reasons[0]?.rule).toBe('validation');
    }
  });

  it('clamps limits above a ceiling and reports the applied ones', async () => {
    const result = await pool.execute({ code: 'echo', limits: { timeoutMs: 60_000, memoryMb: 2_000, cpuTimeMs: 10 } });
    const expected = { ...DEFAULT_LIMITS, timeoutMs: 10_000, memoryMb: DEFAULT_CEILINGS.memoryMb, cpuTimeMs: 10 };
    expect(echoed(result).limits).toEqual(expected);
    expect(result.limits).toEqual(expected);
  });

  it('rejects code and input over the size limits (multi-byte text counted in bytes)', async () => {
    const bigCode = await pool.execute({ code: `echo //${'é'.repeat(600)}` });
    expect(bigCode.rejection?.reasons).toEqual([expect.objectContaining({ rule: 'code_too_large', field: 'code' })]);
    const bigInput = await pool.execute({ code: 'echo', input: 'x'.repeat(200) });
    expect(bigInput.rejection?.reasons).toEqual([expect.objectContaining({ rule: 'input_too_large', field: 'input' })]);
    const justFits = await pool.execute({ code: 'echo', input: 'x'.repeat(98) });
    expect(justFits.status).toBe('ok');
  });

  it('strips TypeScript, keeping positions, and detects the module form after stripping', async () => {
    const code = 'echo\nconst n: number = 2;\nexport default (input: unknown): number => n';
    const echo = echoed(await pool.execute({ code, language: 'typescript' }));
    expect(echo.form).toBe('module');
    expect(echo.code).toBe('echo\nconst n         = 2;\nexport default (input         )         => n');
  });

  it('answers a TypeScript syntax error as a compile error with line and column', async () => {
    const result = await pool.execute({ code: 'echo\nconst n: = 2;', language: 'typescript' });
    expect(result.status).toBe('error');
    expect(result.error).toMatchObject({ name: 'SyntaxError', phase: 'compile' });
    expect(result.error?.message).toMatch(/line 2, column 10/);
  });

  it('detects the code form of plain JavaScript', async () => {
    expect(echoed(await pool.execute({ code: 'echo\nexport default function () { return 1 }' })).form).toBe('module');
    expect(echoed(await pool.execute({ code: 'echo\nconst exported = 1; exported' })).form).toBe('script');
  });

  it('resolves tools: their code and language, their limits under the request’s, input checked', async () => {
    const result = await pool.execute({ tool: 'doubler', input: { n: 2 }, limits: { memoryMb: 48 } });
    const echo = echoed(result);
    expect(echo.form).toBe('module');
    expect(echo.limits).toMatchObject({ timeoutMs: 2_000, memoryMb: 48 });
    // A limit the request names but leaves undefined is not asked: the tool's own stands.
    const unset = echoed(await pool.execute({ tool: 'doubler', input: { n: 2 }, limits: { timeoutMs: undefined } }));
    expect(unset.limits).toMatchObject({ timeoutMs: 2_000, memoryMb: 32 });
    const bad = await pool.execute({ tool: 'doubler', input: { n: 'two' } });
    expect(bad.rejection?.reasons[0]).toMatchObject({ rule: 'tool_input_invalid' });
    const unknown = await pool.execute({ tool: 'tripler', input: {} });
    expect(unknown.rejection?.reasons).toEqual([expect.objectContaining({ rule: 'unknown_tool', field: 'tool' })]);
  });
});

describe('a tool\'s code', () => {
  const doubler = {
    name: 'doubler',
    description: 'doubles n',
    inputSchema: { type: 'object', properties: { n: { type: 'number' } }, required: ['n'] },
    code: 'export default ({ n }: { n: number }) => n * 2',
    language: 'typescript' as const,
  };

  it('is stripped and its form told on the first call only; later calls are prepared at once', async () => {
    const pipeline = createJobPipeline(compilePoolOptions({ tools: [doubler] }));
    const first = pipeline.prepare({ tool: 'doubler', input: { n: 1 } }, 'a');
    expect(first).toBeInstanceOf(Promise);
    const prepared = (await first) as Preparation;
    if (!prepared.ok) throw new Error('the tool call was not prepared');
    expect(prepared.job.task.code).not.toContain(': number');
    const later = pipeline.prepare({ tool: 'doubler', input: { n: 2 } }, 'b');
    expect(later).not.toBeInstanceOf(Promise);
    expect(later).toMatchObject({ ok: true, job: { task: { id: 'b', code: prepared.job.task.code, form: 'module', inputJson: '{"n":2}' } } });
    // Input is still checked on every call. A code request with the tool's text finds that text
    // stripped already (a pure function of the source), and is screened as any code request is.
    expect(pipeline.prepare({ tool: 'doubler', input: { n: 'two' } }, 'c')).toMatchObject({ ok: false });
    expect(pipeline.prepare({ code: doubler.code, language: 'typescript' }, 'd')).toMatchObject({
      ok: true,
      job: { task: { id: 'd', code: prepared.job.task.code, form: 'module' }, warnings: [] },
    });
    const blocked = `${doubler.code}\nconst F = [].constructor.constructor`;
    expect(await pipeline.prepare({ code: blocked, language: 'typescript' }, 'e')).toMatchObject({
      ok: false,
      result: { status: 'rejected', rejection: { reasons: [expect.objectContaining({ rule: 'function_constructor_chain' })] } },
    });
  });
});

describe('pool pipeline (reject mode, no tools)', () => {
  let pool: Pool;
  beforeAll(async () => {
    pool = await createPool({ executors: 1, threadsPerExecutor: 1, threadModule: SCRIPTED, ceilingMode: 'reject' });
  });
  afterAll(() => pool.close());

  it('rejects a request above a ceiling, naming each field', async () => {
    const result = await pool.execute({ code: 'echo', limits: { timeoutMs: 3_600_000, memoryMb: 2_000, cpuTimeMs: 10 } });
    expect(result.status).toBe('rejected');
    expect(result.rejection?.reasons).toEqual([
      expect.objectContaining({ rule: 'limit_above_ceiling', field: 'limits.timeoutMs' }),
      expect.objectContaining({ rule: 'limit_above_ceiling', field: 'limits.memoryMb' }),
    ]);
  });

  it('runs a request within the ceilings', async () => {
    expect((await pool.execute({ code: 'echo', limits: { timeoutMs: 60_000 } })).status).toBe('ok');
  });

  it('rejects any tool request when no tools are registered', async () => {
    const result = await pool.execute({ tool: 'anything', input: 1 });
    expect(result.rejection?.reasons).toEqual([expect.objectContaining({ rule: 'unknown_tool', field: 'tool' })]);
  });
});

describe('pool options', () => {
  it('compiles defaults once into a frozen object, with derived deadlines and memory ceiling', () => {
    const cores = availableParallelism();
    const compiled = compilePoolOptions();
    const executors = Math.min(2, cores);
    const threads = Math.max(1, Math.ceil(cores / executors));
    expect(compiled).toMatchObject({
      executors,
      threadsPerExecutor: threads,
      sparesPerThread: 2,
      recycleAfterJobs: 10_000,
      maxQueued: 1_000,
      ceilingMode: 'clamp',
      maxAttempts: 2,
      defaults: DEFAULT_LIMITS,
      ceilings: DEFAULT_CEILINGS,
      executorMemoryMb: 1024 + threads * DEFAULT_CEILINGS.memoryMb,
    });
    expect(Object.isFrozen(compiled)).toBe(true);
    expect(compiled.poolGraceMs).toBeGreaterThan(compiled.executorGraceMs);
    expect(compiled.threadModule).toMatch(/^file:.*\/workers\/thread\.ts$/);
    expect(compiled.executorPath).toMatch(/\/workers\/executor\.ts$/);
    expect(compilePoolOptions({ threadsPerExecutor: 3, ceilings: { memoryMb: 100 } }).executorMemoryMb).toBe(1024 + 300);
  });

  it('refuses bad options, naming them', async () => {
    await expect(createPool({ executors: 0 })).rejects.toThrow(/options\.executors/);
    await expect(createPool({ maxAttempts: 1.5 })).rejects.toThrow(/options\.maxAttempts/);
    await expect(createPool({ maxQueued: 0 })).rejects.toThrow(/options\.maxQueued/);
    await expect(createPool({ ceilings: { memoryMb: Number.NaN } })).rejects.toThrow(/options\.ceilings\.memoryMb/);
    // Past a day, setTimeout no longer waits what it is told; past 64 GiB the derived RSS ceiling means nothing.
    await expect(createPool({ ceilings: { memoryMb: 1e9 } })).rejects.toThrow(/options\.ceilings\.memoryMb: expected a number from 8 to 65536/);
    await expect(createPool({ defaults: { timeoutMs: 2 ** 32 } })).rejects.toThrow(/options\.defaults\.timeoutMs/);
    await expect(createPool({ defaults: { maxOutputBytes: '5' as never } })).rejects.toThrow(/options\.defaults\.maxOutputBytes/);
    // Below a floor, the job would run with the floor: above what was set.
    await expect(createPool({ ceilings: { memoryMb: 4 } })).rejects.toThrow(/options\.ceilings\.memoryMb: expected a number from 8 to/);
    // Misspelt or mistyped options are errors, not silent defaults.
    await expect(createPool({ executor: 99 } as never)).rejects.toThrow(/options\.executor: unknown option/);
    await expect(createPool({ ceilings: 'big' as never })).rejects.toThrow(/options\.ceilings: expected an object, got "big"/);
    await expect(createPool({ ceilings: [1, 2] as never })).rejects.toThrow(/options\.ceilings: expected an object, got an array/);
    await expect(createPool({ ceilings: { timeout: 100 } as never })).rejects.toThrow(/options\.ceilings\.timeout: unknown/);
    await expect(createPool({ sizeLimits: 5 as never })).rejects.toThrow(/options\.sizeLimits: expected an object/);
    await expect(createPool({ threadModule: 5 as never })).rejects.toThrow(/options\.threadModule: expected a file URL or a path/);
    const prescreen = createPool({ prescreen: { mode: 'sometimes' } as never });
    await expect(prescreen).rejects.toThrow(/options\.prescreen: .*mode/);
    await expect(prescreen).rejects.not.toThrow(/\n/);
    await expect(createPool({ ceilingMode: 'maybe' as 'clamp' })).rejects.toThrow(/options\.ceilingMode/);
    await expect(createPool({ logger: {} as never })).rejects.toThrow(/options\.logger/);
    await expect(createPool({ tools: 'add' as never })).rejects.toThrow(/options\.tools/);
    await expect(createPool(null as never)).rejects.toThrow(/options: expected an object/);
  });

  it('fails to create, naming why, when the thread module cannot load', async () => {
    const broken = new URL('../fixtures/threads/broken.ts', import.meta.url);
    const error = await createPool({ executors: 2, threadsPerExecutor: 1, threadModule: broken }).then(
      () => undefined,
      (caught: unknown) => caught as Error,
    );
    expect(error?.message).toContain('the executors failed to start');
    expect(String((error?.cause as Error | undefined)?.message)).toContain('this thread module fails to load');
  });
});
