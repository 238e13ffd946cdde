import type { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { ProcessConfiguration, ServerSettings } from './server-configuration.js';

/** Process states of a server (docs/protocol.md W9.1), exact wire strings. */
export type ProcessState = 'offline' | 'starting' | 'running' | 'stopping';

export interface EnvironmentStats {
  memory_bytes: number;
  memory_limit_bytes: number;
  cpu_absolute: number;
  network: { rx_bytes: number; tx_bytes: number };
  uptime: number;
}

export interface ExitState {
  exitCode: number;
  oomKilled: boolean;
}

export interface InstallerOptions {
  image: string;
  entrypoint: string;
  script: string;
  /** Each output line of the installer, as it is produced. */
  onOutput: (line: string) => void;
  signal: AbortSignal;
}

/**
 * Everything an environment needs to know about its server. Getters, because the Panel may
 * re-sync the configuration at any time and the environment must use the newest one.
 */
export interface EnvironmentContext {
  uuid: string;
  /** `<system.data>/<uuid>`: the server's files (mounted at /home/container in Docker). */
  dataDirectory: string;
  config: () => Config;
  settings: () => ServerSettings;
  processConfiguration: () => ProcessConfiguration;
  /** Environment variables of docs/protocol.md W14, in order. */
  environmentVariables: () => string[];
  logger: Logger;
  /** Daemon console messages (e.g. image pull progress), published by the server. */
  publishDaemonMessage: (message: string) => void;
  /** Image pull progress and similar lines for `install output`. */
  publishInstallOutput: (line: string) => void;
}

/**
 * Events an environment emits:
 * - `state` (ProcessState): every change of the process state; the environment owns the state.
 * - `console` (string): one console output line (line endings removed, see docs/protocol.md W11.1).
 * - `stats` (EnvironmentStats): a resource sample while running (about once a second).
 */
export interface Environment extends EventEmitter {
  readonly kind: 'docker' | 'process';
  /** Current process state. */
  readonly state: ProcessState;
  /** True while the console (stdin/stdout) of a running instance is attached. */
  readonly isAttached: boolean;

  /** Sets the state and emits `state` when it changed. */
  setState(state: ProcessState): void;
  /** Does the instance (container) exist? The process environment: is the process alive? */
  exists(): Promise<boolean>;
  isRunning(): Promise<boolean>;
  /** Re-attach to an instance that is already running (boot, daemon restart); sets `running`. */
  attach(): Promise<void>;
  /** Create the instance without starting it (Docker: the container; process: nothing). */
  create(): Promise<void>;
  /**
   * Start (docs/protocol.md W15.6): if already running, adopt it (state `running`); else set
   * `starting`, (re)create, attach and start. Failure forces `stopping` then `offline` and rejects.
   */
  start(signal?: AbortSignal): Promise<void>;
  /** One stop attempt per the stop configuration (command/signal/native); does not wait. */
  stop(): Promise<void>;
  /**
   * Stop and wait up to `timeoutMs` for the instance to be gone. On timeout: terminate with SIGKILL
   * when `terminate`, else reject with an Error whose `code` is `STOP_TIMEOUT`.
   */
  waitForStop(timeoutMs: number, terminate: boolean, signal?: AbortSignal): Promise<void>;
  /** Kill with the given signal; sets `stopping` then `offline` (does not wait for the exit). */
  terminate(signal: NodeJS.Signals): Promise<void>;
  /** Write one console line (plus newline) to stdin. Rejects with "not attached to instance". */
  sendCommand(command: string): Promise<void>;
  /** The last `lines` lines of the console history of the current run (oldest first). */
  readLog(lines: number): Promise<string[]>;
  /** How the last run ended (crash detection, docs/protocol.md W10.2). */
  exitState(): Promise<ExitState>;
  /** Remove the instance (container) entirely; missing is fine. */
  destroy(): Promise<void>;
  /** Apply changed limits live (sync, docs/protocol.md W13.2); ignored when there is no instance. */
  inSituUpdate(): Promise<void>;
  /** Run the egg's install script (docs/protocol.md W13.1, W15.10); resolves with whether it succeeded. */
  runInstaller(options: InstallerOptions): Promise<boolean>;
  /** Release timers, streams and listeners; the instance itself keeps running (daemon shutdown). */
  detach(): Promise<void>;
}

export type EnvironmentFactory = (ctx: EnvironmentContext) => Environment;
