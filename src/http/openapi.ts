import swagger from '@fastify/swagger';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import { VERSION } from '../version.js';
import type { Answers } from './answers.js';
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
    transform: documentAnswers,
  });
}

const STATUS_TEXT: Record<number, string> = {
  101: 'Switching Protocols',
  200: 'OK',
  202: 'Accepted',
  204: 'No Content',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  408: 'Request Timeout',
  409: 'Conflict',
  422: 'Unprocessable Entity',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  507: 'Insufficient Storage',
};

type TransformInput = Parameters<typeof jsonSchemaTransform>[0];

/**
 * jsonSchemaTransform, with each route's `answers` as its responses (answers.ts: documentation only,
 * never serialization) and `documentedBody` in place of its body.
 */
function documentAnswers(input: TransformInput): ReturnType<typeof jsonSchemaTransform> {
  if (!input.schema) return jsonSchemaTransform(input);
  const { answers, documentedBody, ...schema } = input.schema as TransformInput['schema'] & {
    answers?: Answers;
    documentedBody?: unknown;
  };
  const withBodies: Record<string, unknown> = {};
  const bodiless: number[] = [];
  for (const [status, body] of Object.entries(answers ?? {})) {
    if (body === null) bodiless.push(Number(status));
    else withBodies[status] = { description: STATUS_TEXT[Number(status)] ?? status, content: { 'application/json': { schema: body } } };
  }
  const out = jsonSchemaTransform({
    ...input,
    schema: {
      ...schema,
      ...(documentedBody === undefined ? {} : { body: documentedBody }),
      ...(answers === undefined ? {} : { response: withBodies }),
    },
  });
  if (bodiless.length > 0) {
    const response = ((out.schema as { response?: Record<string, unknown> }).response ??= {});
    for (const status of bodiless) response[status] = { description: STATUS_TEXT[status] ?? String(status), type: 'null' };
  }
  return out;
}
