// The isolate runner's pure host-side helpers: UTF-8 cuts, output capping, stack filtering and the
// shape check of what the in-isolate harness hands over.
import { describe, expect, test } from 'vitest';
import { DEFAULT_LIMITS } from '../../src/limits.ts';
import { capOutput, describeHostCopy, limitError, readHarnessOutcome, sandboxStack, utf8Head, utf8Tail } from '../../workers/isolate-outcome.ts';

const bytes = (text: string) => Buffer.byteLength(text, 'utf8');

describe('UTF-8 cuts', () => {
  test('a head never splits a character', () => {
    expect(utf8Head('ab€cd', 4)).toBe('ab');
    expect(utf8Head('ab€cd', 5)).toBe('ab€');
    expect(utf8Head('😀😀', 7)).toBe('😀');
    expect(utf8Head('plain', 0)).toBe('');
  });

  test('a tail never splits a character', () => {
    expect(utf8Tail('ab€cd', 4)).toBe('cd');
    expect(utf8Tail('ab€cd', 5)).toBe('€cd');
    expect(utf8Tail('😀😀', 7)).toBe('😀');
  });

  test('texts far longer than the cut are cut the same way, a pair cut in two dropped', () => {
    const pairs = '😀'.repeat(10_000);
    for (const max of [0, 1, 3, 4, 7, 8, 4096]) {
      expect(Buffer.byteLength(utf8Head(pairs, max))).toBe(Math.floor(max / 4) * 4);
      expect(Buffer.byteLength(utf8Tail(pairs, max))).toBe(Math.floor(max / 4) * 4);
    }
    expect(utf8Head(`${'a'.repeat(9_999)}😀`, 10_000)).toBe('a'.repeat(9_999));
    expect(utf8Tail(`😀${'a'.repeat(9_999)}`, 10_000)).toBe('a'.repeat(9_999));
  });
});

describe('capOutput', () => {
  const empty = { stderrHead: '', stderrTail: '', stderrTotalBytes: 0 };

  test('keeps output within the cap as it is', () => {
    const kept = capOutput({ stdoutHead: 'hello ', stdoutTail: 'world', stdoutTotalBytes: 11, ...empty }, 20);
    expect(kept).toMatchObject({ stdout: 'hello world', stdoutTotalBytes: 11 });
  });

  test('re-caps a head and tail that exceed the cap, half each', () => {
    const kept = capOutput({ stdoutHead: 'a'.repeat(50), stdoutTail: 'b'.repeat(50), stdoutTotalBytes: 1000, ...empty }, 10);
    expect(kept.stdout).toBe('aaaaabbbbb');
    expect(kept.stdoutTotalBytes).toBe(1000);
  });

  test('the total is never below what was kept', () => {
    const kept = capOutput({ stdoutHead: 'abc', stdoutTail: '', stdoutTotalBytes: 0, ...empty }, 10);
    expect(kept.stdoutTotalBytes).toBe(3);
  });

  test('multi-byte text stays within the cap in bytes', () => {
    const kept = capOutput({ stdoutHead: '€'.repeat(10), stdoutTail: '😀'.repeat(10), stdoutTotalBytes: 70, ...empty }, 16);
    expect(bytes(kept.stdout)).toBeLessThanOrEqual(16);
    expect(kept.stdout).toBe('€€😀😀');
  });
});

describe('sandboxStack', () => {
  test('keeps snippet frames and the builtins between them, drops harness and host frames', () => {
    const raw = [
      'TypeError: boom',
      '    at inner (snippet.js:1:20)',
      '    at Array.map (<anonymous>)',
      '    at eval (snippet.js:3:1)',
      '    at eval (<anonymous>)',
      '    at harness (sandpool:harness:500:15)',
      '    at (<isolated-vm boundary>)',
      '    at runJob (file:///work/main/workers/isolate.ts:10:1)',
    ].join('\n');
    expect(sandboxStack('TypeError', 'boom', raw)).toBe(
      'TypeError: boom\n    at inner (snippet.js:1:20)\n    at Array.map (<anonymous>)\n    at snippet.js:3:1',
    );
  });

  test('no snippet frame, no stack', () => {
    expect(sandboxStack('SyntaxError', 'x', 'SyntaxError: x\n    at (<isolated-vm boundary>)\n    at f (/home/a.js:1:1)')).toBeUndefined();
  });
});

