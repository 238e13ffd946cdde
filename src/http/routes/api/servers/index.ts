import { z } from 'zod';
import { BODY_422, CODED_ERROR, NODE_TOKEN, NO_BODY, OPAQUE_ERROR } from '../../../answers.js';
import { WingsError } from '../../../../errors.js';
import { PanelError } from '../../../../panel/client.js';
import { parseServerConfiguration } from '../../../../server/configuration.js';
import { isUuidV4 } from '../../../../uuid.js';
import type { DaemonContext } from '../../../../context.js';
import { ANSWER_422, VALIDATION_FAILED } from '../../../errors.js';
import type { Routes } from '../../../types.js';

const DUPLICATE = 'A server with this identifier already exists on this instance.';

/**
 * The server's configuration from the Panel. A Panel refusal keeps its meaning: the answer says
 * what the Panel said (status and message) instead of the Go daemon's opaque 500.
 */
async function configurationFromPanel(ctx: DaemonContext, uuid: string): Promise<unknown> {
  try {
    return await ctx.panel.getServerConfiguration(uuid);
  } catch (err) {
    if (!(err instanceof PanelError)) throw err;
    const code = err.status >= 400 && err.status < 500 ? 'PANEL_REFUSED' : 'PANEL';
    throw new WingsError(code, `The Panel did not provide the server's configuration: ${err.message}`, { cause: err });
  }
}

/** GET /api/servers, POST /api/servers. */
export const serversRoutes: Routes = async (app, ctx) => {
  const log = ctx.logger.child({ component: 'servers' });

  app.get('/api/servers', { schema: { description: 'Every server of this node.', answers: { 200: z.array(z.looseObject({})), ...NODE_TOKEN } } }, async () =>
    ctx.servers.list().map((s) => s.apiView()),
  );

  app.post(
    '/api/servers',
    {
      schema: {
        description:
          'Create a server from its Panel configuration; installs it in the background. ' +
          'When the Panel refuses the configuration: 502 {error, code: "PANEL"} with what the Panel answered.',
        body: z.object({ uuid: z.string(), start_on_completion: z.boolean().optional() }),
        answers: { 202: NO_BODY, ...NODE_TOKEN, ...BODY_422, 409: CODED_ERROR, 500: OPAQUE_ERROR, 502: CODED_ERROR },
      },
      config: ANSWER_422,
    },
    async (request, reply) => {
      const { uuid, start_on_completion } = request.body;
      if (!isUuidV4(uuid)) throw new WingsError('VALIDATION', VALIDATION_FAILED);
      const exists = () => ctx.servers.has(uuid) || ctx.transfers.incoming(uuid) !== undefined;
      if (exists()) throw new WingsError('SERVER_DUPLICATE', DUPLICATE);
      const raw = await configurationFromPanel(ctx, uuid);
      if (exists()) throw new WingsError('SERVER_DUPLICATE', DUPLICATE);
      const server = ctx.servers.instantiate(parseServerConfiguration(raw, ctx.config().system.crash_detection.enabled));
      ctx.servers.add(server);
      log.info({ server: server.uuid, start_on_completion: start_on_completion === true }, 'server created');
      void (async () => {
        try {
          await server.environment.create();
          await server.install(false);
          if (start_on_completion) await server.handlePowerAction('start', 30, 'start_on_completion');
        } catch (err) {
          log.error({ server: server.uuid, err }, 'failed to finish creating server');
        }
      })();
      return reply.code(202).send();
    },
  );
};
