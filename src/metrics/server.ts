import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Metrics } from './metrics.js';

/**
 * The `onResponse` hook that counts the API's requests by route pattern; on the root instance, so
 * that it counts every scope's routes and the unknown ones. (`GET /metrics` on the API is a route
 * of the node-token scope: src/http/routes/metrics.ts.)
 */
export function countRequests(app: FastifyInstance, metrics: Metrics): void {
  app.addHook('onResponse', async (request, reply) => {
    // The route pattern (e.g. /api/servers/:server/power), never the raw URL: bounded label values.
    const route = request.routeOptions?.url;
    metrics.httpRequest(request.method, route, reply.statusCode);
  });
}

/** The open metrics listener (`metrics.port`, `metrics.host`): only `GET /metrics`, no auth. */
export class MetricsServer {
  private server: http.Server | undefined;

  constructor(private readonly metrics: Metrics) {}

  async listen(host: string, port: number): Promise<string> {
    const server = http.createServer((req, res) => {
      const path = (req.url ?? '').split('?')[0];
      if (req.method !== 'GET' || path !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('404 page not found');
        return;
      }
      this.metrics.render().then(
        (text) => res.writeHead(200, { 'content-type': this.metrics.contentType }).end(text),
        (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(String(err)),
      );
    });
    server.keepAliveTimeout = 5000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    const addr = server.address() as AddressInfo;
    return `http://${addr.address.includes(':') ? `[${addr.address}]` : addr.address}:${addr.port}`;
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
