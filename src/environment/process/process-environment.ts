import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { mkdir, stat } from 'node:fs/promises';
import { constants as osConstants, totalmem } from 'node:os';
import { join } from 'node:path';
import { settlesBefore } from '../abortable.js';
import { LineSplitter } from '../console-lines.js';
import type { Environment, EnvironmentContext, ExitState, InstallerOptions, ProcessState } from '../environment.js';
import { EnvironmentState } from '../state.js';
import { STATS_INTERVAL_MS, sampleEvery } from '../stats-loop.js';
import { isStopCommand, stopAndWait, stopSignal } from '../stop.js';
import { ConsoleLog } from './console-log.js';
import { buildChildEnvironment, expandInvocation, killGroup } from './helpers.js';
import { runProcessInstaller } from './installer.js';
import { ProcessTreeStats } from './proc-stats.js';

/** After the main process exited: how long to wait for its output pipes to close. */
const CLOSE_GRACE_MS = 2000;
/** terminate(): how long to wait for the exit before reporting `offline` anyway. */
const TERMINATE_WAIT_MS = 2000;
/** detach(): SIGTERM, then SIGKILL after this long. */
const DETACH_GRACE_MS = 5000;
/** destroy(): upper bound of the wait for the killed tree. */
const DESTROY_WAIT_MS = 10_000;

interface Run {
  child: ChildProcess;
  /** Pid of `/bin/sh`, leader of the run's session and process group. */
  pid: number;
  startedAt: number;
  /** The main process has exited. */
  exited: boolean;
  /** Output flushed, state `offline` reported, `done` resolved. */
  finished: boolean;
  done: Promise<void>;
  resolveDone: () => void;
  stdout: LineSplitter;
  stderr: LineSplitter;
  /** Aborted when the run's stats loop must end (the main process exited). */
  stats: AbortController;
  closeTimer: NodeJS.Timeout | null;
}

/**
 * The `process` environment (docs/protocol.md D9.3): runs a server's startup command as a child
 * process in its data directory, for machines without Docker (development, tests, the demo), with
 * the console, stop and state rules of the Docker environment
 * (docs/protocol.md W9.1, W11, W15.5–W15.7).
 *
 * - The command is `/bin/sh -c <invocation>` with `{{VAR}}` turned into `${VAR}` (see
 *   `expandInvocation`), cwd = data directory, env = the server's variables plus `HOME` (the data
 *   directory) and the daemon's `PATH`. The child gets its own session/process group
 *   (`detached: true`), so signals reach the whole tree; when the main process exits, whatever is
 *   left of its group is killed, like a container whose init died.
 * - There is no isolation at all: the server runs as the daemon's user with the daemon's view of the
 *   file system and network; limits are not enforced (memory_limit only shows up in the stats).
 * - `running` is not set here except when `start`/`attach` find a live child: the server sets it
 *   when a console line matches `startup.done`.
 * - The console history lives in `<system.log_directory>/console/<uuid>.log` (truncated at start,
 *   capped, see ConsoleLog), so `readLog` survives a daemon restart. The child itself does not: it
 *   is stopped at daemon shutdown (`detach`), and `attach` after a restart finds nothing.
 */
export class ProcessEnvironment extends EventEmitter implements Environment {
  readonly kind = 'process' as const;
  private readonly status: EnvironmentState;
  private run: Run | null = null;
  /** Before any run in this daemon's life: as Go reports a missing container (exit 1, no OOM). */
  private lastExit: ExitState = { exitCode: 1, oomKilled: false };
  private readonly consoleLog: ConsoleLog;

  constructor(private readonly ctx: EnvironmentContext) {
    super();
    this.status = new EnvironmentState(this, ctx.logger);
    this.consoleLog = new ConsoleLog(
      join(ctx.config().system.log_directory, 'console', `${ctx.uuid}.log`),
      ctx.logger,
    );
  }

  get state(): ProcessState {
    return this.status.current;
  }

  get isAttached(): boolean {
    const run = this.liveRun();
    return run !== null && run.child.stdin?.writable === true;
  }

  /** Path of the per-server console log file. */
  get consoleLogFile(): string {
    return this.consoleLog.file;
  }

  setState(state: ProcessState): void {
    this.status.set(state);
  }

  async exists(): Promise<boolean> {
    return this.liveRun() !== null;
  }

  async isRunning(): Promise<boolean> {
    return this.liveRun() !== null;
  }

  /** Only a child of this very daemon can be attached to; after a restart there is none. */
  async attach(): Promise<void> {
    if (this.liveRun()) this.setState('running');
  }

  async create(): Promise<void> {
    await mkdir(this.ctx.dataDirectory, { recursive: true });
  }

