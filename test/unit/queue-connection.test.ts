// The Redis connections sandpool makes (src/queue.ts): a socket error after the first never throws
// out of the event loop. ioredis listens for a socket's first error only; a TLS handshake that fails
// can emit a second, which ended the whole process (1 in 40 tries of a rediss:// URL to a server
// with a self-signed certificate; test/integration/queue.test.ts makes such tries).
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { expect, test } from 'vitest';
import { bullConnection, createRedis } from '../../src/queue.ts';

test("a connection's socket that errs twice does not throw the second error", async () => {
  // Accepts and never answers: ioredis connects its socket, then waits for a reply that never comes.
  const server = createServer(() => {});
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const redis = createRedis({ host: '127.0.0.1', port }, { retryStrategy: () => null, enableOfflineQueue: false });
  const heard: string[] = [];
  redis.on('error', (error: Error) => heard.push(error.message));
  try {
    await once(redis, 'connect');
    const stream = redis.stream;
    stream.emit('error', new Error('first'));
    expect(() => stream.emit('error', new Error('second'))).not.toThrow();
    // ioredis still heard the first, as it would have without the guard.
    await new Promise((resolve) => setImmediate(resolve));
    expect(heard).toContain('first');
  } finally {
    redis.disconnect();
    server.close();
  }
});

test("BullMQ's connections get the same guard; options that choose their own connector or Sentinel keep theirs", () => {
  expect(bullConnection('redis://127.0.0.1:6379').Connector).toBeDefined();
  expect(bullConnection({ host: '127.0.0.1', port: 6379 }).Connector).toBeDefined();
  expect(bullConnection({ sentinels: [{ host: '127.0.0.1', port: 26379 }], name: 'primary' }).Connector).toBeUndefined();
});
