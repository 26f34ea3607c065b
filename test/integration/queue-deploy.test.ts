// The deployment files, checked without a Docker engine: the compose file's structure, the
// Dockerfile's stages, user and health check, the runtime's imports against the dependencies the
// image installs, and the image's CMD and HEALTHCHECK run as they are against a real redis-server,
// in a directory holding only what the runtime stage copies.
import { spawn } from 'node:child_process';
import { builtinModules } from 'node:module';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from '../../src/client.ts';
import { freePort, startRedis, uniqueQueue, type RedisServer } from '../helpers/redis.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');

type Yaml = string | number | boolean | null | Yaml[] | { [key: string]: Yaml };

/**
 * The YAML the compose file uses, no more: block mappings, block sequences of scalars, flow
 * sequences of scalars, `{}`, quoted and plain scalars, comments. No YAML library is a dependency;
 * anything outside this subset fails the test, which keeps the file plain.
 */
function parseYamlSubset(text: string): Yaml {
  const lines = text
    .split('\n')
    .map((raw, index) => ({ raw: raw.replace(/\s+#.*$/, '').replace(/^#.*$/, ''), number: index + 1 }))
    .filter((line) => line.raw.trim() !== '')
    .map((line) => ({ indent: line.raw.length - line.raw.trimStart().length, text: line.raw.trim(), number: line.number }));
  let at = 0;
  const scalar = (s: string): Yaml => {
    if (/^".*"$/.test(s)) return JSON.parse(s) as string;
    if (/^'.*'$/.test(s)) return s.slice(1, -1);
    if (s === 'true' || s === 'false') return s === 'true';
    if (s === '{}') return {};
    if (/^-?\d+$/.test(s)) return Number(s);
    if (s.startsWith('[')) {
      if (!s.endsWith(']')) throw new Error(`unsupported flow sequence: ${s}`);
      const inner = s.slice(1, -1).trim();
      return inner === '' ? [] : (inner.match(/"(?:[^"\\]|\\.)*"|'[^']*'|[^,\s][^,]*/g) ?? []).map((item) => scalar(item.trim()));
    }
    if (/[{}[\]]/.test(s)) throw new Error(`unsupported flow syntax: ${s}`);
    return s;
  };
  const block = (indent: number): Yaml => {
    const first = lines[at];
    if (!first || first.indent < indent) return null;
    if (first.text.startsWith('- ')) {
      const list: Yaml[] = [];
      while (lines[at] && lines[at]!.indent === indent && lines[at]!.text.startsWith('- ')) {
        list.push(scalar(lines[at]!.text.slice(2).trim()));
        at++;
      }
      return list;
    }
    const map: Record<string, Yaml> = {};
    while (lines[at] && lines[at]!.indent === indent) {
      const line = lines[at]!;
      const match = /^([A-Za-z0-9_.-]+):(?:\s+(.*))?$/.exec(line.text);
      if (!match) throw new Error(`line ${line.number}: unsupported YAML: ${line.text}`);
      at++;
      const [, key, rest] = match;
      map[key!] = rest === undefined ? block(lines[at]?.indent ?? 0) : scalar(rest);
    }
    if (lines[at] && lines[at]!.indent > indent) throw new Error(`line ${lines[at]!.number}: bad indentation`);
    return map;
  };
  const doc = block(0);
  if (at !== lines.length) throw new Error(`line ${lines[at]!.number}: not parsed`);
  return doc;
}

/** Dockerfile instructions with their continuation lines joined. */
function dockerInstructions(text: string): { op: string; args: string }[] {
  return text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const [op, ...rest] = line.split(/\s+/);
      return { op: (op ?? '').toUpperCase(), args: rest.join(' ') };
    });
}

describe('docker/compose.yaml', () => {
  const compose = parseYamlSubset(read('docker/compose.yaml')) as Record<string, any>;

  it('runs Redis with an append-only file and N worker replicas of the image', () => {
    const { redis, worker } = compose.services;
    expect(redis.command).toEqual(expect.arrayContaining(['--appendonly', 'yes', '--appendfsync', 'always']));
    expect(redis.volumes[0]).toMatch(/:\/data$/);
    expect(redis.healthcheck.test).toContain('ping');
    expect(worker.image).toBe('sandpool:latest');
    expect(worker.build.context).toBe('..');
    expect(existsSync(new URL(`../../${worker.build.dockerfile}`, import.meta.url))).toBe(true);
    expect(worker.deploy.replicas).toBeGreaterThanOrEqual(2);
    expect(worker.environment.SANDPOOL_REDIS_URL).toBe('redis://redis:6379');
    expect(worker.depends_on.redis.condition).toBe('service_healthy');
    expect(worker.read_only).toBe(true);
    // A worker that exits because Redis was late is started again.
    expect(worker.restart).toBe('unless-stopped');
    expect(redis.restart).toBe('unless-stopped');
    expect(worker.stop_signal).toBe('SIGTERM');
    // Docker must wait longer than the worker's own shutdown grace before it kills.
    expect(Number.parseInt(worker.stop_grace_period, 10) * 1000).toBeGreaterThan(Number(worker.environment.SANDPOOL_SHUTDOWN_GRACE_MS));
    expect(Object.keys(compose.volumes)).toContain(redis.volumes[0].split(':')[0]);
  });

  it('uses only variables that loadConfig knows', async () => {
    const { CONFIG_DEFAULTS: _defaults, loadConfig } = await import('../../src/config.ts');
    const env = compose.services.worker.environment as Record<string, string>;
    const config = loadConfig(env);
    expect(config.redisUrl).toBe('redis://redis:6379');
    expect(config.metricsPort).toBe(9464);
    expect(Object.keys(env).every((name) => name.startsWith('SANDPOOL_'))).toBe(true);
  });
});

/**
 * A directory laid out as the image's WORKDIR: what the runtime stage COPYs, from this checkout.
 * The deps stage's node_modules is this checkout's (a link): which packages the image lacks is
 * the import check's business.
 */
function runtimeLayout(steps: readonly { op: string; args: string }[]): string {
  const runtime = steps.slice(steps.findLastIndex((step) => step.op === 'FROM'));
  expect(runtime.find((step) => step.op === 'WORKDIR')?.args).toBe('/app');
  const dir = mkdtempSync(join(tmpdir(), 'sandpool-image-'));
  for (const step of runtime.filter((s) => s.op === 'COPY')) {
    const words = step.args.split(/\s+/);
    const fromStage = words[0]?.startsWith('--from=') ? words.shift() : undefined;
    expect(words).toHaveLength(2);
    const [source, target] = words as [string, string];
    // The deps stage's WORKDIR is /app too: its files are this checkout's, node_modules installed there.
    const from = fromStage ? join(ROOT, source.replace(/^\/app\/?/, '')) : join(ROOT, source);
    // A target ending in / is a directory the source goes into, as Docker reads it.
    const to = target.endsWith('/') ? join(dir, target, basename(source)) : join(dir, target);
    if (fromStage && source === '/app/node_modules') symlinkSync(from, to, 'dir');
    else cpSync(from, to, { recursive: true });
  }
  return dir;
}

/** Package names the code under `dirs` imports (static and dynamic imports with a plain string). */
function importedPackages(dirs: readonly string[]): Map<string, string> {
  const found = new Map<string, string>();
  const visit = (path: string) => {
    for (const entry of readdirSync(path, { withFileTypes: true })) {
      const full = join(path, entry.name);
      if (entry.isDirectory()) visit(full);
      else if (/\.(ts|js|mjs)$/.test(entry.name)) {
        const text = readFileSync(full, 'utf8');
        for (const match of text.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+'([^']+)'|\bimport\('([^'$]+)'\)/gm)) {
          const specifier = (match[1] ?? match[2]) as string;
          // Text that only looks like an import, inside the isolate harness's template strings.
          if (specifier.includes('${')) continue;
          if (specifier.startsWith('.') || specifier.startsWith('node:') || builtinModules.includes(specifier)) continue;
          const name = specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : (specifier.split('/')[0] as string);
          found.set(name, full.slice(ROOT.length));
        }
      }
    }
  };
  for (const dir of dirs) visit(join(ROOT, dir));
  return found;
}