  async start(signal?: AbortSignal): Promise<void> {
    if (this.liveRun()) {
      this.setState('running');
      return;
    }
    // A run whose process exited but whose output is still being drained: let it finish first.
    if (this.run) await this.run.done;
    this.setState('starting');
    try {
      signal?.throwIfAborted();
      const dir = await stat(this.ctx.dataDirectory).catch(() => null);
      if (!dir?.isDirectory()) throw new Error(`server data directory ${this.ctx.dataDirectory} does not exist`);
      signal?.throwIfAborted();
      this.consoleLog.reset();
      await this.spawnRun();
    } catch (err) {
      this.ctx.logger.warn({ err }, 'failed to start the server process');
      this.status.failStart();
      throw err;
    }
  }

  async stop(): Promise<void> {
    const run = this.liveRun();
    if (!run) {
      this.setState('offline');
      return;
    }
    const { type, value } = this.ctx.processConfiguration().stop;
    if (type === 'command' && this.isAttached) {
      this.setState('stopping');
      try {
        await this.write(run, `${value}\n`);
      } catch (err) {
        this.ctx.logger.debug({ err }, 'could not write the stop command (process ending)');
      }
      return;
    }
    const sig = type === 'signal' ? stopSignal(value) : 'SIGTERM';
    this.setState('stopping');
    this.signalGroup(run, sig);
  }

  waitForStop(timeoutMs: number, terminate: boolean, signal?: AbortSignal): Promise<void> {
    return stopAndWait(
      {
        stop: () => this.stop(),
        // Gone once the run is over: exited and its output drained (`done`).
        waitGone: (until) => (this.run ? settlesBefore(this.run.done, until) : Promise.resolve(true)),
        terminate: (sig) => this.terminate(sig),
        logger: this.ctx.logger,
      },
      timeoutMs,
      terminate,
      signal,
    );
  }

  async terminate(signal: NodeJS.Signals): Promise<void> {
    const run = this.liveRun();
    if (!run) {
      this.status.settleOffline();
      return;
    }
    this.setState('stopping');
    this.signalGroup(run, signal);
    await settlesBefore(run.done, AbortSignal.timeout(TERMINATE_WAIT_MS));
    // Go reports offline right after the kill; we give the exit a moment to be observed first.
    this.setState('offline');
  }

  async sendCommand(command: string): Promise<void> {
    const run = this.liveRun();
    if (!run || !this.isAttached) throw new Error('not attached to instance');
    if (isStopCommand(this.ctx.processConfiguration(), command)) this.setState('stopping');
    await this.write(run, `${command}\n`);
  }

  async readLog(lines: number): Promise<string[]> {
    return this.consoleLog.readLast(lines);
  }

  async exitState(): Promise<ExitState> {
    return { ...this.lastExit };
  }

  /** Kills the whole tree, waits for it, and removes the console history (like a removed container's log). */
  async destroy(): Promise<void> {
    const run = this.run;
    if (run) {
      if (!run.exited) {
        this.setState('stopping');
        this.signalGroup(run, 'SIGKILL');
      }
      await settlesBefore(run.done, AbortSignal.timeout(DESTROY_WAIT_MS));
    }
    this.consoleLog.remove();
  }

  /** Limits are not enforced for a plain process: nothing to update. */
  async inSituUpdate(): Promise<void> {}

  /** The install script as a plain process (see runProcessInstaller). */
  runInstaller(options: InstallerOptions): Promise<boolean> {
    return runProcessInstaller(this.ctx, options);
  }

  /**
   * Daemon shutdown: process-environment servers do not outlive the daemon (docs/protocol.md D9.1),
   * so the child is stopped (SIGTERM, SIGKILL after 5 s). Listeners are removed first, so the
   * shutdown does not report `stopping`/`offline` (the server keeps its persisted state and
   * restores it at boot).
   */
  async detach(): Promise<void> {
    this.removeAllListeners();
    const run = this.liveRun();
    if (run) {
      this.signalGroup(run, 'SIGTERM');
      if (!(await settlesBefore(run.done, AbortSignal.timeout(DETACH_GRACE_MS)))) {
        this.signalGroup(run, 'SIGKILL');
        await settlesBefore(run.done, AbortSignal.timeout(DETACH_GRACE_MS));
      }
    } else if (this.run) {
      await settlesBefore(this.run.done, AbortSignal.timeout(DETACH_GRACE_MS));
    }
    this.consoleLog.close();
  }

  // --- internals -----------------------------------------------------------------------------

  private liveRun(): Run | null {
    return this.run && !this.run.exited ? this.run : null;
  }

