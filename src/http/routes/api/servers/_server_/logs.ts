import { z } from 'zod';
import { ONE_SERVER } from '../../../../answers.js';
import type { ServerRoutes } from '../../../../types.js';

/** GET /api/servers/:server/logs?size=N */
export const logsRoutes: ServerRoutes = async (app, _ctx, serverOf) => {
  app.get(
    '/api/servers/:server/logs',
    {
      schema: {
        description: 'The last lines of the console (size ≤ 100).',
        querystring: z.object({ size: z.string().optional() }),
        answers: { 200: z.object({ data: z.array(z.string()).nullable() }), ...ONE_SERVER },
      },
    },
    async (request) => {
      // As in Go: not a number, ≤ 0 or > 100 all mean 100.
      let size = Number.parseInt(request.query.size ?? '', 10);
      if (!Number.isFinite(size) || size <= 0 || size > 100) size = 100;
      const lines = await serverOf(request).environment.readLog(size);
      return { data: lines.length > 0 ? lines : null };
    },
  );
};
