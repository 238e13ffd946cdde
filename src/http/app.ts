import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import type { ServerOptions } from 'node:https';
import Fastify, { LogController, type FastifyBaseLogger } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { DaemonContext } from '../context.js';
import { WingsError } from '../errors.js';
import { countRequests } from '../metrics/server.js';
import { corsAndRequestId } from './cors.js';
import { sendError } from './errors.js';
import { registerOpenapi } from './openapi.js';
import { registerRoutes } from './routes/index.js';
import type { WingsApp } from './types.js';

/** api.ssl: HTTPS with the configured PEM files, TLS 1.2 to 1.3; null for plain HTTP. */
function tlsOptions(ctx: DaemonContext): ServerOptions | null {
  const ssl = ctx.config().api.ssl;
  if (!ssl.enabled) return null;
  return { cert: fs.readFileSync(ssl.cert), key: fs.readFileSync(ssl.key), minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3' };
}

export async function buildApp(ctx: DaemonContext): Promise<WingsApp> {
  const loggerInstance: FastifyBaseLogger = ctx.logger.child({ component: 'http' });
  const app = Fastify({
    https: tlsOptions(ctx),
    loggerInstance,
    // Requests are logged when the daemon logs at debug: `debug: true` or `--debug` (which is not in
    // the configuration), so the logger's level decides, not the config key.
    logController: new LogController({ disableRequestLogging: !ctx.logger.isLevelEnabled('debug') }),
    genReqId: () => randomUUID(),
    requestIdHeader: false,
    routerOptions: { ignoreTrailingSlash: true },
    bodyLimit: 8 * 1024 * 1024,
    // Slow-loris protection comes from headersTimeout; bodies may stream for hours (transfers).
    requestTimeout: 0,
  }).withTypeProvider<ZodTypeProvider>();

  corsAndRequestId(app, ctx);

  // An empty body is "no body" (UNPARSABLE where one is required); anything else must be JSON.
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    const text = String(body).trim();
    if (text === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch (err) {
      done(new WingsError('BAD_BODY', 'the body is not valid JSON', { cause: err }), undefined);
    }
  });

  app.setErrorHandler((err, request, reply) => sendError(err, request, reply));
  // On the root, before the scopes, so that it counts every route.
  countRequests(app, ctx.metrics);
  await registerOpenapi(app);
  await registerRoutes(app, ctx);
  return app;
}
