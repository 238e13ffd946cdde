import { EventEmitter } from 'node:events';
import { mkdirSync } from 'node:fs';
import type Dockerode from 'dockerode';
import type {
  Environment,
  EnvironmentContext,
  ExitState,
  InstallerOptions,
  ProcessState,
} from '../environment.js';
import { EnvironmentState } from '../state.js';
import { stopAndWait } from '../stop.js';
import { DockerConsole, readContainerLog } from './console.js';
import { ServerContainer } from './container.js';
import { runDockerInstaller } from './installer.js';
import { DockerPower } from './power.js';
import { ContainerStats } from './stats.js';

/**
 * The Docker environment: one container per server, named `<container_name_prefix><uuid>`,
 * re-created at every start, console through an attachment made before the container starts. A
 * node only touches containers labelled with its own node uuid.
 *
 * Split as the Go daemon splits its environment package, each part one concept, composed here:
 * `container.ts` (lookup with the ownership check, create, remove, limits; the network in
 * `network.ts`), `console.ts` (attachment, input, log), `power.ts` (start, stop, kill, the stop
 * wait), `stats.ts` (the stats loop), `installer.ts` (the installer container). The state, the
 * stop-and-wait sequence and the stats loop are shared with the process environment.
 */
export class DockerEnvironment extends EventEmitter implements Environment {
  readonly kind = 'docker' as const;
  private readonly status: EnvironmentState;
  private readonly container: ServerContainer;
  private readonly console: DockerConsole;
  private readonly stats: ContainerStats;
  private readonly power: DockerPower;
  /**
   * Serialises the operations that inspect, remove and create the container (create, start,
   * destroy): POST /api/servers creates the container in the background, and a start arriving
   * meanwhile must not try to create a second container of the same name.
   */
  private lifecycle: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly ctx: EnvironmentContext,
    private readonly docker: Dockerode,
  ) {
    super();
    this.status = new EnvironmentState(this, ctx.logger);
    this.container = new ServerContainer(ctx, docker);
    this.stats = new ContainerStats(
      ctx.logger,
      () => this.status.current !== 'offline' && this.console.attached,
      (stats) => this.emit('stats', stats),
    );
    this.console = new DockerConsole(ctx, this.status, {
      line: (line) => this.emit('console', line),
      detached: () => this.stats.stop(),
    });
    this.power = new DockerPower({
      ctx,
      docker,
      state: this.status,
      container: this.container,
      console: this.console,
      stats: this.stats,
      adopt: () => this.attach(),
    });
  }

  get state(): ProcessState {
    return this.status.current;
  }

  get isAttached(): boolean {
    return this.console.attached;
  }

  /** The server container's name. */
  get containerName(): string {
    return this.container.name;
  }

  setState(state: ProcessState): void {
    this.status.set(state);
  }

  async exists(): Promise<boolean> {
    return (await this.container.inspect()) !== null;
  }

  async isRunning(): Promise<boolean> {
    const info = await this.container.inspect();
    return info?.State.Running === true;
  }

  async attach(): Promise<void> {
    const info = await this.container.inspect();
    if (!info) throw new Error(`cannot attach: container ${this.containerName} does not exist`);
    if (!info.State.Running) {
      // Nothing to attach to: a stopped container's attach would only wait for its next start.
      this.status.set('offline');
      return;
    }
    if (!this.console.attached) {
      const container = this.docker.getContainer(info.Id);
      await this.console.attach(container);
      const startedAt = Date.parse(info.State.StartedAt);
      this.stats.start(container, Number.isFinite(startedAt) ? startedAt : Date.now());
    }
    this.status.set('running');
  }

  async detach(): Promise<void> {
    this.console.release();
  }

  create(): Promise<void> {
    // The data directory first (Go: EnsureDataDirectoryExists in CreateEnvironment), synchronously:
    // the Panel (and our tests) may put files there as soon as POST /api/servers has answered, and
    // the engine would otherwise create a missing bind source itself.
    try {
      mkdirSync(this.ctx.dataDirectory, { recursive: true, mode: 0o755 });
    } catch (err) {
      return Promise.reject(new Error(`creating the data directory: ${(err as Error).message}`, { cause: err }));
    }
    return this.exclusive(async () => {
      if (await this.container.inspect()) return;
      await this.container.create();
    });
  }

  start(signal?: AbortSignal): Promise<void> {
    return this.exclusive(() => this.power.start(signal));
  }

  stop(): Promise<void> {
    return this.power.stop();
  }

  waitForStop(timeoutMs: number, terminate: boolean, signal?: AbortSignal): Promise<void> {
    return stopAndWait(this.power, timeoutMs, terminate, signal);
  }

  terminate(signal: NodeJS.Signals): Promise<void> {
    return this.power.terminate(signal);
  }

  sendCommand(command: string): Promise<void> {
    return this.console.sendCommand(command);
  }

  async readLog(lines: number): Promise<string[]> {
    if (lines <= 0) return [];
    const info = await this.container.inspect();
    return info ? readContainerLog(this.docker, info, lines) : [];
  }

  exitState(): Promise<ExitState> {
    return this.power.exitState();
  }

  destroy(): Promise<void> {
    this.console.release();
    return this.exclusive(async () => {
      this.console.release();
      const info = await this.container.inspect();
      if (this.status.current !== 'offline') this.status.set('stopping');
      if (info) await this.container.remove(info);
      this.status.set('offline');
    });
  }

  inSituUpdate(): Promise<void> {
    return this.container.updateResources();
  }

  runInstaller(options: InstallerOptions): Promise<boolean> {
    return runDockerInstaller(this.ctx, this.docker, this.container, options);
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lifecycle.then(fn, fn);
    this.lifecycle = run.catch(() => {});
    return run;
  }
}
