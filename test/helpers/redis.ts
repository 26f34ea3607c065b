// Test helper, runs in the vitest process: starts a real redis-server on a free loopback port in its
// own temporary directory, and stops it by its pid. Never a mock: the queue tests need real Redis.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect as connectTls } from 'node:tls';
import { createServer, createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';

export interface RedisServer {
  port: number;
  /** redis:// or, with `tls`, rediss://. */
  url: string;
  dir: string;
  /** With `tls`: the server's self-signed certificate (PEM), to trust as a CA. */
  ca: string | undefined;
  /** SIGTERM (Redis writes its AOF and exits), waits for the exit. */
  stop(): Promise<void>;
  /** SIGKILL: no shutdown work at all. */
  kill(): Promise<void>;
  /** Starts it again on the same port and directory (AOF and all). */
  start(): Promise<void>;
  /** SIGSTOP: connections stay open, nothing is answered. */
  pause(): void;
  /** SIGCONT after pause(). */
  resume(): void;
  /** stop() and remove the directory. */
  dispose(): Promise<void>;
}

export interface RedisServerOptions {
  /** Append-only file with fsync on every write, so a restart loses nothing accepted. */
  appendOnly?: boolean;
  /** An ACL user with every right; the default user is then turned off (AUTH required). */
  user?: { name: string; password: string };
  /** TLS only (no plain port), with a self-signed certificate for 127.0.0.1 made by openssl. */
  tls?: boolean;
}

export async function startRedis(options: RedisServerOptions = {}): Promise<RedisServer> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'sandpool-redis-'));
  let child: ChildProcess | undefined;
  let ca: string | undefined;
  const tlsArgs: string[] = [];
  if (options.tls) {
    const cert = join(dir, 'cert.pem');
    const key = join(dir, 'key.pem');
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1',
      '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
    ], { stdio: 'ignore' });
    ca = readFileSync(cert, 'utf8');
    tlsArgs.push('--port', '0', '--tls-port', String(port), '--tls-cert-file', cert, '--tls-key-file', key, '--tls-auth-clients', 'no');
  }

  const args = [
    ...(options.tls ? tlsArgs : ['--port', String(port)]),
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
    await waitForPing(port, proc, ca);
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
    url: `${options.tls ? 'rediss' : 'redis'}://127.0.0.1:${port}`,
    dir,
    ca,
    start,
    stop: () => signal('SIGTERM'),
    pause: () => void child?.kill('SIGSTOP'),
    resume: () => void child?.kill('SIGCONT'),
    kill: () => signal('SIGKILL'),
    async dispose() {
      child?.kill('SIGCONT');
      await signal('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A queue name no other test uses. */
export function uniqueQueue(label: string): string {
  return `t-${label}-${randomUUID().slice(0, 8)}`;
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export async function freePort(): Promise<number> {
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

async function waitForPing(port: number, proc: ChildProcess, ca: string | undefined): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (proc.exitCode !== null) throw new Error(`redis-server exited with code ${proc.exitCode}`);
    if (await ping(port, ca)) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`redis-server did not answer on port ${port}`);
}

function ping(port: number, ca: string | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = ca
      ? connectTls({ port, host: '127.0.0.1', ca }, () => socket.write('PING\r\n'))
      : createConnection({ port, host: '127.0.0.1' }, () => socket.write('PING\r\n'));
    socket.setTimeout(500);
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
