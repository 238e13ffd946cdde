import type { Routes } from '../types.js';

/** GET /openapi.json (node token): the document @fastify/swagger builds from the route schemas. */
export const openapiRoutes: Routes = async (app) => {
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
};
