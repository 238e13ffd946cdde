import type { ServerRoutes } from '../../../../types.js';
import { installInBackground } from './install.js';

/** POST /api/servers/:server/reinstall */
export const reinstallRoutes: ServerRoutes = async (app, ctx, serverOf) => {
  const log = ctx.logger.child({ component: 'servers' });
  app.post('/api/servers/:server/reinstall', { schema: { description: 'Stop and reinstall.' } }, async (request, reply) => {
    installInBackground(serverOf(request), true, log);
    return reply.code(202).send();
  });
};
