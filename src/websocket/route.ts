import type { FastifyInstance } from 'fastify';
import type { DaemonContext } from '../context.js';

export async function websocketRoutes(_app: FastifyInstance, _ctx: DaemonContext): Promise<void> {}
