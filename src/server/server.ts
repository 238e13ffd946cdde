// Over 400 lines: power, console, crash handling and install share the power lock and the flags
// (transferring, installing, deleting) of one server; split apart they would have to expose them.
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { Environment, EnvironmentFactory, EnvironmentStats, ProcessState } from '../environment/environment.js';
import { DiskUsage } from '../filesystem/disk-usage.js';
import { PanelError, type PanelClient } from '../panel/client.js';
import { WingsError } from '../errors.js';
import {
  configurationView,
  parseServerConfiguration,
  type ProcessConfiguration,
  type ServerConfigurationData,
  type ServerSettings,
} from './configuration.js';
import { ConsoleThrottle } from './console-throttle.js';
import { environmentVariables } from './environment-vars.js';
import { EventBus } from './events.js';
import { Lock } from './lock.js';
import { compileDoneMatchers, stripAnsi } from './startup-detection.js';

export type PowerAction = 'start' | 'stop' | 'restart' | 'kill';
export const POWER_ACTIONS: readonly PowerAction[] = ['start', 'stop', 'restart', 'kill'];

export interface ServerDeps {
  config: () => Config;
  panel: PanelClient;
  logger: Logger;
  environmentFactory: EnvironmentFactory;
  /** Called when the process state changes (the manager persists states.json). */
  onStateChange?: (server: Server, state: ProcessState) => void;
}

export interface Utilization extends EnvironmentStats {
  state: ProcessState;
  disk_bytes: number;
}

const POWER_STOP_GRACE_MS = 10 * 60 * 1000;

/** One game server: configuration, flags, event bus, console pipeline, power (docs/protocol.md W7–W13). */
export class Server {
  readonly uuid: string;
  readonly events = new EventBus();
  readonly logger: Logger;
  readonly environment: Environment;
  readonly disk: DiskUsage;
  /** The server context: aborted when the server is deleted. */
  readonly lifetime = new AbortController();

  settings: ServerSettings;
  processConfiguration: ProcessConfiguration;
  transferring = false;
  installing = false;
  /** Set by DELETE: blocks new starts during deletion. */
  deleting = false;

  private readonly powerLock = new Lock();
  private readonly throttle: ConsoleThrottle;
  private doneMatchers: ((line: string) => boolean)[] = [];
  private lastCrash = 0;
  private diskLimiterFired = false;
  private stats: EnvironmentStats = emptyStats();
  private lastObservedState: ProcessState = 'offline';

  constructor(
    data: ServerConfigurationData,
    private readonly deps: ServerDeps,
  ) {
    this.uuid = data.settings.uuid;
    this.settings = data.settings;
    this.processConfiguration = data.processConfiguration;
    this.logger = deps.logger.child({ server: this.uuid });
    const cfg = deps.config();
    this.throttle = new ConsoleThrottle(cfg.throttles.lines, cfg.throttles.line_reset_interval);
    this.doneMatchers = compileDoneMatchers(this.processConfiguration.startup.done);
    this.disk = new DiskUsage(this.dataDirectory, () => this.deps.config().system.disk_check_interval);
    this.environment = deps.environmentFactory({
      uuid: this.uuid,
      dataDirectory: this.dataDirectory,
      config: deps.config,
      settings: () => this.settings,
      processConfiguration: () => this.processConfiguration,
      environmentVariables: () => environmentVariables(this.settings, this.deps.config().system.timezone || 'UTC'),
      logger: this.logger,
      publishDaemonMessage: (m) => this.publishDaemonMessage(m),
      publishInstallOutput: (l) => this.events.publish('install output', l),
    });
    this.environment.on('state', (s: ProcessState) => this.onState(s));
    this.environment.on('console', (line: string) => this.onConsole(line));
    this.environment.on('stats', (s: EnvironmentStats) => this.onStats(s));
  }

  get dataDirectory(): string {
    return path.join(this.deps.config().system.data, this.uuid);
  }

  get state(): ProcessState {
    return this.environment.state;
  }

  get isSuspended(): boolean {
    return this.settings.suspended || this.deleting;
  }

  /** Disk limit in bytes; 0 = unlimited (build.disk_space MiB × 1 048 576). */
  get diskLimitBytes(): number {
    return Math.max(0, this.settings.build.disk_space) * 1024 * 1024;
  }

