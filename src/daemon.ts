import fs from 'node:fs';
import os from 'node:os';
import type { FastifyInstance } from 'fastify';
import type Dockerode from 'dockerode';
import type { Logger } from 'pino';
import { JwtVerifier } from './auth/jwt.js';
import { ConfigError, listenFailure, systemErrorText } from './config/errors.js';
import { saveConfig, type LoadedConfig } from './config/load.js';
import type { Config } from './config/schema.js';
import { describeUnknownKey } from './config/unknown-keys.js';
import type { DaemonContext } from './context.js';
import type { EnvironmentFactory } from './environment/environment.js';
import { buildApp } from './http/app.js';
import { errorMessage } from './errors.js';
import { createLogger } from './log.js';
import { Metrics } from './metrics/metrics.js';
import { MetricsServer } from './metrics/server.js';
import { PanelClient, type RetryPolicy } from './panel/client.js';
import { ServerManager } from './server/manager.js';
import { resolveSystemUser } from './system-user.js';
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

/** The daemon's logger (stdout and `<system.log_directory>/wings.log`); a directory it cannot write names its key. */
function openLog(loaded: LoadedConfig, debug: boolean): Logger {
  const dir = loaded.config.system.log_directory;
  try {
    return createLogger({ debug, logDirectory: dir });
  } catch (err) {
    throw new ConfigError(loaded.path, [{ key: 'system.log_directory', message: `cannot write ${dir}/wings.log: ${systemErrorText(err)}` }], {
      cause: err,
    });
  }
}

/** api.ssl: certificate or key files that cannot be read name their key; other errors pass. */
function tlsFileFailure(err: unknown, file: string, cfg: Config): unknown {
  const at = (err as NodeJS.ErrnoException).path;
  const key = !cfg.api.ssl.enabled || at === undefined ? null : at === cfg.api.ssl.cert ? 'api.ssl.cert' : at === cfg.api.ssl.key ? 'api.ssl.key' : null;
  return key ? new ConfigError(file, [{ key, message: `cannot read ${at}: ${systemErrorText(err)}` }], { cause: err }) : err;
}

/** The daemon: builds the object graph (no singletons) and runs the boot sequence of docs/protocol.md W6. */
export class Daemon {
  readonly ctx: DaemonContext;
  app: FastifyInstance | undefined;
  private loadedConfig: LoadedConfig;
  private stopping: Promise<void> | undefined;
  private metricsServer: MetricsServer | undefined;
  /** Set once boot restored the servers' states: only then does states.json describe this node. */
  private statesRestored = false;

  constructor(private readonly opts: DaemonOptions) {
    this.loadedConfig = opts.loaded;
    const config = () => this.loadedConfig.config;
    const cfg = config();
    const logger = opts.logger ?? openLog(this.loadedConfig, opts.debug || cfg.debug);
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
    const file = this.loadedConfig.path;
    logger.info({ version: (await import('./version.js')).VERSION, environment: cfg.environment }, 'booting wings-ts');
    // Keys other daemons read are expected in a shared config.yml: diagnostics lists them, boot stays quiet.
    for (const u of this.loadedConfig.unknown) {
      if (!u.foreign) logger.warn({ file, key: u.key, suggestion: u.suggestion }, `${file}: ${describeUnknownKey(u)}`);
    }
    cfg.system.timezone = resolveTimezone(cfg.system.timezone);
    const dirs: [string, string][] = [
      ['system.root_directory', cfg.system.root_directory],
      ['system.data', cfg.system.data],
      ['system.archive_directory', cfg.system.archive_directory],
      ['system.backup_directory', cfg.system.backup_directory],
      ['system.log_directory', `${cfg.system.log_directory}/install`],
    ];
    for (const [key, dir] of dirs) {
      try {
        fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      } catch (err) {
        throw new ConfigError(file, [{ key, message: `cannot create ${dir}: ${systemErrorText(err)}` }], { cause: err });
      }
    }
    try {
      cfg.system.data = fs.realpathSync(cfg.system.data);
    } catch {}
    resolveSystemUser(cfg, logger, this.loadedConfig.path);
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

    try {
      await this.ctx.servers.loadFromPanel();
    } catch (err) {
      const message = `the Panel at ${cfg.remote || '(empty)'} did not list this node's servers: ${errorMessage(err)}`;
      throw new ConfigError(file, [{ key: 'remote', message }], { cause: err });
    }
    try {
      this.loadedConfig = saveConfig(this.loadedConfig, cfg);
    } catch (err) {
      logger.warn({ err }, 'could not rewrite config.yml');
    }
    await this.ctx.transfers.recoverAtBoot();
    await this.ctx.servers.restoreStates();
    this.statesRestored = true;
    void this.ctx.panel.resetServersState().catch((err) => logger.warn({ err }, 'panel reset failed'));

    try {
      this.app = await buildApp(this.ctx);
    } catch (err) {
      throw tlsFileFailure(err, file, cfg);
    }
    await this.app.listen({ host: cfg.api.host, port: cfg.api.port }).catch((err: unknown) => {
      throw listenFailure(err, file, 'api', cfg.api.host, cfg.api.port);
    });
    if (cfg.metrics.port > 0) {
      this.metricsServer = new MetricsServer(this.ctx.metrics);
      const metricsUrl = await this.metricsServer.listen(cfg.metrics.host, cfg.metrics.port).catch((err: unknown) => {
        throw listenFailure(err, file, 'metrics', cfg.metrics.host, cfg.metrics.port);
      });
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
      // A boot that failed before the states were restored (the Panel did not answer, a directory
      // could not be created) must not overwrite states.json with an empty or all-offline list:
      // the next boot would no longer restart the servers that were running.
      if (this.statesRestored) this.ctx.servers.freeze();
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

