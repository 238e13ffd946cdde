import { z } from 'zod';
import { CODED_ERROR, JSON_BODY, NO_BODY, ONE_SERVER } from '../../../../answers.js';
import { WingsError } from '../../../../../errors.js';
import { refuseWhileTransferring } from '../../../../server-scope.js';
import type { ServerRoutes } from '../../../../types.js';

/** POST /api/servers/:server/commands */
export const commandsRoutes: ServerRoutes = async (app, ctx, serverOf) => {
  const log = ctx.logger.child({ component: 'servers' });
  app.post(
    '/api/servers/:server/commands',
    {
      schema: {
        description: 'Write console commands to the running server.',
        body: z.object({ commands: z.array(z.string()) }),
        answers: { 204: NO_BODY, ...ONE_SERVER, ...JSON_BODY, 409: CODED_ERROR, 502: CODED_ERROR },
      },
    },
    async (request, reply) => {
      const server = serverOf(request);
      refuseWhileTransferring(server);
      if (!(await server.environment.isRunning())) {
        throw new WingsError('SERVER_STOPPED', 'Cannot send commands to a stopped server instance.');
      }
      for (const command of request.body.commands) {
        await server.sendCommand(command).catch((err) => log.warn({ server: server.uuid, err }, 'command failed'));
      }
      return reply.code(204).send();
    },
  );
};
