import { z } from 'zod';
import { ANY_ERROR, CODED_ERROR, NO_BODY, ONE_SERVER } from '../../../../answers.js';
import { WingsError, isWingsError } from '../../../../../errors.js';
import { POWER_ACTIONS, type PowerAction } from '../../../../../server/server.js';
import { refuseWhileTransferring } from '../../../../server-scope.js';
import type { ServerRoutes } from '../../../../types.js';

const BAD_ACTION = 'The power action provided was not valid, should be one of "stop", "start", "restart", "kill"';

function isPowerAction(action: string): action is PowerAction {
  return (POWER_ACTIONS as readonly string[]).includes(action);
}

/** POST /api/servers/:server/power */
export const powerRoutes: ServerRoutes = async (app, ctx, serverOf) => {
  const log = ctx.logger.child({ component: 'servers' });
  app.post(
    '/api/servers/:server/power',
    {
      schema: {
        description: 'Start, stop, restart or kill; answers 202 at once and runs in the background.',
        body: z.object({ action: z.string(), wait_seconds: z.number().int().optional() }),
        // The document names the actions; the handler checks them, so a bad one keeps Go's 422 body.
        documentedBody: z.object({ action: z.enum(POWER_ACTIONS), wait_seconds: z.number().int().optional() }),
        answers: { 202: NO_BODY, ...ONE_SERVER, 400: ANY_ERROR, 409: CODED_ERROR, 422: CODED_ERROR },
      },
    },
    async (request, reply) => {
      const server = serverOf(request);
      const { action } = request.body;
      if (!isPowerAction(action)) throw new WingsError('VALIDATION', BAD_ACTION);
      refuseWhileTransferring(server);
      if ((action === 'start' || action === 'restart') && server.isSuspended) {
        throw new WingsError('SERVER_SUSPENDED', 'Cannot start or restart a suspended server.');
      }
      // As in Go: < 0 or > 300 waits 30 s; 0 or absent tries the lock once (the Panel sends none).
      let wait = request.body.wait_seconds ?? 0;
      if (wait < 0 || wait > 300) wait = 30;
      void server.handlePowerAction(action, wait, 'http api').catch((err) => {
        if (isWingsError(err, 'SERVER_RUNNING') && action === 'start') return;
        log.warn({ server: server.uuid, action, err }, 'power action failed');
      });
      return reply.code(202).send();
    },
  );
};
