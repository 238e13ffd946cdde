import type { ServerRoutes } from '../../../../types.js';
import { NO_BODY, ONE_SERVER, OPAQUE_ERROR } from '../../../../answers.js';

/** POST /api/servers/:server/sync */
export const syncRoutes: ServerRoutes = async (app, _ctx, serverOf) => {
  app.post(
    '/api/servers/:server/sync',
    { schema: { description: 'Re-fetch the configuration from the Panel.', answers: { 204: NO_BODY, ...ONE_SERVER, 500: OPAQUE_ERROR } } },
    async (request, reply) => {
      await serverOf(request).sync();
      return reply.code(204).send();
    },
  );
};
