import { z } from 'zod';
import { JSON_BODY, NO_BODY, ONE_SERVER } from '../../../../../answers.js';
import type { ServerRoutes } from '../../../../../types.js';

/** POST /api/servers/:server/ws/deny */
export const wsDenyRoutes: ServerRoutes = async (app, ctx) => {
  app.post(
    '/api/servers/:server/ws/deny',
    { schema: { description: 'Deny-list websocket token ids.', body: z.object({ jtis: z.array(z.string()) }),
      answers: { 204: NO_BODY, ...ONE_SERVER, ...JSON_BODY } } },
    async (request, reply) => {
      ctx.websockets.denyJtis(request.body.jtis);
      return reply.code(204).send();
    },
  );
};
