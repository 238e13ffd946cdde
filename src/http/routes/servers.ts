import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { DaemonContext } from '../../context.js';
import { errorMessage } from '../../errors.js';
import { parseServerConfiguration } from '../../server/configuration.js';
import { POWER_ACTIONS, ServerError, type PowerAction, type Server } from '../../server/server.js';
import { httpError } from '../errors.js';
import { isUuidV4 } from '../../uuid.js';

export const TRANSFERRING = 'Server is currently being transferred.';
const serverParams = z.object({ server: z.string() });

/** D7: while a server is transferring, mutating operations answer 409. */
export function refuseWhileTransferring(server: Server): void {
  if (server.transferring) throw httpError('SERVER_TRANSFERRING', TRANSFERRING);
}

export async function serverRoutes(app: FastifyInstance, ctx: DaemonContext): Promise<void> {
  const log = ctx.logger.child({ component: 'servers' });

  app.get('/api/servers', { schema: { description: 'Every server of this node.' } }, async () =>
    ctx.servers.list().map((s) => s.apiView()),
  );

  app.post(
    '/api/servers',
    {
      schema: {
        description: 'Create a server from its Panel configuration; installs it in the background.',
        body: z.object({ uuid: z.string(), start_on_completion: z.boolean().optional() }),
      },
      config: { validationError: { status: 422, error: 'The data provided in the request could not be validated.' } },
    },
    async (request, reply) => {
      const body = request.body as { uuid: string; start_on_completion?: boolean };
      if (!isUuidV4(body.uuid)) throw httpError('VALIDATION', 'The data provided in the request could not be validated.');
      const exists = () =>
        ctx.servers.has(body.uuid) || ctx.transfers.incoming(body.uuid) !== undefined;
      if (exists()) throw httpError('SERVER_DUPLICATE', 'A server with this identifier already exists on this instance.');
      const raw = await ctx.panel.getServerConfiguration(body.uuid);
      if (exists()) throw httpError('SERVER_DUPLICATE', 'A server with this identifier already exists on this instance.');
      const server = ctx.servers.instantiate(parseServerConfiguration(raw, ctx.config().system.crash_detection.enabled));
      ctx.servers.add(server);
      void (async () => {
        try {
          await server.environment.create();
          await server.install(false);
          if (body.start_on_completion) await server.handlePowerAction('start', 30);
        } catch (err) {
          log.error({ server: server.uuid, err: errorMessage(err) }, 'failed to finish creating server');
        }
      })();
      return reply.code(202).send();
    },
  );

  app.get('/api/servers/:server', { schema: { description: 'One server.', params: serverParams } }, async (request) =>
    request.wingsServer.apiView(),
  );

  app.delete(
    '/api/servers/:server',
    { schema: { description: 'Delete a server, its instance and its files; cancels its transfer first.', params: serverParams } },
    async (request, reply) => {
      const server = request.wingsServer;
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

  app.get(
    '/api/servers/:server/logs',
    { schema: { description: 'The last lines of the console (size ≤ 100).', params: serverParams, querystring: z.object({ size: z.string().optional() }) } },
    async (request) => {
      let size = Number.parseInt((request.query as { size?: string }).size ?? '', 10);
      if (!Number.isFinite(size) || size <= 0 || size > 100) size = 100;
      const lines = await request.wingsServer.environment.readLog(size);
      return { data: lines.length > 0 ? lines : null };
    },
  );

  app.post(
    '/api/servers/:server/power',
    {
      schema: {
        description: 'Start, stop, restart or kill; answers 202 at once and runs in the background.',
        params: serverParams,
        body: z.object({ action: z.string(), wait_seconds: z.number().int().optional() }),
      },
    },
    async (request, reply) => {
      const server = request.wingsServer;
      const body = request.body as { action: string; wait_seconds?: number };
      if (!POWER_ACTIONS.includes(body.action as PowerAction)) {
        throw httpError('VALIDATION', 'The power action provided was not valid, should be one of "stop", "start", "restart", "kill"');
      }
      const action = body.action as PowerAction;
      refuseWhileTransferring(server);
      if ((action === 'start' || action === 'restart') && server.isSuspended) {
        throw httpError('SERVER_SUSPENDED', 'Cannot start or restart a suspended server.');
      }
      let wait = body.wait_seconds ?? 0;
      if (wait < 0 || wait > 300) wait = 30;
      void server.handlePowerAction(action, wait).catch((err) => {
        if (err instanceof ServerError && err.kind === 'running' && action === 'start') return;
        log.warn({ server: server.uuid, action, err: errorMessage(err) }, 'power action failed');
      });
      return reply.code(202).send();
    },
  );

  app.post(
    '/api/servers/:server/commands',
    {
      schema: { description: 'Write console commands to the running server.', params: serverParams, body: z.object({ commands: z.array(z.string()) }) },
    },
    async (request, reply) => {
      const server = request.wingsServer;
      refuseWhileTransferring(server);
      if (!(await server.environment.isRunning())) {
        throw httpError('SERVER_STOPPED', 'Cannot send commands to a stopped server instance.');
      }
      for (const command of (request.body as { commands: string[] }).commands) {
        await server.sendCommand(command).catch((err) => log.warn({ server: server.uuid, err: errorMessage(err) }, 'command failed'));
      }
      return reply.code(204).send();
    },
  );

  const install = (reinstall: boolean) => async (request: FastifyRequest, reply: FastifyReply) => {
    const server = request.wingsServer;
    refuseWhileTransferring(server);
    if (reinstall && server.powerLocked) {
      throw httpError('POWER_BUSY', 'Cannot execute server reinstall event while another power action is running.');
    }
    void (async () => {
      try {
        if (reinstall && server.state !== 'offline') await server.environment.waitForStop(10_000, true);
        await server.sync();
        await server.install(reinstall);
      } catch (err) {
        log.error({ server: server.uuid, err: errorMessage(err) }, 'install failed');
      }
    })();
    return reply.code(202).send();
  };
  app.post('/api/servers/:server/install', { schema: { description: 'Run the install script.', params: serverParams } }, install(false));
  app.post('/api/servers/:server/reinstall', { schema: { description: 'Stop and reinstall.', params: serverParams } }, install(true));

  app.post(
    '/api/servers/:server/sync',
    { schema: { description: 'Re-fetch the configuration from the Panel.', params: serverParams } },
    async (request, reply) => {
      await request.wingsServer.sync();
      return reply.code(204).send();
    },
  );

  app.post(
    '/api/servers/:server/ws/deny',
    { schema: { description: 'Deny-list websocket token ids.', params: serverParams, body: z.object({ jtis: z.array(z.string()) }) } },
    async (request, reply) => {
      ctx.websockets.denyJtis((request.body as { jtis: string[] }).jtis);
      return reply.code(204).send();
    },
  );
}
