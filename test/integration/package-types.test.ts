// The published type declarations, as a consumer's compiler sees them: built as `npm run build`
// builds them, then type-checked from a TypeScript program that imports 'sandpool' with an older lib
// (ES2022) and skipLibCheck off. A lib type of ES2024 named in a declaration (PromiseWithResolvers)
// once failed such a program with TS2304.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
const dir = mkdtempSync(join(tmpdir(), 'sandpool-types-'));

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function tsc(args: string[]): { status: number | null; output: string } {
  const run = spawnSync(process.execPath, [TSC, ...args], { cwd: dir, encoding: 'utf8' });
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

describe('published type declarations', () => {
  it('type-check in a consumer compiling against ES2022 with skipLibCheck off', { timeout: 120_000 }, () => {
    // The declarations' own imports (zod, pino, bullmq...) resolve from here, as from an install.
    symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
    const build = tsc(['-p', join(ROOT, 'tsconfig.build.json'), '--emitDeclarationOnly', '--outDir', join(dir, 'dist')]);
    expect(build.output).toBe('');
    expect(build.status).toBe(0);
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
    writeFileSync(
      join(dir, 'consumer.ts'),
      [
        "import { createPool, createClient, type Result } from 'sandpool';",
        'const pool = await createPool();',
        "const result: Result = await pool.execute({ code: '1 + 1' });",
        'console.log(result.status, typeof createClient);',
        'export {};',
      ].join('\n'),
    );
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'es2022',
          lib: ['es2022'],
          module: 'nodenext',
          moduleResolution: 'nodenext',
          strict: true,
          skipLibCheck: false,
          noEmit: true,
          types: ['node'],
          paths: { sandpool: ['./dist/src/index.d.ts'] },
        },
        files: ['consumer.ts'],
      }),
    );
    const check = tsc(['-p', '.']);
    // Only what sandpool publishes is judged: the dependencies' own declarations are theirs.
    const ours = check.output.split('\n').filter((line) => line.startsWith('dist/') || line.startsWith('consumer.ts'));
    expect(ours).toEqual([]);
  });
});
