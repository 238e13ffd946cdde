import type { FastifyReply, FastifyRequest } from 'fastify';
import { WingsError } from '../errors.js';
import { answerFor } from './error-map.js';

export const UNPARSABLE = 'The data passed in the request was not in a parsable format. Please try again.';
export const NOT_FOUND = 'The requested resource does not exist on this instance.';
export const NOT_TRANSFERRING = 'Server is not currently being transferred.';
export const VALIDATION_FAILED = 'The data provided in the request could not be validated.';

/** What a route answers when its schema refuses the request (route config `validationError`). */
export interface ValidationAnswer {
  code: 'VALIDATION';
  message: string;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Without it a refused schema answers the generic 400 with the request id. */
    validationError?: ValidationAnswer;
  }
}

/** Route config of the routes whose Go handler answers 422 to a body it cannot validate. */
export const ANSWER_422 = { validationError: { code: 'VALIDATION', message: VALIDATION_FAILED } } as const;

/** The fields of Fastify's own errors (body parsing, schema validation, limits) that decide the answer. */
interface FrameworkFields {
  code?: unknown;
  statusCode?: unknown;
  validation?: unknown;
  name?: unknown;
}

function frameworkFields(err: unknown): FrameworkFields {
  return typeof err === 'object' && err !== null ? err : {};
}

/**
 * Every error as a coded one: Fastify's errors get the codes of the answers the Go daemon gives to
 * the same requests; anything uncoded is UNEXPECTED (the original is kept as the cause).
 */
export function toWingsError(err: unknown, request: FastifyRequest): WingsError {
  if (err instanceof WingsError) return err;
  const e = frameworkFields(err);
  const message = err instanceof Error ? err.message : String(err);
  const code = typeof e.code === 'string' ? e.code : '';
  if (code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || (e.validation && request.body === undefined)) {
    return new WingsError('UNPARSABLE', UNPARSABLE);
  }
  const refused = request.routeOptions.config.validationError;
  if (e.validation && refused) return new WingsError(refused.code, refused.message);
  if (e.validation || code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' || (e.statusCode === 400 && code.startsWith('FST_'))) {
    return new WingsError('BAD_BODY', message, { cause: err });
  }
  if (e.statusCode === 413) return new WingsError('BODY_TOO_LARGE', message, { cause: err });
  if (e.name === 'TimeoutError') return new WingsError('DEADLINE', message, { cause: err });
  return new WingsError('UNEXPECTED', message, { cause: err });
}

/** The one place where errors become HTTP answers: coded errors through the table of error-map.ts. */
export function sendError(err: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const coded = toWingsError(err, request);
  const a = answerFor(coded, request.id);
  // An opaque answer hides the message, so the log keeps it (with the stack); a malformed body is
  // the client's business.
  if (coded.code === 'UNEXPECTED') request.log.error({ err }, 'unexpected error while handling request');
  else if (a.opaque && a.status >= 500) request.log.warn({ err }, 'request failed');
  reply.code(a.status).headers(a.headers);
  return a.text ? reply.type('text/plain').send(a.body.error) : reply.send(a.body);
}
