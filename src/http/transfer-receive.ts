import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { Busboy } from '@fastify/busboy';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { WingsError, errorMessage } from '../errors.js';
import { FIELD_PARTS, type IncomingBody, type PartHandlers } from '../transfer/incoming-body.js';
import { acceptIncoming, type IncomingDeps } from '../transfer/incoming.js';
import { answerEarly } from './early-answer.js';
import { answerFor } from './error-map.js';

/**
 * Bounds of the parser: the checksum is read with a bound of 128 bytes (docs/protocol.md D4.1);
 * archive parts stream.
 */
const LIMITS = { fieldSize: 128, fieldNameSize: 200, fields: 20, parts: 50, files: 20, headerPairs: 20 };

const malformed = (message: string) => new WingsError('BAD_REQUEST', `Malformed multipart body: ${message}`);

/** The multipart/form-data body of POST /api/transfers, parsed while it streams (@fastify/busboy). */
export class MultipartBody implements IncomingBody {
  constructor(
    private readonly stream: Readable,
    private readonly headers: IncomingHttpHeaders,
  ) {}

  read(handlers: PartHandlers, signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason);
      let bb: ReturnType<typeof Busboy>;
      try {
        bb = Busboy({ headers: this.headers as never, limits: LIMITS, isPartAFile: (name) => !FIELD_PARTS.includes(name ?? '') });
      } catch (err) {
        return reject(malformed(errorMessage(err)));
      }
      const { stream } = this;
      let settled = false;
      const onData = (): void => handlers.activity();
      const stop = (err?: unknown): void => {
        if (settled) return;
        settled = true;
        // unpipe() rather than destroy, and pipe() rather than pipeline(): the request must stay
        // readable so that an early answer can still drain it and reach the source
        // (docs/protocol.md D4.4).
        stream.unpipe(bb);
        stream.off('data', onData);
        signal.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve();
      };
      const onAbort = (): void => {
        bb.destroy();
        stop(signal.reason);
      };
      /** A handler that throws ends the reading with its error. */
      const call = (fn: () => void): void => {
        try {
          fn();
        } catch (err) {
          stop(err);
        }
      };
      signal.addEventListener('abort', onAbort, { once: true });

      bb.on('file', (name: string | undefined, part: Readable) => {
        // A part the body ends inside errors ("terminated early"); the parser reports the same
        // failure as its own 'error' below, so the part's copy only needs a listener.
        part.on('error', () => {});
        if (settled) part.resume();
        else call(() => handlers.file(name ?? '', part));
      });
      bb.on('field', (name: string, value: string, _nameTruncated: boolean, valueTruncated: boolean) => {
        if (!settled) call(() => handlers.field(name, value, valueTruncated));
      });
      bb.on('partsLimit', () => stop(new WingsError('BAD_REQUEST', 'Too many parts in the request.')));
      bb.on('filesLimit', () => stop(new WingsError('BAD_REQUEST', 'Too many file parts in the request.')));
      bb.on('fieldsLimit', () => stop(new WingsError('BAD_REQUEST', 'Too many fields in the request.')));
      bb.on('error', (e: Error) => stop(malformed(e.message)));
      bb.on('finish', () => stop());
      stream.on('data', onData);
      stream.pipe(bb);
    });
  }
}

/**
 * POST /api/transfers, the HTTP side: the request's headers and multipart body go to the
 * destination (src/transfer/incoming.ts); its answer goes back as 200 or a coded error, early when
 * the body was not read to its end.
 */
export async function receiveTransfer(deps: IncomingDeps, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const raw = request.raw;
  const closed = new AbortController();
  raw.once('close', () => {
    if (!raw.complete) closed.abort(new WingsError('BAD_REQUEST', 'The source closed the connection before the whole body was received.'));
  });
  const size = request.headers['x-transfer-size'];
  const answer = await acceptIncoming(deps, {
    authorization: request.headers.authorization,
    contentType: request.headers['content-type'],
    transferSize: typeof size === 'string' ? size : undefined,
    body: new MultipartBody(raw, raw.headers),
    closed: closed.signal,
  });
  if (answer.ok) {
    await reply.code(200).send();
    return;
  }
  const a = answerFor(answer.error);
  answerEarly(request, reply, a.status, a.body, a.headers);
}
