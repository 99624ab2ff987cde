import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Readiness } from './readiness.js';

export interface OpsServerOptions {
  /** 0 picks a free port. */
  port: number;
  /** Default 127.0.0.1; 0.0.0.0 in containers. */
  host?: string;
  registry: Registry;
  readiness: Readiness;
  /** Extra JSON routes (GET only), e.g. a console's API. */
  routes?: Record<string, () => Promise<unknown> | unknown>;
}

export interface OpsServer {
  url: string;
  port: number;
  server: Server;
  close(): Promise<void>;
}

/**
 * `/healthz` (the process answers), `/readyz` (every readiness check passes; 503 with
 * the reasons otherwise) and `/metrics` (Prometheus text) for one service.
 */
export async function startOpsServer(opts: OpsServerOptions): Promise<OpsServer> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.method !== 'GET') return json(405, { error: 'GET only' });
    if (path === '/healthz') return json(200, { status: 'ok' });
    if (path === '/readyz') {
      const report = opts.readiness.report();
      return json(report.ready ? 200 : 503, report);
    }
    if (path === '/metrics') {
      opts.registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': opts.registry.contentType });
          res.end(text);
        },
        (err: Error) => json(500, { error: err.message }),
      );
      return;
    }
    const route = opts.routes?.[path];
    if (route) {
      Promise.resolve()
        .then(route)
        .then(
          (body) => json(200, body),
          (err: Error) => json(500, { error: err.message }),
        );
      return;
    }
    json(404, { error: `no route ${path}; try /healthz, /readyz or /metrics` });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host ?? '127.0.0.1', () => resolve());
  });
  const { port, address } = server.address() as AddressInfo;
  return {
    url: `http://${address.includes(':') ? `[${address}]` : address}:${port}`,
    port,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