describe('Dockerfile', () => {
  const steps = dockerInstructions(read('Dockerfile'));
  const last = (op: string) => steps.filter((s) => s.op === op).at(-1)?.args ?? '';

  it('installs every package the code it copies imports (npm ci --omit=dev)', () => {
    expect(steps.find((step) => step.op === 'RUN' && step.args.includes('npm ci'))?.args).toContain('--omit=dev');
    const copied = steps
      .slice(steps.findLastIndex((step) => step.op === 'FROM'))
      .filter((step) => step.op === 'COPY' && !step.args.startsWith('--from='))
      .map((step) => step.args.split(/\s+/)[0] as string)
      .filter((source) => !source.includes('.json'));
    expect(copied).toEqual(expect.arrayContaining(['bin', 'src', 'workers']));
    const { dependencies } = JSON.parse(read('package.json')) as { dependencies: Record<string, string> };
    const imports = importedPackages(copied);
    // The scan finds what the engine and the queue stand on, so it is reading the imports at all.
    expect([...imports.keys()]).toEqual(expect.arrayContaining(['isolated-vm', 'bullmq', 'piscina']));
    const missing = [...imports].filter(([name]) => !(name in dependencies)).map(([name, file]) => `${name} (${file})`);
    expect(missing).toEqual([]);
  });

  it('is multi-stage on Node 24 slim, runs as a non-root user, checks /healthz', () => {
    const froms = steps.filter((s) => s.op === 'FROM');
    expect(froms.length).toBeGreaterThanOrEqual(2);
    for (const from of froms) expect(from.args).toMatch(/^node:24-slim\b/);
    const user = last('USER');
    expect(user).not.toBe('');
    expect(user.split(':')[0]).not.toMatch(/^(root|0)$/);
    expect(last('HEALTHCHECK')).toContain('/healthz');
    expect(() => JSON.parse(last('CMD'))).not.toThrow();
  });

  describe('its CMD and HEALTHCHECK, run outside Docker', () => {
    let redis: RedisServer;
    beforeAll(async () => {
      redis = await startRedis();
    });
    afterAll(async () => {
      await redis?.dispose();
    });

    it('serve a queue and answer the health check, then drain on SIGTERM', { timeout: 60_000 }, async () => {
      const [command, ...args] = JSON.parse(last('CMD')) as string[];
      const healthcheck = JSON.parse(last('HEALTHCHECK').replace(/^.*?CMD\s+/, '')) as string[];
      expect(command).toBe('node');
      const port = await freePort();
      const queue = uniqueQueue('image');
      const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, NODE_ENV: 'production' };
      Object.assign(env, { SANDPOOL_REDIS_URL: redis.url, SANDPOOL_QUEUE: queue, SANDPOOL_METRICS_PORT: String(port), SANDPOOL_EXECUTORS: '1' });
      const image = runtimeLayout(steps);
      const worker = spawn(process.execPath, args, { cwd: image, env, stdio: ['ignore', 'pipe', 'inherit'] });
      const exited = new Promise<number | null>((resolve) => worker.once('exit', (code) => resolve(code)));
      try {
        const check = () =>
          new Promise<number | null>((resolve) => {
            const probe = spawn(process.execPath, healthcheck.slice(1), { env, stdio: 'ignore' });
            probe.once('exit', (code) => resolve(code));
          });
        let healthy = false;
        for (let i = 0; i < 100 && !healthy; i++) {
          healthy = (await check()) === 0;
          if (!healthy) await new Promise((resolve) => setTimeout(resolve, 100));
        }
        expect(healthy).toBe(true);
        // With the side port off there is nothing to ask: the check passes rather than fail for ever.
        for (const off of ['off', '0']) {
          const probe = spawn(process.execPath, healthcheck.slice(1), { env: { ...env, SANDPOOL_METRICS_PORT: off }, stdio: 'ignore' });
          expect(await new Promise((resolve) => probe.once('exit', resolve))).toBe(0);
        }
        const client = await createClient({ connection: redis.url, queue });
        try {
          expect((await client.execute({ code: '"from the image"' })).value).toBe('from the image');
        } finally {
          await client.close();
        }
        worker.kill('SIGTERM');
        expect(await exited).toBe(0);
      } finally {
        worker.kill('SIGKILL');
        rmSync(image, { recursive: true, force: true });
      }
    });
  });
});

