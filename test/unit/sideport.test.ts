// The worker's HTTP side port (workers/http.ts) against clients that connect and do not finish:
// connections past the bound are closed as they come, a request that trickles is dropped at its
// time bound, and scrapes are answered again once such clients are gone. A real server on loopback.
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startSidePort, type SidePort } from '../../workers/http.ts';

/** Bound that only detects a hang: each step here takes milliseconds, or the test's own bound. */
const HANG_MS = 5_000;

const sockets: Socket[] = [];
let side: SidePort | undefined;

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  await side?.close();
  side = undefined;
});

const handlers = { metrics: async () => 'sandpool_test_metric 1\n', notReadyReason: () => undefined };

/** An open TCP connection to the port; resolves once connected. */
function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => resolve(socket));
    socket.once('error', reject);
    // Read whatever the server says (a 408), so that its end reaches 'close'.
    socket.resume();
    sockets.push(socket);
  });
}

/** Resolves with how long after `since` the server closed the socket, or rejects past HANG_MS. */
function closedAfter(socket: Socket, since: number): Promise<number> {
  return new Promise((resolve, reject) => {
    if (socket.closed) return resolve(performance.now() - since);
    const timer = setTimeout(() => reject(new Error('the server kept the connection open')), HANG_MS);
    socket.once('error', () => undefined);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(performance.now() - since);
    });
  });
}

async function scrape(port: number): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(HANG_MS) });
  expect(response.status).toBe(200);
  return response.text();
}

describe('side port bounds', () => {
  it('a connection pipelining thousands of scrapes is closed past 16, with at most one render, and the port serves on', async () => {
    let renders = 0;
    const counting = {
      ...handlers,
      metrics: async () => {
        renders++;
        await new Promise((resolve) => setTimeout(resolve, 20));
        return 'sandpool_test_metric 1\n';
      },
    };
    side = await startSidePort(0, counting, '127.0.0.1');
    const socket = await open(side.port);
    let received = '';
    socket.setEncoding('utf8').on('data', (chunk: string) => (received += chunk));
    const closed = closedAfter(socket, performance.now());
    socket.write('GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(2000));
    // The first request past the bound ends the connection: no answer for each of the rest.
    await closed;
    expect(received.match(/HTTP\/1\.1 503/g)?.length ?? 0).toBe(0);
    expect(received.match(/HTTP\/1\.1 200/g)?.length ?? 0).toBeLessThanOrEqual(16);
    // At most one render for the requests that came together, not one per request.
    expect(renders).toBeLessThanOrEqual(1);
    // A scraper that asks one at a time on one connection is told to connect anew at the 16th.
    const { request } = await import('node:http');
    const agent = new (await import('node:http')).Agent({ keepAlive: true, maxSockets: 1 });
    const connections = new Set<unknown>();
    for (let i = 0; i < 20; i++) {
      await new Promise<void>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port: side?.port, path: '/metrics', agent }, (res) => {
          connections.add(res.socket);
          expect(res.statusCode).toBe(200);
          res.resume();
          res.on('end', () => resolve());
        });
        req.on('error', reject);
        req.end();
      });
    }
    agent.destroy();
    expect(connections.size).toBe(2);
    expect(await scrape(side.port)).toContain('sandpool_test_metric 1');
  });

  it('closes connections past maxConnections as they come, keeps those within it, and serves again once they go', async () => {
    side = await startSidePort(0, handlers, '127.0.0.1', { maxConnections: 4, requestTimeoutMs: 60_000 });
    const port = side.port;
    const held = [];
    for (let i = 0; i < 4; i++) held.push(await open(port));
    const extra = [];
    for (let i = 0; i < 3; i++) extra.push(await open(port));
    // Each connection past the bound is closed by the server, without a request being read.
    for (const socket of extra) await closedAfter(socket, performance.now());
    // The four within it stay open (a scraper's connection is not cut for others' sake).
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(held.every((socket) => !socket.closed)).toBe(true);

    for (const socket of held) socket.destroy();
    // The server counts them gone once it has seen them close: a scrape gets through again.
    let text: string | undefined;
    for (let i = 0; i < 50 && text === undefined; i++) {
      text = await scrape(port).catch(() => undefined);
      if (text === undefined) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(text).toContain('sandpool_test_metric 1');
  });

  it('an accept error once listening is reported and the port keeps serving', async () => {
    const errors: Error[] = [];
    side = await startSidePort(0, { ...handlers, onError: (error) => errors.push(error) }, '127.0.0.1');
    // What Node emits when accepting a connection fails (net.Server's onconnection with an errno).
    const acceptError = Object.assign(new Error('accept ENFILE'), { code: 'ENFILE', syscall: 'accept' });
    expect(() => side?.server.emit('error', acceptError)).not.toThrow();
    expect(errors).toEqual([acceptError]);
    expect(await scrape(side.port)).toContain('sandpool_test_metric 1');
  });

  it('drops a client that sends nothing, and one that trickles its headers, at requestTimeoutMs', { timeout: 20_000 }, async () => {
    side = await startSidePort(0, handlers, '127.0.0.1', { maxConnections: 8, requestTimeoutMs: 1_000 });
    const port = side.port;
    const start = performance.now();
    const silent = await open(port);
    const trickling = await open(port);
    trickling.write('GET /metrics HTTP/1.1\r\nHost: x\r\n');
    const drip = setInterval(() => trickling.writable && trickling.write('X-Slow: 1\r\n'), 200);
    try {
      const [silentMs, tricklingMs] = await Promise.all([closedAfter(silent, start), closedAfter(trickling, start)]);
      // Not before the bound; and within it plus Node's check interval (1 s here) and slack.
      for (const ms of [silentMs, tricklingMs]) {
        expect(ms).toBeGreaterThanOrEqual(900);
        expect(ms).toBeLessThan(HANG_MS);
      }
    } finally {
      clearInterval(drip);
    }
    expect(await scrape(port)).toContain('sandpool_test_metric 1');
  });
});
