import swagger from '@fastify/swagger';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import { VERSION } from '../version.js';
import type { WingsApp } from './types.js';

/**
 * Route schemas are zod schemas: they validate requests, type the handlers and produce
 * /openapi.json. Each auth scope (scopes.ts) documents its scheme on its routes; the node token is
 * the default.
 */
export async function registerOpenapi(app: WingsApp): Promise<void> {
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  await app.register(swagger, {
    openapi: {
      info: {
        title: 'wings-ts',
        description: 'Node daemon API (Pterodactyl Wings compatible). Every /api route takes `Authorization: Bearer <node token>` unless noted.',
        version: VERSION,
      },
      components: {
        securitySchemes: {
          nodeToken: { type: 'http', scheme: 'bearer' },
          transferToken: {
            type: 'http',
            scheme: 'bearer',
            bearerFormat: 'JWT',
            description: 'A transfer JWT signed by the Panel with this node\'s token (HS256).',
          },
          signedUrl: {
            type: 'apiKey',
            in: 'query',
            name: 'token',
            description: 'A one-time JWT signed by the Panel with this node\'s token for one download or upload.',
          },
        },
      },
      security: [{ nodeToken: [] }],
    },
    transform: jsonSchemaTransform,
  });
}
