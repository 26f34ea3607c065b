// The worker's HTTP side port: /metrics (Prometheus), /healthz (the process lives and its event
// loop answers), /readyz (it takes jobs: connected, pool up, not draining). Runs in the worker
// process, started by workers/main.ts.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SidePortHandlers {
  metrics(): Promise<string>;
  /** Why the worker is not ready, or undefined when it is. */
  notReadyReason(): string | undefined;
}

export interface SidePort {
  readonly port: number;
  close(): Promise<void>;
}

export async function startSidePort(port: number, handlers: SidePortHandlers, host = '0.0.0.0'): Promise<SidePort> {
  const server: Server = createServer((req, res) => {
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
        handlers.metrics().then(
          (text) => reply(200, text, 'text/plain; version=0.0.4; charset=utf-8'),
          (error: unknown) => reply(500, `metrics failed: ${(error as Error)?.message ?? error}\n`),
        );
        return;
      default:
        return reply(404, 'not found\n');
    }
  });
  // A scrape must never hold shutdown open.
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    // Start-up ends with this error: say that it is the side port, which one, and why, in plain words.
    const failed = (error: NodeJS.ErrnoException) =>
      reject(new Error(`side port ${host}:${port}: ${bindReason(error)}`, { cause: error }));
    server.once('error', failed);
    server.listen(port, host, () => {
      server.off('error', failed);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
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
