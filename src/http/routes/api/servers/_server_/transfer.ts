import { z } from 'zod';
import { CODED_ERROR, JSON_BODY, NO_BODY, ONE_SERVER } from '../../../../answers.js';
import { WingsError } from '../../../../../errors.js';
import { initiateOutgoing } from '../../../../../transfer/outgoing.js';
import { NOT_FOUND, NOT_TRANSFERRING } from '../../../../errors.js';
import type { ServerRoutes } from '../../../../types.js';

/** POST, GET, DELETE /api/servers/:server/transfer: the source's side of a transfer. */
export const serverTransferRoutes: ServerRoutes = async (app, ctx, serverOf) => {
  app.post(
    '/api/servers/:server/transfer',
    {
      schema: {
        description: 'Start an outgoing transfer (source): stops the server, answers 202, streams in the background.',
        body: z.object({
          url: z.string().min(1),
          token: z.string().min(1),
          server: z.unknown().optional(),
          server_id: z.unknown().optional(),
        }),
        answers: { 202: NO_BODY, ...ONE_SERVER, ...JSON_BODY, 409: CODED_ERROR, 500: CODED_ERROR },
      },
    },
    async (request, reply) => {
      const { url, token } = request.body;
      const result = await initiateOutgoing(ctx.transfers, serverOf(request), { url, token });
      if (result.status === 202) return reply.code(202).send();
      // The source's refusals keep Go's plain bodies: 409 (already transferring, cancelled while
      // stopping) and 500 (the server did not stop in time).
      throw new WingsError(result.status === 409 ? 'TRANSFER_REFUSED' : 'TRANSFER_STOP_FAILED', result.body.error);
    },
  );

  app.get(
    '/api/servers/:server/transfer',
    {
      schema: {
        description: 'The outgoing transfer of a server (docs/protocol.md D8.1); 404 when none.',
        answers: { 200: z.looseObject({}), ...ONE_SERVER },
      },
    },
    async (request) => {
      const t = ctx.transfers.outgoing(serverOf(request).uuid);
      if (!t) throw new WingsError('NOT_FOUND', NOT_FOUND);
      return t.view();
    },
  );

  app.delete(
    '/api/servers/:server/transfer',
    {
      schema: {
        description: 'Cancel the outgoing transfer (docs/protocol.md D3.1): 202, or 409 when none is cancellable.',
        answers: { 202: NO_BODY, ...ONE_SERVER, 409: CODED_ERROR },
      },
    },
    async (request, reply) => {
      const t = ctx.transfers.outgoing(serverOf(request).uuid);
      if (!t || !t.cancel()) throw new WingsError('NOT_TRANSFERRING', NOT_TRANSFERRING);
      return reply.code(202).send();
    },
  );
};