  utilization(): Utilization {
    return {
      memory_bytes: this.stats.memory_bytes,
      memory_limit_bytes: this.stats.memory_limit_bytes,
      cpu_absolute: this.stats.cpu_absolute,
      network: { ...this.stats.network },
      uptime: this.stats.uptime,
      state: this.lastObservedState,
      disk_bytes: this.disk.current(),
    };
  }

  /** The object of GET /api/servers/:server (docs/protocol.md W8), in Wings' key order. */
  apiView(): Record<string, unknown> {
    return {
      state: this.state,
      is_suspended: this.isSuspended,
      utilization: this.utilization(),
      configuration: configurationView(this.settings),
    };
  }

  /** A yellow `[Pterodactyl Daemon]:` console line (never throttled, not in the history). */
  publishDaemonMessage(message: string): void {
    const app = this.deps.config().app_name;
    this.events.publish('console output', `\u001b[33m\u001b[1m[${app} Daemon]:\u001b[39m ${message}\u001b[0m`);
  }

  // ---------------------------------------------------------------- configuration

  applyConfiguration(data: ServerConfigurationData): void {
    this.settings = data.settings;
    this.processConfiguration = data.processConfiguration;
    this.doneMatchers = compileDoneMatchers(this.processConfiguration.startup.done);
  }

  /** Re-fetch the configuration from the Panel and apply it (docs/protocol.md W13.2). */
  async sync(signal?: AbortSignal): Promise<void> {
    let raw: unknown;
    try {
      raw = await this.deps.panel.getServerConfiguration(this.uuid, signal);
    } catch (err) {
      if (err instanceof PanelError && err.status === 404) {
        throw new WingsError('NOT_ON_PANEL', 'server does not exist on remote system', { cause: err });
      }
      throw err;
    }
    this.applyConfiguration(parseServerConfiguration(raw, this.deps.config().system.crash_detection.enabled));
    if (!this.settings.suspended) {
      await this.environment.inSituUpdate().catch((err) => this.logger.warn({ err }, 'failed to update limits'));
    } else if (this.state !== 'offline') {
      void this.environment
        .waitForStop(60_000, true)
        .catch((err) => this.logger.warn({ err }, 'failed to stop suspended server'));
    }
  }

  // ---------------------------------------------------------------- power

  private checkFlags(): void {
    if (this.transferring) throw new WingsError('SERVER_TRANSFERRING', 'server is currently being transferred');
    if (this.installing) throw new WingsError('SERVER_INSTALLING', 'server is currently installing');
  }

  /**
   * A power action (docs/protocol.md W10.1). `waitSeconds` > 0 waits that long for the lock, else
   * tries once; `kill` proceeds even when the lock is held. `by` says who asked, for the operator's
   * log (`http api`, `websocket user <uuid>`, `crash detection`, …).
   */
  async handlePowerAction(action: PowerAction, waitSeconds = 0, by = 'wings'): Promise<void> {
    this.logger.info({ action, by }, `power action ${action} requested by ${by}`);
    this.checkFlags();
    if (action === 'kill') {
      const got = this.powerLock.tryAcquire();
      try {
        await this.environment.terminate('SIGKILL');
      } finally {
        if (got) this.powerLock.release();
      }
      return;
    }
    const got = waitSeconds > 0 ? await this.powerLock.acquire(waitSeconds * 1000) : this.powerLock.tryAcquire();
    if (!got) {
      throw new WingsError(
        'POWER_BUSY',
        'another power action is currently being processed for this server, please try again later',
      );
    }
    try {
      this.checkFlags();
      switch (action) {
        case 'start':
          if (this.state !== 'offline') throw new WingsError('SERVER_RUNNING', 'server is running');
          await this.preStart();
          await this.environment.start(this.lifetime.signal);
          break;
        case 'stop':
          await this.environment.waitForStop(POWER_STOP_GRACE_MS, true, this.lifetime.signal);
          break;
        case 'restart':
          await this.environment.waitForStop(POWER_STOP_GRACE_MS, true, this.lifetime.signal);
          await this.preStart();
          await this.environment.start(this.lifetime.signal);
          break;
      }
    } finally {
      this.powerLock.release();
    }
  }

