import type { FastifyReply, FastifyRequest } from 'fastify';
import { WingsError, type ErrorCode } from '../errors.js';
import { answerFor } from './error-map.js';
import { ServerError } from '../server/server.js';

export const GENERIC_ERROR = 'An unexpected error was encountered while processing this request';
export const UNPARSABLE = 'The data passed in the request was not in a parsable format. Please try again.';
export const NOT_FOUND = 'The requested resource does not exist on this instance.';
export const AUTH_MISSING = 'The required authorization heads were not present in the request.';
export const AUTH_FORBIDDEN = 'You are not authorized to access this endpoint.';

/** A coded error with one of the fixed messages above. */
export const httpError = (code: ErrorCode, message: string): WingsError => new WingsError(code, message);

/** The one place where errors become HTTP answers: coded errors through the table of error-map.ts. */
export function sendError(err: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (err instanceof WingsError) {
    const a = answerFor(err);
    return reply.code(a.status).headers(a.headers).send(a.body);
  }
  const e = err as { code?: string; statusCode?: number; validation?: unknown; message?: string };
  const validation = (request.routeOptions?.config as { validationError?: { status: number; error: string } } | undefined)
    ?.validationError;
  if (e.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || (e.validation && request.body === undefined)) {
    return reply.code(400).send({ error: UNPARSABLE });
  }
  if (e.validation && validation) {
    return reply.code(validation.status).send({ error: validation.error });
  }
  if (e.validation || e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' || (e.statusCode === 400 && e.code?.startsWith('FST_'))) {
    return reply.code(400).send({ error: GENERIC_ERROR, request_id: request.id });
  }
  if (e.statusCode === 413) return reply.code(413).send({ error: 'The request body is too large.', request_id: request.id });
  if (err instanceof ServerError) {
    request.log.warn({ err: err.message }, 'request failed');
    return reply.code(500).send({ error: GENERIC_ERROR, request_id: request.id });
  }
  if ((e as { name?: string }).name === 'TimeoutError') {
    return reply
      .code(504)
      .send({ error: 'The server could not process this request in time, please try again.', request_id: request.id });
  }
  request.log.error({ err }, 'unexpected error while handling request');
  return reply.code(500).send({ error: GENERIC_ERROR, request_id: request.id });
}
