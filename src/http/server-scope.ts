import { z } from 'zod';
import type { DaemonContext } from '../context.js';
import { WingsError } from '../errors.js';
import type { Server } from '../server/server.js';
import { NOT_FOUND } from './errors.js';
import type { ServerOf, WingsApp } from './types.js';

/** The `:server` path parameter of every route under /api/servers/:server. */
export const serverParams = z.object({ server: z.string() });

const TRANSFERRING = 'Server is currently being transferred.';

/**
 * Makes `scope` a scope of routes under /api/servers/:server: an onRequest hook resolves `:server`
 * (an exact match on the UUID) before the body is read and answers 404 when no such server lives
 * here. Registered inside the node-token scope, it runs after the token check, so an
 * unauthenticated request for an unknown server gets 401/403, not 404, as from the Go daemon.
 *
 * Handlers get the server from the returned function: it was resolved for every request that
 * reaches them, so they never see a missing one.
 */
export function serverScope(scope: WingsApp, ctx: DaemonContext): ServerOf {
  const resolved = new WeakMap<object, Server>();
  // Every route of the scope takes `:server`: its schema says so (validation, /openapi.json).
  scope.addHook('onRoute', (route) => {
    route.schema = { ...route.schema, params: serverParams };
  });
  scope.addHook('onRequest', async (request) => {
    const params = serverParams.safeParse(request.params);
    const server = params.success ? ctx.servers.get(params.data.server) : undefined;
    if (!server) throw new WingsError('NOT_FOUND', NOT_FOUND);
    resolved.set(request, server);
  });
  return (request) => {
    const server = resolved.get(request);
    // Only reachable by a route registered outside this scope: answer as for an unknown server.
    if (!server) throw new WingsError('NOT_FOUND', NOT_FOUND);
    return server;
  };
}

/** docs/protocol.md D7.1: while a server is transferring, mutating operations answer 409. */
export function refuseWhileTransferring(server: Server): void {
  if (server.transferring) throw new WingsError('SERVER_TRANSFERRING', TRANSFERRING);
}