  get powerLocked(): boolean {
    return this.powerLock.isLocked;
  }

  private async preStart(): Promise<void> {
    await this.sync(this.lifetime.signal);
    if (this.isSuspended) throw new WingsError('SERVER_SUSPENDED', 'server is currently in a suspended state');
    if (this.diskLimitBytes > 0) {
      this.publishDaemonMessage('Checking server disk space usage, this could take a few seconds...');
      const used = await this.disk.refresh();
      if (used > this.diskLimitBytes) throw new WingsError('DISK_FULL', 'not enough disk space');
    } else {
      void this.disk.refresh().catch(() => {});
    }
    await fs.promises.mkdir(this.dataDirectory, { recursive: true, mode: 0o755 });
    this.publishDaemonMessage('Updating process configuration files...');
  }

  /** Console input (HTTP /commands, websocket `send command`). */
  async sendCommand(command: string): Promise<void> {
    await this.environment.sendCommand(command);
  }

  // ---------------------------------------------------------------- environment events

  private onState(state: ProcessState): void {
    const previous = this.lastObservedState;
    this.lastObservedState = state;
    if (state !== previous) this.logger.info({ from: previous, to: state }, `server ${previous} -> ${state}`);
    if (state === 'starting') {
      this.throttle.reset();
      this.diskLimiterFired = false;
    }
    if (state === 'offline') {
      this.stats = { ...emptyStats(), memory_limit_bytes: this.stats.memory_limit_bytes };
      this.events.publish('stats', this.utilization());
    }
    this.events.publish('status', state);
    this.deps.onStateChange?.(this, state);
    if (state === 'offline' && (previous === 'starting' || previous === 'running')) {
      void this.handleCrash().catch((err) => this.logger.error({ err }, 'crash handling failed'));
    }
  }

  private onConsole(line: string): void {
    if (this.state === 'starting' && this.doneMatchers.length > 0) {
      const text = this.processConfiguration.startup.strip_ansi ? stripAnsi(line) : line;
      if (this.doneMatchers.some((m) => m(text))) this.environment.setState('running');
    }
    const verdict = this.throttle.check();
    if (verdict === 'allow') this.events.publish('console output', line);
    else if (verdict === 'drop-first') {
      this.publishDaemonMessage('Server is outputting console data too quickly -- throttling...');
    }
  }

  private onStats(s: EnvironmentStats): void {
    this.stats = s;
    const limit = this.diskLimitBytes;
    if (limit > 0 && !this.diskLimiterFired && this.disk.current() > limit && this.state !== 'offline') {
      this.diskLimiterFired = true;
      this.publishDaemonMessage('Server is exceeding the assigned disk space limit, stopping process now.');
      void this.environment.waitForStop(60_000, true).catch((err) => this.logger.warn({ err }, 'disk limiter stop failed'));
    }
    this.events.publish('stats', this.utilization());
  }

  /** Crash detection (docs/protocol.md W10.2). */
  private async handleCrash(): Promise<void> {
    if (this.state !== 'offline' || this.lifetime.signal.aborted) return;
    if (!this.settings.crash_detection_enabled) {
      this.publishDaemonMessage('Aborting automatic restart, crash detection is disabled for this instance.');
      return;
    }
    const exit = await this.environment.exitState();
    const cfg = this.deps.config().system.crash_detection;
    if (exit.exitCode === 0 && !exit.oomKilled && !cfg.detect_clean_exit_as_crash) return;
    this.publishDaemonMessage('---------- Detected server process in a crashed state! ----------');
    this.publishDaemonMessage(`Exit code: ${exit.exitCode}`);
    this.publishDaemonMessage(`Out of memory: ${exit.oomKilled}`);
    if (cfg.timeout !== 0 && this.lastCrash > 0 && Date.now() - this.lastCrash < cfg.timeout * 1000) {
      this.publishDaemonMessage(
        `Aborting automatic restart, last crash occurred less than ${cfg.timeout} seconds ago.`,
      );
      return;
    }
    this.lastCrash = Date.now();
    this.logger.warn({ exitCode: exit.exitCode }, 'server crashed; restarting');
    try {
      await this.handlePowerAction('start', 0, 'crash detection');
    } catch (err) {
      this.logger.error({ err }, 'crash restart failed');
      this.publishDaemonMessage('Server crash was detected but an error occurred while handling it.');
    }
  }

