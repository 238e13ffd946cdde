import type { Logger } from 'pino';
import { CODED_ERROR, NO_BODY, ONE_SERVER } from '../../../../answers.js';
import { WingsError } from '../../../../../errors.js';
import type { Server } from '../../../../../server/server.js';
import { refuseWhileTransferring } from '../../../../server-scope.js';
import type { ServerRoutes } from '../../../../types.js';

/**
 * The install flow shared with /reinstall, as the Go daemon runs it: refuse while transferring (and,
 * for a reinstall, while a power action holds the lock), then in the background stop (reinstall),
 * sync with the Panel and run the install script.
 */
export function installInBackground(server: Server, reinstall: boolean, log: Logger): void {
  refuseWhileTransferring(server);
  if (reinstall && server.powerLocked) {
    throw new WingsError('POWER_BUSY', 'Cannot execute server reinstall event while another power action is running.');
  }
  void (async () => {
    try {
      if (reinstall && server.state !== 'offline') await server.environment.waitForStop(10_000, true);
      await server.sync();
      await server.install(reinstall);
    } catch (err) {
      log.error({ server: server.uuid, err }, 'install failed');
    }
  })();
}

/** POST /api/servers/:server/install */
export const installRoutes: ServerRoutes = async (app, ctx, serverOf) => {
  const log = ctx.logger.child({ component: 'servers' });
  app.post('/api/servers/:server/install', { schema: { description: 'Run the install script.', answers: { 202: NO_BODY, ...ONE_SERVER, 409: CODED_ERROR } } }, async (request, reply) => {
    installInBackground(serverOf(request), false, log);
    return reply.code(202).send();
  });
};
