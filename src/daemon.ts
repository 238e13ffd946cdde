import fs from 'node:fs';
import os from 'node:os';
import type { FastifyInstance } from 'fastify';
import type Dockerode from 'dockerode';
import type { Logger } from 'pino';
import { JwtVerifier } from './auth/jwt.js';
import { saveConfig, type LoadedConfig } from './config/load.js';
import type { Config } from './config/schema.js';
import type { DaemonContext } from './context.js';
import type { EnvironmentFactory } from './environment/environment.js';
import { buildApp } from './http/app.js';
import { createLogger } from './log.js';
import { Metrics } from './metrics/metrics.js';
import { MetricsServer } from './metrics/server.js';
import { PanelClient, type RetryPolicy } from './panel/client.js';
import { ServerManager } from './server/manager.js';
import { TransferManager } from './transfer/manager.js';
import { WebsocketHub } from './websocket/hub.js';

export interface DaemonOptions {
  loaded: LoadedConfig;
  /** --debug: debug logging without persisting it. */
  debug?: boolean;
  logger?: Logger;
  /** Panel retry policy (tests shorten it). */
  panelRetry?: RetryPolicy;
}

function resolveTimezone(configured: string): string {
  let tz = configured || process.env.TZ || '';
  if (!tz) {
    try {
      tz = fs.readFileSync('/etc/timezone', 'utf8').trim();
    } catch {}
  }
  tz = (tz || 'UTC').replace(/[^A-Za-z_/]/g, '');
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
    return tz;
  } catch {
    return 'UTC';
  }
}

/** Looks up the system user in /etc/passwd; without it the daemon's own uid/gid are used. */
function resolveUser(config: Config, logger: Logger): void {
  if (config.system.user.rootless.enabled) {
    config.system.user.uid = process.getuid?.() ?? 0;
    config.system.user.gid = process.getgid?.() ?? 0;
    return;
  }
  try {
    const line = fs
      .readFileSync('/etc/passwd', 'utf8')
      .split('\n')
      .find((l) => l.split(':')[0] === config.system.username);
    if (line) {
      const [, , uid, gid] = line.split(':');
      config.system.user.uid = Number(uid);
      config.system.user.gid = Number(gid);
      return;
    }
  } catch {}
  if (config.system.user.uid === 0 && config.system.user.gid === 0) {
    config.system.user.uid = process.getuid?.() ?? 0;
    config.system.user.gid = process.getgid?.() ?? 0;
  }
  logger.warn(
    { username: config.system.username, uid: config.system.user.uid },
    'system user not found; files and containers use the configured (or the daemon\'s own) uid/gid',
  );
}

/** The daemon: builds the object graph (no singletons) and runs the boot sequence of docs/protocol.md W6. */
export class Daemon {
  readonly ctx: DaemonContext;
  app: FastifyInstance | undefined;
  private loadedConfig: LoadedConfig;
  private stopping: Promise<void> | undefined;
  private metricsServer: MetricsServer | undefined;

  constructor(private readonly opts: DaemonOptions) {
    this.loadedConfig = opts.loaded;
    const config = () => this.loadedConfig.config;
    const cfg = config();
    const logger =
      opts.logger ??
      createLogger({ debug: opts.debug || cfg.debug, logDirectory: cfg.system.log_directory });
    const panel = new PanelClient(config, logger.child({ component: 'panel' }), opts.panelRetry);
    let environmentFactory: EnvironmentFactory;
    const websockets = new WebsocketHub();
    const metrics = new Metrics();
    const holder: { ctx?: DaemonContext } = {};
    if (cfg.environment === 'process') {
      environmentFactory = (envCtx) => new ProcessEnvironmentCtor!(envCtx);
    } else {
      environmentFactory = (envCtx) => new DockerEnvironmentCtor!(envCtx, holder.ctx!.docker!);
    }
    const servers = new ServerManager({
      config,
      panel,
      logger,
      environmentFactory,
    });
    const transfers = new TransferManager({
      config,
      logger,
      panel,
      servers,
      closeSockets: (uuid) => websockets.closeServer(uuid),
      onFinished: (t, seconds) => metrics.transferFinished(t, seconds),
    });
    metrics.bind({ transfers: () => transfers.list(), servers: () => servers.list(), websockets: () => websockets });
    this.ctx = {
      config,
      updateConfig: (next) => {
        this.loadedConfig = saveConfig(this.loadedConfig, next);
      },
      loaded: () => this.loadedConfig,
      logger,
      panel,
      servers,
      jwt: new JwtVerifier(() => config().token),
      transfers,
      websockets,
      metrics,
      // Connected by start() (docker environment only).
      docker: undefined,
      bootTime: Date.now(),
    };
    holder.ctx = this.ctx;
  }

