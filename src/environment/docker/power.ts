import { setTimeout as sleep } from 'node:timers/promises';
import type Dockerode from 'dockerode';
import type { Logger } from 'pino';
import type { EnvironmentContext, ExitState } from '../environment.js';
import type { EnvironmentState } from '../state.js';
import { stopSignal, type Stoppable } from '../stop.js';
import type { DockerConsole } from './console.js';
import type { ServerContainer } from './container.js';
import { dockerError, engineCall, isNotFound, statusCode } from './errors.js';
import type { ContainerStats } from './stats.js';

const START_TIMEOUT_MS = 30_000;
/** While waiting for a stop: how often the engine is asked whether the container still runs. */
const STOP_POLL_MS = 150;
/** exitState(): how long to wait for the engine to record an exit the console has already seen. */
const EXIT_STATE_WAIT_MS = 5_000;

/** The parts of a Docker environment that starting and stopping work on. */
export interface PowerParts {
  ctx: EnvironmentContext;
  docker: Dockerode;
  state: EnvironmentState;
  container: ServerContainer;
  console: DockerConsole;
  stats: ContainerStats;
  /** Adopt a container that is already running: attach to it and report `running`. */
  adopt: () => Promise<void>;
}

/**
 * Starting, stopping and killing the server container, and what the engine says about its end.
 * It is the `Stoppable` of the shared stop-and-wait sequence (`waitForStop`).
 */
export class DockerPower implements Stoppable {
  constructor(private readonly p: PowerParts) {}

  get logger(): Logger {
    return this.p.ctx.logger;
  }

  /**
   * Adopt a running container; else `starting`, re-create it (so Panel changes take effect, and
   * its log is cleared), attach before starting it (no output is missed), start. Any failure forces
   * `stopping` then `offline` and rejects.
   */
  async start(signal?: AbortSignal): Promise<void> {
    const { container, console, stats, state } = this.p;
    const existing = await container.inspect();
    if (existing?.State.Running) {
      await this.p.adopt();
      return;
    }
    state.set('starting');
    try {
      signal?.throwIfAborted();
      if (existing) await container.remove(existing);
      const created = await container.create(signal);
      signal?.throwIfAborted();
      await console.attach(created);
      await engineCall('starting the container', created.start(), START_TIMEOUT_MS);
      if (console.attached) stats.start(created, Date.now());
    } catch (err) {
      console.release();
      state.failStart();
      throw err;
    }
  }

  /**
   * One stop attempt per the stop configuration. `signal` (or none configured, with a warning):
   * terminate with that signal. `command`: state `stopping`, the command written to the console
   * when attached. Otherwise the native stop: the image's stop signal, the wait left to the caller.
   */
  async stop(): Promise<void> {
    const { ctx, console, container, state } = this.p;
    const stop = ctx.processConfiguration().stop;
    if (stop.type === '' || stop.type === 'signal') {
      if (stop.type === '') ctx.logger.warn('no stop configuration for this server, using termination procedure');
      await this.terminate(stopSignal(stop.value));
      return;
    }
    if (state.current !== 'offline') state.set('stopping');
    if (stop.type === 'command' && console.attached) {
      await console.sendCommand(stop.value);
      return;
    }
    const info = await container.inspect();
    if (!info) {
      console.release();
      state.set('offline');
      return;
    }
    if (!info.State.Running) return;
    const signal = (info.Config as { StopSignal?: string }).StopSignal || 'SIGTERM';
    try {
      await this.p.docker.getContainer(info.Id).kill({ signal });
    } catch (err) {
      if (isNotFound(err)) {
        console.release();
        state.set('offline');
        return;
      }
      if (statusCode(err) === 409) return; // exited in the meantime
      throw dockerError('stopping the container', err);
    }
  }

  /**
   * Kill with `signal`: `stopping`, the kill, `offline` right away (the exit is not awaited). A
   * container that is missing or not running only settles the state to `offline`.
   */
  async terminate(signal: NodeJS.Signals): Promise<void> {
    const { state } = this.p;
    const info = await this.p.container.inspect();
    if (!info?.State.Running) {
      state.settleOffline();
      return;
    }
    state.set('stopping');
    try {
      await this.p.docker.getContainer(info.Id).kill({ signal });
    } catch (err) {
      if (!isNotFound(err) && statusCode(err) !== 409) throw dockerError(`sending ${signal} to the container`, err);
    }
    state.set('offline');
  }

  /**
   * Polls until the container is not running (or gone); false when `signal` aborted first. The end
   * of the attached console stream (state `offline`) wakes the poll at once, so the engine is asked
   * again right away instead of a poll interval later.
   */
  async waitGone(signal: AbortSignal): Promise<boolean> {
    let wake = new AbortController();
    const unwatch = this.p.state.watch((state) => {
      if (state === 'offline') wake.abort();
    });
    const onAbort = (): void => wake.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      for (;;) {
        if (signal.aborted) return false;
        const info = await this.p.container.inspect();
        if (!info?.State.Running) return true;
        if (wake.signal.aborted) wake = new AbortController();
        await sleep(STOP_POLL_MS, undefined, { signal: wake.signal }).catch(() => {});
      }
    } finally {
      unwatch();
      signal.removeEventListener('abort', onAbort);
    }
  }

  /** How the last run ended; a missing container counts as exit code 1 (as Go reports it). */
  async exitState(): Promise<ExitState> {
    // The console stream can end a moment before the engine records the exit: until then the
    // container still shows as running with exit code 0. Wait (briefly) for the recorded exit.
    const deadline = Date.now() + EXIT_STATE_WAIT_MS;
    let info = await this.p.container.inspect();
    while (info?.State.Running && Date.now() < deadline) {
      await sleep(STOP_POLL_MS);
      info = await this.p.container.inspect();
    }
    if (!info) return { exitCode: 1, oomKilled: false };
    return { exitCode: info.State.ExitCode, oomKilled: info.State.OOMKilled };
  }
}
