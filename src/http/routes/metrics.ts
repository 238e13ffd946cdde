import type { Routes } from '../types.js';

/** GET /metrics on the API (node token); the open listener of `metrics.port` is src/metrics/server.ts. */
export const metricsRoutes: Routes = async (app, ctx) => {
  app.get(
    '/metrics',
    { schema: { description: 'Prometheus metrics (text exposition format). Node token required.', hide: true } },
    async (_request, reply) => reply.type(ctx.metrics.contentType).send(await ctx.metrics.render()),
  );
};
