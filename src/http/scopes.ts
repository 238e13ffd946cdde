import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { checkNodeToken } from '../auth/node-token.js';
import type { DaemonContext } from '../context.js';
import { WingsError } from '../errors.js';
import type { WingsApp } from './types.js';

/**
 * Authentication as encapsulated Fastify scopes: a route is authenticated the way
 * the scope it is registered in says, and nothing else decides it (no list of public paths). Each
 * scope also writes its scheme into the route's OpenAPI entry, so /openapi.json cannot disagree
 * with what is enforced. CORS, OPTIONS and the request id stay global (cors.ts).
 */

export const TOKEN_MISSING = 'The required authorization heads were not present in the request.';
export const TOKEN_FORBIDDEN = 'You are not authorized to access this endpoint.';

type Register = (scope: WingsApp) => Promise<void>;
type Security = { [scheme: string]: string[] }[];

/** Documents every route of `scope` with `security` (the global default is the node token). */
function documentSecurity(scope: WingsApp, security: Security): void {
  scope.addHook('onRoute', (route) => {
    route.schema = { ...route.schema, security };
  });
}

/** The node-token check as an error: 401 (+ WWW-Authenticate) when absent or not `Bearer …`, 403 when wrong. */
export function requireNodeToken(authorization: string | undefined, token: string): void {
  const result = checkNodeToken(authorization, token);
  if (result === 'missing') throw new WingsError('TOKEN_MISSING', TOKEN_MISSING);
  if (result === 'forbidden') throw new WingsError('TOKEN_FORBIDDEN', TOKEN_FORBIDDEN);
}

/**
 * `Authorization: Bearer <node token>`, compared in constant time with the token of the live
 * configuration (a token rotated by POST /api/update applies at once). The check runs first, at
 * onRequest, so nothing about the route (an unknown server, a bad body) shows before it.
 *
 * The scope also holds the not-found handler: the Go daemon installs its auth middleware on the
 * whole engine, so an unknown path answers 401/403 without a valid token and `404 page not found`
 * with one.
 */
export function nodeTokenScope(ctx: DaemonContext, register: Register): FastifyPluginAsyncZod {
  return async (scope) => {
    scope.addHook('onRequest', async (request) => requireNodeToken(request.headers.authorization, ctx.config().token));
    scope.setNotFoundHandler(async () => {
      throw new WingsError('NO_ROUTE', '404 page not found');
    });
    await register(scope);
  };
}

/** A scope without the node token: its routes authenticate as `security` says (or not at all). */
function scopeWithoutNodeToken(security: Security, register: Register): FastifyPluginAsyncZod {
  return async (scope) => {
    documentSecurity(scope, security);
    await register(scope);
  };
}

/**
 * `Authorization: Bearer <transfer JWT>` signed with the node token (POST /api/transfers). The
 * handler verifies the token itself: its refusals are contract answers (docs/protocol.md D4), and
 * they must be sent while the request body is drained (an early answer), which only the handler
 * that owns the body can do.
 */
export const transferTokenScope = (register: Register) => scopeWithoutNodeToken([{ transferToken: [] }], register);

/**
 * `?token=<JWT>` signed by the Panel for one purpose and one use (GET /download/backup,
 * GET /download/file, POST /upload/file). Empty until those routes exist: each
 * will verify its token's purpose claims and its one-time `unique_id` through src/auth.
 */
export const signedUrlScope = (register: Register) => scopeWithoutNodeToken([{ signedUrl: [] }], register);

/** No HTTP authentication: the console websocket authenticates inside the socket (its `auth` event). */
export const publicScope = (register: Register) => scopeWithoutNodeToken([], register);
