// The worker's HTTP side port: /metrics (Prometheus), /healthz (the process lives and its event
// loop answers), /readyz (it takes jobs: connected, pool up, not draining). Runs in the worker
// process, started by workers/main.ts.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SidePortHandlers {
  metrics(): Promise<string>;
  /** Why the worker is not ready, or undefined when it is. */
  notReadyReason(): string | undefined;
  /**
   * An error of the listening server once it listens (accepting a connection failed: out of
   * memory, of file descriptors past libuv's reserve, a firewall's EPERM). The port keeps listening;
   * without a listener such an error would end the worker with every job it runs.
   */
  onError?(error: Error): void;
}

export interface SidePort {
  readonly port: number;
  /** The HTTP server itself (tests reach its events through it). */
  readonly server: Server;
  close(): Promise<void>;
}

/** Bounds on the side port's clients: a scraper needs one connection and answers within seconds. */
export interface SidePortBounds {
  /** Connections held at once; more are closed as they come. @default 32 */
  maxConnections?: number;
  /** A request's headers, and the whole request, must arrive within this. @default 10 000 */
  requestTimeoutMs?: number;
}

const DEFAULT_MAX_CONNECTIONS = 32;
const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
/**
 * Requests one connection may make; past it the connection is closed. A scraper makes one per
 * scrape and reconnects now and then; a client pipelining thousands of requests in one packet got
 * a render (1.4 ms, 15 KB) each, all at once, with nothing written yet to slow it down: the worker
 * stalled for seconds and grew past a GiB, and a job it ran lost its lock.
 */
const MAX_REQUESTS_PER_SOCKET = 16;

/**
 * Starts the side port. It listens on all interfaces by default, so anyone who can reach it may
 * connect: connections past `maxConnections` are closed at once and a request that is not whole
 * within `requestTimeoutMs` is dropped, so that idle or trickling clients cannot hold the worker's
 * file descriptors (Redis needs them) or its memory.
 */
export async function startSidePort(
  port: number,
  handlers: SidePortHandlers,
  host = '0.0.0.0',
  bounds: SidePortBounds = {},
): Promise<SidePort> {
  const requestTimeoutMs = bounds.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const serverOptions = {
    headersTimeout: requestTimeoutMs,
    requestTimeout: requestTimeoutMs,
    // How often Node checks both timeouts (30 s by default): a trickling client would outlive a
    // short bound by that much.
    connectionsCheckingInterval: Math.min(1_000, requestTimeoutMs),
  };
  // Requests that arrive while a render runs share it: however many come at once, one render.
  let rendering: Promise<string> | undefined;
  const renderMetrics = () => {
    rendering ??= handlers.metrics().finally(() => {
      rendering = undefined;
    });
    return rendering;
  };
  const server: Server = createServer(serverOptions, (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const reply = (status: number, body: string, type = 'text/plain; charset=utf-8') => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return reply(405, 'method not allowed\n');
    switch (path) {
      case '/healthz':
        return reply(200, 'ok\n');
      case '/readyz': {
        const reason = handlers.notReadyReason();
        return reason === undefined ? reply(200, 'ready\n') : reply(503, `not ready: ${reason}\n`);
      }
      case '/metrics':
        renderMetrics().then(
          (text) => {
            // The client went while it rendered: nothing to write to.
            if (!res.destroyed && !req.socket.destroyed) reply(200, text, 'text/plain; version=0.0.4; charset=utf-8');
          },
          (error: unknown) => reply(500, `metrics failed: ${(error as Error)?.message ?? error}\n`),
        );
        return;
      default:
        return reply(404, 'not found\n');
    }
  });
  // A scrape must never hold shutdown open.
  server.keepAliveTimeout = 5_000;
  server.maxConnections = bounds.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
  server.maxRequestsPerSocket = MAX_REQUESTS_PER_SOCKET;
  // Node answers each request past the bound with its own 503 and keeps the connection: a client
  // pipelining millions got millions of 503s, the worker's loop stalled ~1 s and it grew 200 MB.
  // The first one past the bound ends the connection at once, its requests still being answered
  // with it: only a client that pipelines past the bound meets it (a scraper sees `Connection:
  // close` on its 16th answer and connects anew), and waiting for those answers let Node parse and
  // answer the rest of what it had read, ~1,900 requests per 64 KiB.
  server.on('dropRequest', (_request, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    // Start-up ends with this error: say that it is the side port, which one, and why, in plain words.
    const failed = (error: NodeJS.ErrnoException) =>
      reject(new Error(`side port ${host}:${port}: ${bindReason(error)}`, { cause: error }));
    server.once('error', failed);
    server.listen(port, host, () => {
      server.off('error', failed);
      server.on('error', (error) => handlers.onError?.(error));
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function bindReason(error: NodeJS.ErrnoException): string {
  switch (error.code) {
    case 'EADDRINUSE':
      return 'already in use (another process listens on it)';
    case 'EACCES':
      return 'permission denied (ports below 1024 need privileges)';
    case 'EADDRNOTAVAIL':
      return 'address not available on this host';
    default:
      return error.message;
  }
}
