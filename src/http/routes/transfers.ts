import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { DaemonContext } from '../../context.js';
import { receiveTransfer } from '../transfer-receive.js';
import { initiateOutgoing } from '../../transfer/outgoing.js';
import { NOT_FOUND, httpError } from '../errors.js';

const NOT_TRANSFERRING = 'Server is not currently being transferred.';
const serverParams = z.object({ server: z.string() });

export async function transferRoutes(app: FastifyInstance, ctx: DaemonContext): Promise<void> {
  // POST /api/transfers streams its multipart body itself: no body parser in this scope.
  await app.register(async (raw) => {
    raw.removeAllContentTypeParsers();
    raw.addContentTypeParser('*', (_req, _payload, done) => done(null));
    raw.post(
      '/api/transfers',
      {
        schema: {
          description:
            'Receive a server (destination). Authorization: Bearer <transfer JWT signed with this node\'s token>. ' +
            'Multipart body: part `archive` (tar.gz) then part `checksum` (hex SHA-256 of the archive part). ' +
            'Errors: JSON {error, code} (contract D4).',
        },
      },
      async (request, reply) => {
        await receiveTransfer({ manager: ctx.transfers, jwt: ctx.jwt }, request, reply);
        return reply;
      },
    );
  });

  app.get('/api/transfers', { schema: { description: 'Every active transfer of this node, both directions (D8).' } }, async () =>
    ctx.transfers.list(),
  );

  app.get(
    '/api/transfers/:server',
    { schema: { description: 'The incoming transfer of a server (D8); 404 when none.', params: serverParams } },
    async (request) => {
      const t = ctx.transfers.incoming((request.params as { server: string }).server);
      if (!t) throw httpError('NOT_FOUND', NOT_FOUND);
      return t.view();
    },
  );

  app.delete(
    '/api/transfers/:server',
    { schema: { description: 'Cancel an incoming transfer (D3): 202, or 409 when none is cancellable.', params: serverParams } },
    async (request, reply) => {
      const t = ctx.transfers.incoming((request.params as { server: string }).server);
      if (!t || !t.cancel()) throw httpError('NOT_TRANSFERRING', NOT_TRANSFERRING);
      return reply.code(202).send();
    },
  );
}

/** Routes under /api/servers/:server (the server lookup hook has run). */
export async function serverTransferRoutes(app: FastifyInstance, ctx: DaemonContext): Promise<void> {
  app.post(
    '/api/servers/:server/transfer',
    {
      schema: {
        description: 'Start an outgoing transfer (source): stops the server, answers 202, streams in the background.',
        params: serverParams,
        body: z.object({
          url: z.string().min(1),
          token: z.string().min(1),
          server: z.unknown().optional(),
          server_id: z.unknown().optional(),
        }),
      },
    },
    async (request, reply) => {
      const body = request.body as { url: string; token: string };
      const result = await initiateOutgoing(ctx.transfers, request.wingsServer, { url: body.url, token: body.token });
      if (result.status === 202) return reply.code(202).send();
      return reply.code(result.status).send(result.body);
    },
  );

  app.get(
    '/api/servers/:server/transfer',
    { schema: { description: 'The outgoing transfer of a server (D8); 404 when none.', params: serverParams } },
    async (request) => {
      const t = ctx.transfers.outgoing(request.wingsServer.uuid);
      if (!t) throw httpError('NOT_FOUND', NOT_FOUND);
      return t.view();
    },
  );

  app.delete(
    '/api/servers/:server/transfer',
    { schema: { description: 'Cancel the outgoing transfer (D3): 202, or 409 when none is cancellable.', params: serverParams } },
    async (request, reply) => {
      const t = ctx.transfers.outgoing(request.wingsServer.uuid);
      if (!t || !t.cancel()) throw httpError('NOT_TRANSFERRING', NOT_TRANSFERRING);
      return reply.code(202).send();
    },
  );
}
