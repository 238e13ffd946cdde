import { z } from 'zod';

/**
 * What each route answers, for /openapi.json only. The statuses are not `schema.response`: the zod
 * serializer would encode every answer through them (a zod object strips unknown keys), and the
 * answers must stay byte for byte what they are. The swagger transform (openapi.ts) turns
 * `schema.answers` into the document's responses, and `schema.documentedBody` (when set) replaces
 * the body that validates the request in the document only.
 */

/** A body-less answer (202 Accepted, 204 No Content). */
export const NO_BODY = null;
export type Answer = z.ZodType | typeof NO_BODY;
export type Answers = Record<number, Answer>;

/** The error bodies (error-map.ts): `{error, code?}`, or `{error, request_id}` for the opaque ones. */
export const CODED_ERROR = z.object({ error: z.string(), code: z.string().optional() });
export const OPAQUE_ERROR = z.object({ error: z.string(), request_id: z.string() });
export const ANY_ERROR = z.union([CODED_ERROR, OPAQUE_ERROR]);

declare module 'fastify' {
  interface FastifySchema {
    /** The statuses this route answers, each with its body (NO_BODY when none). Documentation only. */
    answers?: Answers;
    /** The request body as documented, when it differs from the one that validates it. */
    documentedBody?: z.ZodType;
  }
}

/** Node-token routes: 401 without `Bearer …`, 403 with a wrong token. */
export const NODE_TOKEN: Answers = { 401: CODED_ERROR, 403: CODED_ERROR };
/** Routes under /api/servers/:server: 404 for a server not on this node. */
export const ONE_SERVER: Answers = { ...NODE_TOKEN, 404: CODED_ERROR };
/** Routes with a JSON body: 400 when it cannot be parsed (UNPARSABLE, or the generic opaque answer). */
export const JSON_BODY: Answers = { 400: ANY_ERROR };
/** Routes with ANSWER_422: 422 for a body the schema refuses. */
export const BODY_422: Answers = { ...JSON_BODY, 422: CODED_ERROR };
