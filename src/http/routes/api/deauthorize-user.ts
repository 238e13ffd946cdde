import { z } from 'zod';
import { BODY_422, NODE_TOKEN, NO_BODY } from '../../answers.js';
import { ANSWER_422 } from '../../errors.js';
import type { Routes } from '../../types.js';

/** POST /api/deauthorize-user */
export const deauthorizeUserRoutes: Routes = async (app, ctx) => {
  app.post(
    '/api/deauthorize-user',
    {
      schema: {
        description: 'Revoke a user\'s websocket tokens on the listed servers (all when empty) and close their sockets.',
        body: z.object({ user: z.string(), servers: z.array(z.string()).nullish() }),
        answers: { 204: NO_BODY, ...NODE_TOKEN, ...BODY_422 },
      },
      config: ANSWER_422,
    },
    async (request, reply) => {
      const { user, servers } = request.body;
      const targets = servers && servers.length > 0 ? servers : ctx.servers.list().map((s) => s.uuid);
      for (const uuid of targets) {
        if (ctx.servers.has(uuid)) ctx.websockets.deauthorizeUser(uuid, user);
      }
      return reply.code(204).send();
    },
  );
};
