import { z } from 'zod';
import { WingsError } from '../../../errors.js';
import { receiveTransfer } from '../../transfer-receive.js';
import { NOT_FOUND, NOT_TRANSFERRING } from '../../errors.js';
import type { Routes } from '../../types.js';

const serverParams = z.object({ server: z.string() });

/** POST /api/transfers: in the transfer-token scope (no node token; the handler checks the JWT). */
export const receiveTransferRoutes: Routes = async (app, ctx) => {
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
            'Errors: JSON {error, code} (docs/protocol.md D4).',
        },
      },
      async (request, reply) => {
        await receiveTransfer({ manager: ctx.transfers, jwt: ctx.jwt }, request, reply);
        return reply;
      },
    );
  });
};

/** The destination's view of its incoming transfers (node token). */
export const transfersRoutes: Routes = async (app, ctx) => {
  app.get('/api/transfers', { schema: { description: 'Every active transfer of this node, both directions (docs/protocol.md D8.1).' } }, async () =>
    ctx.transfers.list(),
  );

  app.get(
    '/api/transfers/:server',
    { schema: { description: 'The incoming transfer of a server (docs/protocol.md D8.1); 404 when none.', params: serverParams } },
    async (request) => {
      const t = ctx.transfers.incoming(request.params.server);
      if (!t) throw new WingsError('NOT_FOUND', NOT_FOUND);
      return t.view();
    },
  );

  app.delete(
    '/api/transfers/:server',
    { schema: { description: 'Cancel an incoming transfer (docs/protocol.md D3.1): 202, or 409 when none is cancellable.', params: serverParams } },
    async (request, reply) => {
      const t = ctx.transfers.incoming(request.params.server);
      if (!t || !t.cancel()) throw new WingsError('NOT_TRANSFERRING', NOT_TRANSFERRING);
      return reply.code(202).send();
    },
  );
};
