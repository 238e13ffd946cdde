import { z } from 'zod';
import { JSON_BODY, NODE_TOKEN } from '../../answers.js';
import { applyPanelUpdate } from '../../../config/load.js';
import { WingsError } from '../../../errors.js';
import { UNPARSABLE } from '../../errors.js';
import type { Routes } from '../../types.js';

/** What the Panel pushes: an object whose keys overwrite the current configuration's. */
const update = z.record(z.string(), z.unknown());

/** POST /api/update */
export const updateRoutes: Routes = async (app, ctx) => {
  app.post(
    '/api/update',
    {
      schema: {
        description: 'Push node configuration from the Panel (merged onto the current configuration).',
        documentedBody: update,
        answers: { 200: z.object({ applied: z.boolean() }), ...NODE_TOKEN, ...JSON_BODY },
      },
    },
    async (request) => {
      const cfg = ctx.config();
      // Go reads the body only after this check, so the route has no body schema.
      if (cfg.ignore_panel_config_updates) return { applied: false };
      if (request.body === undefined) throw new WingsError('UNPARSABLE', UNPARSABLE);
      const body = update.safeParse(request.body);
      if (!body.success) throw new WingsError('BAD_BODY', 'the configuration update is not a JSON object');
      const next = applyPanelUpdate(cfg, body.data);
      if (!next.token) throw new WingsError('EMPTY_TOKEN', 'The node token may not be empty.');
      ctx.updateConfig(next);
      return { applied: true };
    },
  );
};
