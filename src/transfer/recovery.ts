import fs from 'node:fs';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { MarkerStore } from './markers.js';
import { reportOutcome, type TransferPanel } from './report.js';

export interface RecoveryDeps {
  config: () => Config;
  logger: Logger;
  panel: TransferPanel;
  /** Does the Panel list the server for this node (the servers were loaded from it at boot)? */
  hasServer: (uuid: string) => boolean;
}

/**
 * Boot recovery (docs/protocol.md D7.5): markers left over mean the transfer died with the process.
 * Runs after the servers were loaded from the Panel, so `hasServer()` tells what the Panel lists
 * here.
 */
export async function recoverTransfers(deps: RecoveryDeps, markers: MarkerStore): Promise<void> {
  const { logger } = deps;
  const cfg = deps.config();
  for (const m of markers.list('incoming')) {
    if (deps.hasServer(m.server)) {
      logger.info({ server: m.server }, 'incoming transfer finished before the restart: the panel lists the server here; keeping it');
    } else {
      logger.warn({ server: m.server }, 'incoming transfer died with the daemon: removing partial data and reporting failure');
      await fs.promises.rm(`${cfg.system.data}/${m.server}`, { recursive: true, force: true }).catch(() => {});
      await reportOutcome(deps.panel, logger, m.server, false);
    }
    markers.remove('incoming', m.server);
  }
  for (const m of markers.list('outgoing')) {
    if (!deps.hasServer(m.server)) {
      logger.info({ server: m.server }, 'outgoing transfer succeeded before the restart (the panel no longer lists the server here); leaving its data alone');
    } else {
      logger.warn({ server: m.server }, 'outgoing transfer died with the daemon: reporting failure; the server is unlocked');
      await reportOutcome(deps.panel, logger, m.server, false);
    }
    markers.remove('outgoing', m.server);
  }
}
