import { z } from 'zod';
import { CODED_ERROR, NODE_TOKEN, NO_BODY } from '../../answers.js';
import { WingsError } from '../../../errors.js';
import { receiveTransfer } from '../../transfer-receive.js';
import { NOT_FOUND, NOT_TRANSFERRING } from '../../errors.js';
import type { Routes } from '../../types.js';

const serverParams = z.object({ server: z.string() });

/** The multipart body of POST /api/transfers, in this order (documentation; the handler streams it). */
const TRANSFER_BODY = z.object({
  archive: z.string().meta({ format: 'binary', description: 'The server\'s files as a tar.gz; the first part.' }),
  checksum: z.string().regex(/^[0-9a-f]{64}$/).meta({ description: 'Hex SHA-256 of the archive part; after it.' }),
});
const TRANSFER_VIEW = z.looseObject({});

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
          consumes: ['multipart/form-data'],
          documentedBody: TRANSFER_BODY,
          answers: { 200: NO_BODY, 400: CODED_ERROR, 401: CODED_ERROR, 403: CODED_ERROR, 408: CODED_ERROR, 409: CODED_ERROR, 500: CODED_ERROR, 502: CODED_ERROR, 507: CODED_ERROR },
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
  app.get('/api/transfers', {
      schema: {
        description: 'Every active transfer of this node, both directions (docs/protocol.md D8.1).',
        answers: { 200: z.array(TRANSFER_VIEW), ...NODE_TOKEN },
      },
    }, async () =>
    ctx.transfers.list(),
  );

  app.get(
    '/api/transfers/:server',
    { schema: { description: 'The incoming transfer of a server (docs/protocol.md D8.1); 404 when none.',
        params: serverParams,
        answers: { 200: TRANSFER_VIEW, ...NODE_TOKEN, 404: CODED_ERROR },
      } },
    async (request) => {
      const t = ctx.transfers.incoming(request.params.server);
      if (!t) throw new WingsError('NOT_FOUND', NOT_FOUND);
      return t.view();
    },
  );

  app.delete(
    '/api/transfers/:server',
    { schema: { description: 'Cancel an incoming transfer (docs/protocol.md D3.1): 202, or 409 when none is cancellable.',
        params: serverParams,
        answers: { 202: NO_BODY, ...NODE_TOKEN, 409: CODED_ERROR },
      } },
    async (request, reply) => {
      const t = ctx.transfers.incoming(request.params.server);
      if (!t || !t.cancel()) throw new WingsError('NOT_TRANSFERRING', NOT_TRANSFERRING);
      return reply.code(202).send();
    },
  );
};
