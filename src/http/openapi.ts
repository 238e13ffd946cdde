import swagger from '@fastify/swagger';
import type { FastifyInstance } from 'fastify';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import { VERSION } from '../version.js';

/** Route schemas are zod schemas: they validate bodies and also produce /openapi.json. */
export async function registerOpenapi(app: FastifyInstance): Promise<void> {
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  await app.register(swagger, {
    openapi: {
      info: {
        title: 'wings-ts',
        description: 'Node daemon API (Pterodactyl Wings compatible). Every /api route takes `Authorization: Bearer <node token>` unless noted.',
        version: VERSION,
      },
      components: { securitySchemes: { nodeToken: { type: 'http', scheme: 'bearer' } } },
      security: [{ nodeToken: [] }],
    },
    transform: jsonSchemaTransform,
  });
}

export async function openapiRoutes(app: FastifyInstance): Promise<void> {
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}