  private signalGroup(run: Run, signal: NodeJS.Signals): void {
    try {
      killGroup(run.pid, signal);
    } catch (err) {
      this.ctx.logger.warn({ err, signal }, 'could not signal the server process group');
    }
  }

  private write(run: Run, data: string): Promise<void> {
    const stdin = run.child.stdin;
    if (!stdin?.writable) return Promise.reject(new Error('not attached to instance'));
    return new Promise<void>((resolve, reject) => {
      stdin.write(data, (err) => (err ? reject(err) : resolve()));
    });
  }

  private onLine = (line: string): void => {
    this.consoleLog.append(line);
    this.emit('console', line);
  };

  private async spawnRun(): Promise<void> {
    const env = buildChildEnvironment(this.ctx.environmentVariables(), this.ctx.dataDirectory);
    const command = expandInvocation(this.ctx.settings().invocation);
    const child = spawn('/bin/sh', ['-c', command], {
      cwd: this.ctx.dataDirectory,
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
    });
    let resolveDone!: () => void;
    const done = new Promise<void>((resolve) => (resolveDone = resolve));
    const run: Run = {
      child,
      pid: child.pid ?? -1,
      startedAt: Date.now(),
      exited: false,
      finished: false,
      done,
      resolveDone,
      stdout: new LineSplitter(this.onLine),
      stderr: new LineSplitter(this.onLine),
      stats: new AbortController(),
      closeTimer: null,
    };
    child.on('error', (err) => this.ctx.logger.debug({ err }, 'server process error'));
    child.stdin?.on('error', (err) => this.ctx.logger.debug({ err }, 'server process stdin error'));
    child.stdout?.on('data', (chunk: Buffer) => {
      run.stdout.push(chunk);
      this.consoleLog.flush();
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      run.stderr.push(chunk);
      this.consoleLog.flush();
    });
    child.on('exit', (code, sig) => this.onExit(run, code, sig));
    child.on('close', () => this.finish(run));

    try {
      await new Promise<void>((resolve, reject) => {
        const onSpawn = (): void => {
          child.off('error', onError);
          resolve();
        };
        const onError = (err: Error): void => {
          child.off('spawn', onSpawn);
          reject(err);
        };
        child.once('spawn', onSpawn);
        child.once('error', onError);
      });
    } catch (err) {
      // Nothing runs: this run must never report anything.
      run.exited = true;
      run.finished = true;
      child.stdin?.destroy();
      child.stdout?.destroy();
      child.stderr?.destroy();
      resolveDone();
      throw err;
    }
    run.pid = child.pid ?? -1;
    run.startedAt = Date.now();
    this.run = run;
    this.ctx.logger.debug({ pid: run.pid, command }, 'server process started');
    this.startStats(run);
  }

  private onExit(run: Run, code: number | null, sig: NodeJS.Signals | null): void {
    if (run.exited) return;
    run.exited = true;
    const exitCode = code ?? (sig ? 128 + (osConstants.signals[sig] ?? 0) : 1);
    this.lastExit = { exitCode, oomKilled: false };
    this.ctx.logger.debug({ pid: run.pid, code, signal: sig }, 'server process exited');
    run.stats.abort();
    // Like a container whose init died: the rest of the tree goes too.
    this.signalGroup(run, 'SIGKILL');
    // Normally `close` follows at once; a descendant outside the group may keep the pipes open.
    run.closeTimer = setTimeout(() => this.finish(run), CLOSE_GRACE_MS);
  }

  private finish(run: Run): void {
    if (run.finished) return;
    run.finished = true;
    if (!run.exited) this.onExit(run, run.child.exitCode, run.child.signalCode);
    if (run.closeTimer) clearTimeout(run.closeTimer);
    run.closeTimer = null;
    run.stats.abort();
    run.stdout.flush();
    run.stderr.flush();
    run.child.stdin?.destroy();
    run.child.stdout?.destroy();
    run.child.stderr?.destroy();
    this.consoleLog.close();
    const current = this.run === run;
    if (current) this.run = null;
    run.resolveDone();
    if (current) this.setState('offline');
  }

  private startStats(run: Run): void {
    const tree = new ProcessTreeStats(run.pid, run.startedAt);
    void sampleEvery(STATS_INTERVAL_MS, run.stats.signal, async (signal) => {
      try {
        const stats = await tree.sample(this.memoryLimitBytes());
        // A sample that finished after the exit is dropped.
        if (!signal.aborted && this.run === run) this.emit('stats', stats);
      } catch (err) {
        this.ctx.logger.debug({ err }, 'stats sample failed');
      }
    });
  }

  private memoryLimitBytes(): number {
    const mb = this.ctx.settings().build.memory_limit;
    return mb > 0 ? mb * 1_000_000 : totalmem();
  }
}
