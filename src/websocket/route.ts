import type { IncomingMessage } from 'node:http';
import { CODED_ERROR, NO_BODY } from '../http/answers.js';
import websocket from '@fastify/websocket';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../config/schema.js';
import type { DaemonContext } from '../context.js';
import type { ServerOf, WingsApp } from '../http/types.js';
import { WsConnection, type ConnectionOptions } from './connection.js';
import { MAX_SOCKETS_PER_SERVER } from './hub.js';

export const TOO_MANY_SOCKETS = 'Too many open websocket connections.';

/** Exact origin check (docs/protocol.md W16.1), against the live configuration. */
export function originAllowed(origin: string | undefined, cfg: Config): boolean {
  if (cfg.allowed_origins.includes('*')) return true;
  if (!origin) return false;
  return origin === cfg.remote || cfg.allowed_origins.includes(origin);
}

function envMs(name: string, fallback: number): number {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : fallback;
}

/** Timers of the socket; the environment variables exist for tests. */
export function connectionOptions(): ConnectionOptions {
  return {
    expiryCheckMs: envMs('WINGS_WS_EXPIRY_CHECK_MS', 30_000),
    authTimeoutMs: envMs('WINGS_WS_AUTH_TIMEOUT_MS', 30_000),
    writeDeadlineMs: envMs('WINGS_WS_WRITE_DEADLINE_MS', 10_000),
  };
}

const HARDENING_HEADERS = { 'Content-Security-Policy': "default-src 'self'", 'X-Frame-Options': 'DENY' } as const;

/**
 * `GET /api/servers/:server/ws`. Registered in the public scope (no node token)
 * that resolves `:server` (404 otherwise, see `serverOf`); then the connection cap, the origin
 * check, the upgrade.
 */
export async function websocketRoutes(app: WingsApp, ctx: DaemonContext, serverOf: ServerOf): Promise<void> {
  const log = ctx.logger.child({ component: 'websocket' });
  const requestIds = new WeakMap<IncomingMessage, string>();
  const opts = connectionOptions();

  await app.register(websocket, {
    options: {
      maxPayload: 4096,
      perMessageDeflate: { zlibDeflateOptions: { level: 5 } },
    },
    // ws closes the socket itself (1009 for oversized frames, 1002 for protocol errors).
    errorHandler: (err) => log.debug({ err }, 'websocket error'),
  });
  app.websocketServer.on('headers', (headers: string[], req: IncomingMessage) => {
    for (const [k, v] of Object.entries(HARDENING_HEADERS)) headers.push(`${k}: ${v}`);
    const id = requestIds.get(req);
    if (id) headers.push(`X-Request-Id: ${id}`);
  });

  app.route({
    method: 'GET',
    url: '/api/servers/:server/ws',
    exposeHeadRoute: false,
    schema: {
      description:
        'The console websocket (upgrade only). Authenticate inside the socket with `{"event":"auth","args":["<jwt>"]}`; no node token. ' +
        'Its events are in docs/protocol.md (W16–W21).',
      answers: { 101: NO_BODY, 400: CODED_ERROR, 403: NO_BODY, 404: CODED_ERROR },
    },
    preHandler: async (request: FastifyRequest, reply: FastifyReply) => {
      reply.headers(HARDENING_HEADERS);
      if (!request.ws) return;
      if (ctx.websockets.count(serverOf(request).uuid) >= MAX_SOCKETS_PER_SERVER) {
        return reply.code(400).send({ error: TOO_MANY_SOCKETS });
      }
      if (!originAllowed(request.headers.origin, ctx.config())) {
        log.debug({ origin: request.headers.origin }, 'websocket origin refused');
        return reply.code(403).header('Sec-WebSocket-Version', '13').type('text/plain').send('Forbidden');
      }
      requestIds.set(request.raw, request.id);
    },
    handler: async (_request: FastifyRequest, reply: FastifyReply) =>
      reply.code(400).header('Sec-WebSocket-Version', '13').type('text/plain').send('Bad Request'),
    wsHandler: (socket, request) => {
      const conn = new WsConnection(socket, serverOf(request), ctx, ctx.websockets, opts);
      conn.start();
    },
  });
}
