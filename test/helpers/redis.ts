// Test helper, runs in the vitest process: starts a real redis-server on a free loopback port in its
// own temporary directory, and stops it by its pid. Never a mock: the queue tests need real Redis.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';

export interface RedisServer {
  port: number;
  url: string;
  dir: string;
  /** SIGTERM (Redis writes its AOF and exits), waits for the exit. */
  stop(): Promise<void>;
  /** SIGKILL: no shutdown work at all. */
  kill(): Promise<void>;
  /** Starts it again on the same port and directory (AOF and all). */
  start(): Promise<void>;
  /** stop() and remove the directory. */
  dispose(): Promise<void>;
}

export interface RedisServerOptions {
  /** Append-only file with fsync on every write, so a restart loses nothing accepted. */
  appendOnly?: boolean;
  /** An ACL user with every right; the default user is then turned off (AUTH required). */
  user?: { name: string; password: string };
}

export async function startRedis(options: RedisServerOptions = {}): Promise<RedisServer> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'sandpool-redis-'));
  let child: ChildProcess | undefined;

  const args = [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--dir', dir,
    '--save', '',
    '--daemonize', 'no',
    '--loglevel', 'warning',
    // BullMQ asks for this; the default volatile-lru could evict queue keys under memory pressure.
    '--maxmemory-policy', 'noeviction',
    ...(options.appendOnly ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no']),
    ...(options.user
      ? ['--user', options.user.name, 'on', `>${options.user.password}`, '~*', '&*', '+@all', '--user', 'default', 'off']
      : []),
  ];

  async function start(): Promise<void> {
    const proc = spawn('redis-server', args, { stdio: ['ignore', 'ignore', 'inherit'] });
    child = proc;
    await waitForPing(port, proc);
  }

  async function signal(sig: NodeJS.Signals): Promise<void> {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill(sig);
    await exited;
  }

  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    start,
    stop: () => signal('SIGTERM'),
    kill: () => signal('SIGKILL'),
    async dispose() {
      await signal('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A queue name no other test uses. */
export function uniqueQueue(label: string): string {
  return `t-${label}-${randomUUID().slice(0, 8)}`;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function waitForPing(port: number, proc: ChildProcess): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (proc.exitCode !== null) throw new Error(`redis-server exited with code ${proc.exitCode}`);
    if (await ping(port)) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`redis-server did not answer on port ${port}`);
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: '127.0.0.1' });
    socket.setTimeout(500);
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => {
      socket.destroy();
      const reply = data.toString();
      // An ACL-protected server answers PING with NOAUTH: it is up all the same.
      resolve(reply.startsWith('+PONG') || reply.startsWith('-NOAUTH'));
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}
