import type { ServerRoutes } from '../../../../types.js';

/** POST /api/servers/:server/sync */
export const syncRoutes: ServerRoutes = async (app, _ctx, serverOf) => {
  app.post(
    '/api/servers/:server/sync',
    { schema: { description: 'Re-fetch the configuration from the Panel.' } },
    async (request, reply) => {
      await serverOf(request).sync();
      return reply.code(204).send();
    },
  );
};
