import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { checkNodeToken } from '../auth/node-token.js';
import type { DaemonContext } from '../context.js';
import type { Server } from '../server/server.js';
import { AUTH_FORBIDDEN, AUTH_MISSING, NOT_FOUND, sendError } from './errors.js';
import { systemRoutes } from './routes/system.js';
import { serverRoutes } from './routes/servers.js';
import { serverTransferRoutes, transferRoutes } from './routes/transfers.js';
import { websocketRoutes } from '../websocket/route.js';
import { openapiRoutes, registerOpenapi } from './openapi.js';
import { metricsRoutes } from '../metrics/server.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The server named by `:server`, set by the lookup hook of server routes. */
    wingsServer: Server;
  }
}

/** Routes that do not take the node token (daemon.md §4.2). */
function isPublic(method: string, path: string): boolean {
  if (method === 'GET' && /^\/api\/servers\/[^/]+\/ws\/?$/.test(path)) return true;
  if (method === 'POST' && /^\/api\/transfers\/?$/.test(path)) return true;
  if (path.startsWith('/download/') || path === '/upload/file') return true;
  return false;
}

export async function buildApp(ctx: DaemonContext): Promise<FastifyInstance> {
  const ssl = ctx.config().api.ssl;
  // api.ssl (daemon.md §1.3): HTTPS with the configured PEM files, TLS 1.2 to 1.3, h2 then http/1.1.
  const https = ssl.enabled
    ? {
        cert: fs.readFileSync(ssl.cert),
        key: fs.readFileSync(ssl.key),
        minVersion: 'TLSv1.2' as const,
        maxVersion: 'TLSv1.3' as const,
      }
    : null;
  const app = Fastify({
    ...(https ? { https } : {}),
    loggerInstance: ctx.logger.child({ component: 'http' }),
    disableRequestLogging: !ctx.config().debug,
    genReqId: () => randomUUID(),
    requestIdHeader: false,
    ignoreTrailingSlash: true,
    bodyLimit: 8 * 1024 * 1024,
    // Slow-loris protection comes from headersTimeout; bodies may stream for hours (transfers).
    requestTimeout: 0,
  }) as unknown as FastifyInstance;
  app.decorateRequest('wingsServer', null as unknown as Server);

  // Request id, CORS (daemon.md §4.1) on every response.
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
    reply.header(
      'Access-Control-Allow-Headers',
      'Accept, Accept-Encoding, Authorization, Cache-Control, Content-Type, Content-Length, Origin, X-Real-IP, X-CSRF-Token',
    );
    reply.header('Access-Control-Max-Age', '7200');
    if (cfg.allow_cors_private_network) reply.header('Access-Control-Allow-Private-Network', 'true');
    if (request.method === 'OPTIONS') return reply.code(204).send();
    const path = request.url.split('?')[0];
    if (isPublic(request.method, path)) return;
    const auth = checkNodeToken(request.headers.authorization, cfg.token);
    if (auth === 'missing') {
      return reply.code(401).header('WWW-Authenticate', 'Bearer').send({ error: AUTH_MISSING });
    }
    if (auth === 'forbidden') return reply.code(403).send({ error: AUTH_FORBIDDEN });
  });

  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    const text = (body as string).trim();
    if (text === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch {
      const err = new Error('invalid JSON') as Error & { statusCode: number; code: string };
      err.statusCode = 400;
      err.code = 'FST_ERR_CTP_INVALID_JSON';
      done(err, undefined);
    }
  });

  app.setErrorHandler((err, request, reply) => sendError(err, request, reply));
  app.setNotFoundHandler((_request, reply) => reply.code(404).type('text/plain').send('404 page not found'));
  // Before the route plugins, so that its onResponse hook counts every route.
  await metricsRoutes(app, ctx.metrics);

  await registerOpenapi(app);
  await app.register(async (api) => {
    await systemRoutes(api, ctx);
    await transferRoutes(api, ctx);
    await api.register(async (scoped) => {
      scoped.addHook('preHandler', async (request: FastifyRequest<{ Params: { server?: string } }>, reply) => {
        const uuid = request.params.server;
        if (uuid === undefined) return;
        const server = ctx.servers.get(uuid);
        if (!server) return reply.code(404).send({ error: NOT_FOUND });
        request.wingsServer = server;
      });
      await serverRoutes(scoped, ctx);
      await serverTransferRoutes(scoped, ctx);
      await websocketRoutes(scoped, ctx);
    });
  });
  await openapiRoutes(app);
  return app;
}
