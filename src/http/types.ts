import type {
  FastifyBaseLogger,
  FastifyInstance,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
  RawServerDefault,
} from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { DaemonContext } from '../context.js';
import type { Server } from '../server/server.js';

/** The API's Fastify instance: request and reply types come from each route's zod schemas. */
export type WingsApp = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  ZodTypeProvider
>;

/** The server named by the `:server` of the request (see server-scope.ts). */
export type ServerOf = (request: object) => Server;

/** A route module: registers the routes of one path (or one small resource) on its scope. */
export type Routes = (app: WingsApp, ctx: DaemonContext) => Promise<void>;

/** A route module under /api/servers/:server. */
export type ServerRoutes = (app: WingsApp, ctx: DaemonContext, serverOf: ServerOf) => Promise<void>;