  get config(): Config {
    return this.loadedConfig.config;
  }

  get url(): string {
    const addr = this.app?.server.address();
    if (!addr || typeof addr === 'string') return '';
    return `${this.config.api.ssl.enabled ? 'https' : 'http'}://${addr.address.includes(':') ? `[${addr.address}]` : addr.address}:${addr.port}`;
  }

  /** Boot (docs/protocol.md W6) then listen. */
  async start(): Promise<void> {
    const { logger } = this.ctx;
    const cfg = this.config;
    logger.info({ version: (await import('./version.js')).VERSION, environment: cfg.environment }, 'booting wings-ts');
    cfg.system.timezone = resolveTimezone(cfg.system.timezone);
    for (const dir of [cfg.system.root_directory, cfg.system.data, cfg.system.archive_directory, cfg.system.backup_directory]) {
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    }
    fs.mkdirSync(`${cfg.system.log_directory}/install`, { recursive: true, mode: 0o700 });
    try {
      cfg.system.data = fs.realpathSync(cfg.system.data);
    } catch {}
    resolveUser(cfg, logger);
    await loadEnvironmentModules(cfg.environment);

    if (cfg.environment === 'docker') {
      const { connectDocker, ensureDockerNetwork } = await import('./environment/docker/index.js');
      try {
        this.ctx.docker = await connectDocker(cfg);
        await ensureDockerNetwork(this.ctx.docker, cfg, logger);
      } catch (err) {
        logger.error({ err }, 'the Docker engine is not usable; servers cannot start until it is');
        const Dockerode = (await import('dockerode')).default;
        this.ctx.docker ??= new Dockerode();
      }
    }

    await this.ctx.servers.loadFromPanel();
    try {
      this.loadedConfig = saveConfig(this.loadedConfig, cfg);
    } catch (err) {
      logger.warn({ err }, 'could not rewrite config.yml');
    }
    await this.ctx.transfers.recoverAtBoot();
    await this.ctx.servers.restoreStates();
    void this.ctx.panel.resetServersState().catch((err) => logger.warn({ err }, 'panel reset failed'));

    this.app = await buildApp(this.ctx);
    await this.app.listen({ host: cfg.api.host, port: cfg.api.port });
    if (cfg.metrics.port > 0) {
      this.metricsServer = new MetricsServer(this.ctx.metrics);
      const metricsUrl = await this.metricsServer.listen(cfg.metrics.host, cfg.metrics.port);
      logger.info({ url: `${metricsUrl}/metrics` }, 'metrics listener (no auth)');
    }
    logger.info({ url: this.url, cpus: os.cpus().length }, 'wings-ts is ready');
  }

  /**
   * Graceful shutdown (docs/protocol.md D9.1): cancel and report transfers; Docker containers keep
   * running; process servers stop.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      const { logger } = this.ctx;
      logger.info('shutting down');
      await this.ctx.transfers.shutdown().catch((err) => logger.error({ err }, 'transfer shutdown'));
      this.ctx.servers.freeze();
      await Promise.all(
        this.ctx.servers.list().map((s) => s.environment.detach().catch(() => {})),
      );
      await this.app?.close().catch(() => {});
      await this.metricsServer?.close().catch(() => {});
      logger.info('stopped');
      logger.flush?.();
    })();
    return this.stopping;
  }
}

let ProcessEnvironmentCtor: (new (ctx: import('./environment/environment.js').EnvironmentContext) => import('./environment/environment.js').Environment) | undefined;
let DockerEnvironmentCtor:
  | (new (
      ctx: import('./environment/environment.js').EnvironmentContext,
      docker: Dockerode,
    ) => import('./environment/environment.js').Environment)
  | undefined;

/** Loads only the environment module in use (dockerode stays unloaded for the process environment). */
async function loadEnvironmentModules(kind: Config['environment']): Promise<void> {
  if (kind === 'process') ProcessEnvironmentCtor ??= (await import('./environment/process/index.js')).ProcessEnvironment;
  else DockerEnvironmentCtor ??= (await import('./environment/docker/index.js')).DockerEnvironment;
}

