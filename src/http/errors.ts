import type { FastifyReply, FastifyRequest } from 'fastify';
import { WingsError } from '../errors.js';
import { ServerError } from '../server/server.js';

export const GENERIC_ERROR = 'An unexpected error was encountered while processing this request';
export const UNPARSABLE = 'The data passed in the request was not in a parsable format. Please try again.';
export const NOT_FOUND = 'The requested resource does not exist on this instance.';
export const AUTH_MISSING = 'The required authorization heads were not present in the request.';
export const AUTH_FORBIDDEN = 'You are not authorized to access this endpoint.';

/** An answer with an exact body (handler-specific rejections carry no request_id, daemon.md §4.3). */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: Record<string, unknown>,
    readonly headers: Record<string, string> = {},
  ) {
    super(typeof body.error === "string" ? body.error : `HTTP ${status}`);
    this.name = 'HttpError';
  }
}

export const httpError = (status: number, error: string) => new HttpError(status, { error });

/** The one place where errors become HTTP answers. */
export function sendError(err: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (err instanceof HttpError) {
    return reply.code(err.status).headers(err.headers).send(err.body);
  }
  if (err instanceof WingsError) {
    return reply.code(err.status).send({ error: err.message, code: err.code });
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
