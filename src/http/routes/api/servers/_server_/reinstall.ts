import type { ServerRoutes } from '../../../../types.js';
import { CODED_ERROR, NO_BODY, ONE_SERVER } from '../../../../answers.js';
import { installInBackground } from './install.js';

/** POST /api/servers/:server/reinstall */
export const reinstallRoutes: ServerRoutes = async (app, ctx, serverOf) => {
  const log = ctx.logger.child({ component: 'servers' });
  app.post('/api/servers/:server/reinstall', { schema: { description: 'Stop and reinstall.', answers: { 202: NO_BODY, ...ONE_SERVER, 409: CODED_ERROR } } }, async (request, reply) => {
    installInBackground(serverOf(request), true, log);
    return reply.code(202).send();
  });
};
