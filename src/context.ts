import type { Logger } from 'pino';
import type Dockerode from 'dockerode';
import type { JwtVerifier } from './auth/jwt.js';
import type { LoadedConfig } from './config/load.js';
import type { Config } from './config/schema.js';
import type { PanelClient } from './panel/client.js';
import type { ServerManager } from './server/manager.js';
import type { TransferManager } from './transfer/manager.js';
import type { Metrics } from './metrics/metrics.js';
import type { WebsocketHub } from './websocket/hub.js';

/** The object graph of one daemon, built by createDaemon(); handed to the HTTP layer and the parts. */
export interface DaemonContext {
  config(): Config;
  /** Replace the configuration (POST /api/update) and persist it. */
  updateConfig(next: Config): void;
  loaded(): LoadedConfig;
  logger: Logger;
  panel: PanelClient;
  servers: ServerManager;
  jwt: JwtVerifier;
  transfers: TransferManager;
  websockets: WebsocketHub;
  metrics: Metrics;
  docker: Dockerode | undefined;
  /** Unix ms when this process booted: websocket tokens issued before are refused. */
  bootTime: number;
}
