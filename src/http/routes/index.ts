import type { DaemonContext } from '../../context.js';
import { websocketRoutes } from '../../websocket/route.js';
import { nodeTokenScope, publicScope, signedUrlScope, transferTokenScope } from '../scopes.js';
import { serverScope } from '../server-scope.js';
import type { WingsApp } from '../types.js';
import { deauthorizeUserRoutes } from './api/deauthorize-user.js';
import { serversRoutes } from './api/servers/index.js';
import { commandsRoutes } from './api/servers/_server_/commands.js';
import { serverRoutes } from './api/servers/_server_/index.js';
import { installRoutes } from './api/servers/_server_/install.js';
import { logsRoutes } from './api/servers/_server_/logs.js';
import { powerRoutes } from './api/servers/_server_/power.js';
import { reinstallRoutes } from './api/servers/_server_/reinstall.js';
import { syncRoutes } from './api/servers/_server_/sync.js';
import { serverTransferRoutes } from './api/servers/_server_/transfer.js';
import { wsDenyRoutes } from './api/servers/_server_/ws/deny.js';
import { systemRoutes } from './api/system.js';
import { receiveTransferRoutes, transfersRoutes } from './api/transfers.js';
import { updateRoutes } from './api/update.js';
import { metricsRoutes } from './metrics.js';
import { openapiRoutes } from './openapi.js';

/**
 * Every route of the API, by how it authenticates (scopes.ts). The files under routes/ mirror the
 * URL tree (`_server_` stands for `:server`); the routes under /api/servers/:server get their server
 * from the scope that resolves it (server-scope.ts).
 */
export async function registerRoutes(app: WingsApp, ctx: DaemonContext): Promise<void> {
  await app.register(
    nodeTokenScope(ctx, async (api) => {
      await systemRoutes(api, ctx);
      await updateRoutes(api, ctx);
      await deauthorizeUserRoutes(api, ctx);
      await transfersRoutes(api, ctx);
      await serversRoutes(api, ctx);
      await api.register(async (one) => {
        const serverOf = serverScope(one, ctx);
        for (const routes of [
          serverRoutes,
          logsRoutes,
          powerRoutes,
          commandsRoutes,
          installRoutes,
          reinstallRoutes,
          syncRoutes,
          serverTransferRoutes,
          wsDenyRoutes,
        ]) {
          await routes(one, ctx, serverOf);
        }
      });
      await metricsRoutes(api, ctx);
      await openapiRoutes(api, ctx);
    }),
  );
  await app.register(transferTokenScope((scope) => receiveTransferRoutes(scope, ctx)));
  // GET /download/backup, GET /download/file, POST /upload/file go here.
  await app.register(signedUrlScope(async () => {}));
  await app.register(
    publicScope(async (scope) => {
      // GET /api/servers/:server/ws: the server must exist; the token comes inside the socket.
      await websocketRoutes(scope, ctx, serverScope(scope, ctx));
    }),
  );
}
