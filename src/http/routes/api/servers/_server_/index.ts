import type { ServerRoutes } from '../../../../types.js';
import { z } from 'zod';
import { NO_BODY, ONE_SERVER, OPAQUE_ERROR } from '../../../../answers.js';

/** GET /api/servers/:server, DELETE /api/servers/:server. */
export const serverRoutes: ServerRoutes = async (app, ctx, serverOf) => {
  app.get('/api/servers/:server', { schema: { description: 'One server.', answers: { 200: z.looseObject({}), ...ONE_SERVER } } }, async (request) => serverOf(request).apiView());

  app.delete(
    '/api/servers/:server',
    {
      schema: {
        description: 'Delete a server, its instance and its files; cancels its transfer first.',
        answers: { 204: NO_BODY, ...ONE_SERVER, 500: OPAQUE_ERROR },
      },
    },
    async (request, reply) => {
      const server = serverOf(request);
      server.deleting = true;
      await ctx.transfers.beforeServerDelete(server);
      if (ctx.servers.get(server.uuid) === server) {
        await server.destroy();
        ctx.servers.remove(server.uuid);
        ctx.websockets.closeServer(server.uuid);
      }
      return reply.code(204).send();
    },
  );
};
