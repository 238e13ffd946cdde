import type { Logger } from 'pino';
import { PanelError, type PanelClient } from '../panel/client.js';

/** The Panel calls a transfer makes: the server's configuration and the outcome report. */
export type TransferPanel = Pick<PanelClient, 'getServerConfiguration' | 'setTransferStatus'>;

export type ReportOutcome = 'ok' | 'conflict' | 'error';

/**
 * Reports a transfer's outcome to the Panel (docs/protocol.md D6.2): 409 ends the reporting
 * ('conflict'); 5xx and network errors are retried by the client; any other 4xx ends it and is
 * logged.
 */
export async function reportOutcome(panel: TransferPanel, logger: Logger, uuid: string, success: boolean): Promise<ReportOutcome> {
  try {
    await panel.setTransferStatus(uuid, success);
    return 'ok';
  } catch (err) {
    if (err instanceof PanelError && err.status === 409) {
      logger.info({ server: uuid, success }, 'panel already recorded the transfer outcome (409)');
      return 'conflict';
    }
    logger.error({ server: uuid, success, err }, 'failed to report the transfer outcome');
    return 'error';
  }
}