describe('readHarnessOutcome', () => {
  test('reads a well-formed outcome field by field', () => {
    const outcome = readHarnessOutcome({
      status: 'error',
      truncatedValue: false,
      stdoutHead: 'o',
      stdoutTail: '',
      stdoutTotalBytes: 1,
      stderrHead: '',
      stderrTail: '',
      stderrTotalBytes: 0,
      error: { name: 'Error', message: 'm', stack: 'Error: m\n    at snippet.js:1:1', phase: 'runtime', extra: 'dropped' },
    });
    expect(outcome?.error).toEqual({ name: 'Error', message: 'm', phase: 'runtime', stack: 'Error: m\n    at snippet.js:1:1' });
    expect(outcome?.stdoutHead).toBe('o');
  });

  test('bad fields fall back to safe values', () => {
    const outcome = readHarnessOutcome({ status: 'error', stdoutHead: 5, stdoutTotalBytes: -1, error: { phase: 'elsewhere' } });
    expect(outcome).toMatchObject({ status: 'error', stdoutHead: '', stdoutTotalBytes: 0, error: { name: 'Error', phase: 'runtime' } });
    expect(readHarnessOutcome('nonsense')).toBeUndefined();
  });

  test('caps error fields', () => {
    const outcome = readHarnessOutcome({ status: 'error', error: { name: 'N'.repeat(1000), message: 'é'.repeat(5000) } });
    expect(bytes(outcome?.error?.name ?? '')).toBeLessThanOrEqual(256);
    expect(bytes(outcome?.error?.message ?? '')).toBeLessThanOrEqual(4096);
  });
});

describe('errors', () => {
  test('host copies are described with their phase', () => {
    expect(describeHostCopy(new SyntaxError('Unexpected end of input [snippet.js:1:2]'), 'compile')).toEqual({
      name: 'SyntaxError',
      message: 'Unexpected end of input [snippet.js:1:2]',
      phase: 'compile',
    });
    expect(describeHostCopy('text', 'runtime')).toMatchObject({ name: 'NonError', message: 'thrown value: text' });
    expect(describeHostCopy({ a: 1 }, 'runtime')).toMatchObject({ name: 'NonError', message: 'thrown value: {"a":1}' });
    expect(describeHostCopy(5n, 'runtime')).toMatchObject({ name: 'NonError', message: 'thrown value: 5n' });
    // Within the bound, still in decimal (the message keeps its head).
    expect(describeHostCopy(-(2n ** 8000n), 'runtime').message.startsWith(`thrown value: ${String(-(2n ** 8000n)).slice(0, 100)}`)).toBe(true);
    // Printing this one in decimal takes seconds of the thread's CPU, outside the job's limits.
    expect(describeHostCopy(1n << (1n << 24n), 'runtime')).toMatchObject({ name: 'NonError', message: 'thrown value: a BigInt of more than 8192 bits' });
  });

  test('a copied-out error with a huge message is described without reading its stack', () => {
    // V8 builds a host error's stack from its message on each read: for hundreds of MB, seconds each.
    let stackReads = 0;
    const huge = new Error('y'.repeat(2 * 1024 * 1024));
    Object.defineProperty(huge, 'stack', {
      get: () => {
        stackReads++;
        return 'Error: y\n    at snippet.mjs:1:7';
      },
    });
    const described = describeHostCopy(huge, 'runtime');
    expect(stackReads).toBe(0);
    expect(described).toMatchObject({ name: 'Error', phase: 'runtime' });
    expect(described.stack).toBeUndefined();
    expect(Buffer.byteLength(described.message)).toBeLessThanOrEqual(4096);
    // An ordinary one keeps its sandbox frames.
    const small = new Error('small');
    small.stack = 'Error: small\n    at snippet.mjs:1:7';
    expect(describeHostCopy(small, 'runtime').stack).toBe('Error: small\n    at snippet.mjs:1:7');
  });

  test('limit errors name the limit', () => {
    expect(limitError('wall', DEFAULT_LIMITS)).toMatchObject({ name: 'TimeoutError', limit: 'wall' });
    expect(limitError('cpu', DEFAULT_LIMITS)).toMatchObject({ name: 'TimeoutError', limit: 'cpu' });
    expect(limitError('memory', DEFAULT_LIMITS).message).toContain('64 MB');
    expect(limitError('cancel', DEFAULT_LIMITS).name).toBe('CancelledError');
  });
});
