import type { DaemonContext } from '../context.js';
import type { WingsApp } from './types.js';

const ALLOW_HEADERS =
  'Accept, Accept-Encoding, Authorization, Cache-Control, Content-Type, Content-Length, Origin, X-Real-IP, X-CSRF-Token';

/**
 * Global, before any scope's authentication, as in the Go daemon: the request id and the CORS headers on
 * every response (401/403/404 included), and any OPTIONS request answered 204 right here.
 */
export function corsAndRequestId(app: WingsApp, ctx: DaemonContext): void {
  app.addHook('onRequest', async (request, reply) => {
    const cfg = ctx.config();
    reply.header('X-Request-Id', request.id);
    const origin = request.headers.origin;
    let allow = cfg.remote;
    if (origin && origin !== cfg.remote) {
      const match = cfg.allowed_origins.find((o) => o === origin || o === '*');
      if (match) allow = match;
    }
    reply.header('Access-Control-Allow-Origin', allow);
    reply.header('Access-Control-Allow-Credentials', 'true');
    reply.header('Access-Control-Allow-Methods', 'GET, POST, PATCH, PUT, DELETE, OPTIONS');
    reply.header('Access-Control-Allow-Headers', ALLOW_HEADERS);
    reply.header('Access-Control-Max-Age', '7200');
    if (cfg.allow_cors_private_network) reply.header('Access-Control-Allow-Private-Network', 'true');
    if (request.method === 'OPTIONS') return reply.code(204).send();
  });
}