  // ---------------------------------------------------------------- install

  /** Install / reinstall flow (docs/protocol.md W13.1). */
  async install(reinstall: boolean): Promise<void> {
    let ok = true;
    if (!this.settings.skip_egg_scripts) {
      if (this.installing) {
        ok = false;
      } else {
        this.installing = true;
        this.events.publish('install started', '');
        try {
          await fs.promises.mkdir(this.dataDirectory, { recursive: true, mode: 0o755 });
          const script = await this.deps.panel.getInstallationScript(this.uuid);
          this.events.publish('daemon message', 'Starting installation process, this could take a few minutes...');
          const lines: string[] = [];
          ok = await this.environment.runInstaller({
            image: script.container_image,
            entrypoint: script.entrypoint,
            script: script.script,
            onOutput: (line) => {
              if (lines.length < 10_000) lines.push(line);
              this.events.publish('install output', line);
            },
            signal: this.lifetime.signal,
          });
          this.events.publish('daemon message', 'Installation process completed.');
          await this.writeInstallLog(script, lines).catch((err) => this.logger.warn({ err }, 'install log'));
        } catch (err) {
          ok = false;
          this.logger.error({ err }, 'installation failed');
        } finally {
          this.installing = false;
        }
      }
    }
    const outcome = this.settings.skip_egg_scripts ? 'skipped (skip_egg_scripts)' : ok ? 'finished' : 'failed';
    this.logger[ok ? 'info' : 'warn']({ successful: ok, reinstall }, `${reinstall ? 'reinstallation' : 'installation'} ${outcome}`);
    await this.deps.panel
      .setInstallationStatus(this.uuid, ok, reinstall)
      .catch((err) => this.logger.warn({ err }, 'failed to report install status'));
    // Back to offline after the installer, unless a power action started the server meanwhile
    // (possible with skip_egg_scripts, where nothing blocks a start during creation): its state
    // belongs to that run, and forcing it offline would look like a crash.
    if (this.state !== 'offline' && !this.powerLock.isLocked && !(await this.environment.isRunning().catch(() => false))) {
      this.environment.setState('offline');
    }
    this.events.publish('install completed', '');
    if (!ok) throw new WingsError('INSTALL_FAILED', 'installation failed');
  }

  private async writeInstallLog(
    script: { container_image: string; entrypoint: string },
    lines: string[],
  ): Promise<void> {
    const dir = path.join(this.deps.config().system.log_directory, 'install');
    await fs.promises.mkdir(dir, { recursive: true, mode: 0o700 });
    const header = [
      'Pterodactyl Server Installation Log',
      '',
      '|',
      `| Details`,
      '| ------------------------------',
      `  Server UUID:          ${this.uuid}`,
      `  Container Image:      ${script.container_image}`,
      `  Container Entrypoint: ${script.entrypoint}`,
      '',
      '|',
      '| Script Output',
      '| ------------------------------',
    ];
    await fs.promises.writeFile(path.join(dir, `${this.uuid}.log`), [...header, ...lines, ''].join('\n'));
  }

  // ---------------------------------------------------------------- teardown

  /**
   * Removes the server (docs/protocol.md W4.5 steps 1 and 3): publishes `deleted`, aborts the
   * server context, removes the instance and, unless `keepFiles`, the data directory.
   */
  async destroy(opts: { keepFiles?: boolean } = {}): Promise<void> {
    this.logger.info({ keepFiles: opts.keepFiles === true }, `server deleted${opts.keepFiles ? ' (files kept)' : ''}`);
    this.deleting = true;
    this.events.publish('deleted', null);
    this.lifetime.abort(new Error('server deleted'));
    await this.environment.destroy();
    await this.environment.detach().catch(() => {});
    this.events.destroy();
    if (!opts.keepFiles) {
      await fs.promises.rm(this.dataDirectory, { recursive: true, force: true }).catch((err) => {
        this.logger.error({ err }, 'failed to remove server files');
      });
    }
  }
}

function emptyStats(): EnvironmentStats {
  return { memory_bytes: 0, memory_limit_bytes: 0, cpu_absolute: 0, network: { rx_bytes: 0, tx_bytes: 0 }, uptime: 0 };
}
