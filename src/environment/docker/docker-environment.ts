import { EventEmitter } from 'node:events';
import { mkdirSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import type Dockerode from 'dockerode';
import { WingsError } from '../../errors.js';
import { LineSplitter } from '../console-lines.js';
import type {
  Environment,
  EnvironmentContext,
  ExitState,
  InstallerOptions,
  ProcessState,
} from '../environment.js';
import {
  NODE_LABEL,
  containerName,
  containerResources,
  installerContainerName,
  installerContainerOptions,
  isIsolatedNetworkMode,
  outgoingIpNetworkName,
  serverContainerOptions,
  stopSignal,
} from './container-config.js';
import { engineMessage, isNotFound, statusCode } from './errors.js';
import { ensureImage } from './images.js';
import { cpuSample, toEnvironmentStats, type CpuSample } from './stats.js';

const ATTACH_TIMEOUT_MS = 30_000;
const START_TIMEOUT_MS = 30_000;
const STATS_INTERVAL_MS = 1_000;
const STOP_POLL_MS = 150;
const EXIT_STATE_WAIT_MS = 5_000;

interface Attachment {
  stream: Duplex;
  splitter: LineSplitter;
  /** Set when we close the stream ourselves (detach, failed start): its end is not an exit. */
  released: boolean;
  ended: boolean;
}

/** Wraps an engine error with what we were doing; a dead engine gets a message that says so. */
function dockerError(action: string, err: unknown): Error {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'ECONNREFUSED' || code === 'ENOENT' || code === 'ECONNRESET' || code === 'EPIPE') {
    return new Error(`${action}: Docker engine unreachable (${engineMessage(err)})`, { cause: err });
  }
  return new Error(`${action}: ${engineMessage(err)}`, { cause: err });
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string, onLate?: (value: T) => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let timedOut = false;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          timedOut = true;
          reject(new Error(`${what}: no answer from the Docker engine within ${ms / 1000} s`));
        }, ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
    if (timedOut && onLate) promise.then(onLate, () => {});
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Splits a non-TTY multiplexed log buffer (8-byte frame headers) into its payloads. */
function demux(buf: Buffer): Buffer {
  const parts: Buffer[] = [];
  let offset = 0;
  while (offset + 8 <= buf.length) {
    const size = buf.readUInt32BE(offset + 4);
    parts.push(buf.subarray(offset + 8, offset + 8 + size));
    offset += 8 + size;
  }
  return Buffer.concat(parts);
}

/**
 * The Docker environment of daemon.md §6: one container per server, named
 * `<container_name_prefix><uuid>`, re-created at every start, console through an attachment made
 * before the container starts. A node only touches containers labelled with its own node uuid.
 */
export class DockerEnvironment extends EventEmitter implements Environment {
  readonly kind = 'docker' as const;
  private current: ProcessState = 'offline';
  private attachment: Attachment | null = null;
  private statsToken: object | null = null;
  private statsTimer: NodeJS.Timeout | null = null;
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
  }

  get state(): ProcessState {
    return this.current;
  }

  get isAttached(): boolean {
    return this.attachment !== null;
  }

  /** The server container's name. */
  get containerName(): string {
    return containerName(this.ctx.config(), this.ctx.uuid);
  }

  setState(state: ProcessState): void {
    if (state === this.current) return;
    const previous = this.current;
    this.current = state;
    this.ctx.logger.debug({ from: previous, to: state }, 'process state changed');
    this.emit('state', state);
  }

  // ---------------------------------------------------------------- container lookup / ownership

  /**
   * Inspects a container by name. Missing ⇒ null. A container of that name that another node
   * owns is an error: we never touch it. Containers with no node label but the Pterodactyl service
   * label are the Go daemon's (same names when no prefix is configured): those we adopt.
   */
  private async inspectOwned(name: string): Promise<Dockerode.ContainerInspectInfo | null> {
    let info: Dockerode.ContainerInspectInfo;
    try {
      info = await this.docker.getContainer(name).inspect();
    } catch (err) {
      if (isNotFound(err)) return null;
      throw dockerError(`inspecting container ${name}`, err);
    }
    const config = this.ctx.config();
    const labels = info.Config?.Labels ?? {};
    const owner = labels[NODE_LABEL];
    const legacy = owner === undefined && config.docker.container_name_prefix === '' && labels.Service === 'Pterodactyl';
    if (owner !== config.uuid && !legacy) {
      throw new WingsError(
        'CONFLICT',
        `container ${name} belongs to another node (${NODE_LABEL}=${owner ?? '<none>'}), not touching it`,
      );
    }
    return info;
  }

  private inspect(): Promise<Dockerode.ContainerInspectInfo | null> {
    return this.inspectOwned(this.containerName);
  }

  async exists(): Promise<boolean> {
    return (await this.inspect()) !== null;
  }

  async isRunning(): Promise<boolean> {
    const info = await this.inspect();
    return info?.State.Running === true;
  }

  // ---------------------------------------------------------------- console attachment

  private async attachTo(container: Dockerode.Container, startedAt: number | null): Promise<void> {
    const raw = await withTimeout(
      container.attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true }),
      ATTACH_TIMEOUT_MS,
      'attaching to the container',
      (late) => (late as unknown as Duplex).destroy(),
    ).catch((err: unknown) => {
      throw err instanceof Error && err.message.startsWith('attaching') ? err : dockerError('attaching to the container', err);
    });
    const stream = raw as unknown as Duplex;
    this.releaseAttachment();
    const attachment: Attachment = {
      stream,
      splitter: new LineSplitter((line) => this.emit('console', line)),
      released: false,
      ended: false,
    };
    stream.on('data', (chunk: Buffer | string) => {
      attachment.splitter.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
    });
    stream.on('error', (err) => {
      if (!attachment.released) this.ctx.logger.warn({ err: err.message }, 'console stream error');
    });
    const onEnd = (): void => {
      if (attachment.ended) return;
      attachment.ended = true;
      attachment.splitter.flush();
      if (this.attachment !== attachment) return;
      this.attachment = null;
      this.stopStats();
      if (!attachment.released) this.setState('offline');
    };
    stream.on('end', onEnd);
    stream.on('close', onEnd);
    this.attachment = attachment;
    if (startedAt !== null) this.startStats(container, startedAt);
  }

  /** Close our console stream without treating it as an exit. */
  private releaseAttachment(): void {
    const attachment = this.attachment;
    this.stopStats();
    if (!attachment) return;
    this.attachment = null;
    attachment.released = true;
    attachment.stream.destroy();
  }

  async attach(): Promise<void> {
    const info = await this.inspect();
    if (!info) throw new Error(`cannot attach: container ${this.containerName} does not exist`);
    if (!info.State.Running) {
      // Nothing to attach to: a stopped container's attach would only wait for its next start.
      this.setState('offline');
      return;
    }
    if (!this.attachment) {
      const startedAt = Date.parse(info.State.StartedAt);
      await this.attachTo(this.docker.getContainer(info.Id), Number.isFinite(startedAt) ? startedAt : Date.now());
    }
    this.setState('running');
  }

  async detach(): Promise<void> {
    this.releaseAttachment();
  }

  // ---------------------------------------------------------------- stats

  private startStats(container: Dockerode.Container, startedAt: number): void {
    this.stopStats();
    const token = {};
    this.statsToken = token;
    let previous: CpuSample | null = null;
    const tick = async (): Promise<void> => {
      this.statsTimer = null;
      if (this.statsToken !== token) return;
      if (this.current === 'offline' || !this.attachment) {
        this.stopStats();
        return;
      }
      try {
        const sample = await withTimeout(container.stats({ stream: false, 'one-shot': true }), 10_000, 'stats');
        if (this.statsToken !== token) return;
        this.emit('stats', toEnvironmentStats(sample, previous, Date.now() - startedAt));
        previous = cpuSample(sample);
      } catch (err) {
        this.ctx.logger.debug({ err: engineMessage(err) }, 'stats sample failed');
      }
      if (this.statsToken === token) {
        this.statsTimer = setTimeout(() => void tick(), STATS_INTERVAL_MS);
        this.statsTimer.unref();
      }
    };
    this.statsTimer = setTimeout(() => void tick(), 0);
    this.statsTimer.unref();
  }

  private stopStats(): void {
    this.statsToken = null;
    if (this.statsTimer) clearTimeout(this.statsTimer);
    this.statsTimer = null;
  }

  // ---------------------------------------------------------------- create / start

  /** `force_outgoing_ip`: a dedicated bridge network per default IP (§6.2); never in none/host mode. */
  private async networkMode(): Promise<string> {
    const config = this.ctx.config();
    const mode = config.docker.network.network_mode;
    const allocations = this.ctx.settings().allocations;
    if (isIsolatedNetworkMode(mode) || !allocations.force_outgoing_ip || allocations.default.ip === '') return mode;
    const ip = allocations.default.ip;
    const name = outgoingIpNetworkName(ip);
    try {
      await this.docker.getNetwork(name).inspect();
    } catch (err) {
      if (!isNotFound(err)) throw dockerError(`inspecting network ${name}`, err);
      try {
        await this.docker.createNetwork({
          Name: name,
          Driver: 'bridge',
          EnableIPv6: false,
          Internal: false,
          Attachable: false,
          Ingress: false,
          Options: {
            encryption: 'false',
            'com.docker.network.bridge.default_bridge': 'false',
            'com.docker.network.host_ipv4': ip,
          },
        });
      } catch (createErr) {
        if (statusCode(createErr) !== 409) throw dockerError(`creating network ${name}`, createErr);
      }
    }
    return name;
  }

  private async createContainer(signal?: AbortSignal): Promise<Dockerode.Container> {
    const settings = this.ctx.settings();
    const image = await ensureImage(this.docker, this.ctx, settings.container.image ?? '', signal);
    signal?.throwIfAborted();
    const options = serverContainerOptions({
      config: this.ctx.config(),
      settings,
      uuid: this.ctx.uuid,
      dataDirectory: this.ctx.dataDirectory,
      env: this.ctx.environmentVariables(),
      networkMode: await this.networkMode(),
      logger: this.ctx.logger,
    });
    options.Image = image;
    try {
      return await this.docker.createContainer(options);
    } catch (err) {
      throw dockerError(`creating container ${options.name}`, err);
    }
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lifecycle.then(fn, fn);
    this.lifecycle = run.catch(() => {});
    return run;
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
      if (await this.inspect()) return;
      await this.createContainer();
    });
  }

  private async removeContainer(info: Dockerode.ContainerInspectInfo): Promise<void> {
    try {
      await this.docker.getContainer(info.Id).remove({ force: true, v: true });
    } catch (err) {
      if (!isNotFound(err) && statusCode(err) !== 409) throw dockerError(`removing container ${info.Name}`, err);
    }
  }

  start(signal?: AbortSignal): Promise<void> {
    return this.exclusive(() => this.startNow(signal));
  }

  private async startNow(signal?: AbortSignal): Promise<void> {
    const existing = await this.inspect();
    if (existing?.State.Running) {
      await this.attach();
      return;
    }
    this.setState('starting');
    try {
      signal?.throwIfAborted();
      // Re-created at every start so Panel changes take effect (§6.7); this also clears the log.
      if (existing) await this.removeContainer(existing);
      const container = await this.createContainer(signal);
      signal?.throwIfAborted();
      await this.attachTo(container, null);
      await withTimeout(container.start(), START_TIMEOUT_MS, 'starting the container').catch((err: unknown) => {
        throw err instanceof Error && err.message.startsWith('starting') ? err : dockerError('starting the container', err);
      });
      if (this.attachment) this.startStats(container, Date.now());
    } catch (err) {
      this.releaseAttachment();
      this.setState('stopping');
      this.setState('offline');
      throw err;
    }
  }

  // ---------------------------------------------------------------- console input

  private write(text: string): Promise<void> {
    const attachment = this.attachment;
    if (!attachment) return Promise.reject(new Error('not attached to instance'));
    return new Promise((resolve, reject) => {
      attachment.stream.write(text, (err) => (err ? reject(new Error(`writing to the console: ${err.message}`)) : resolve()));
    });
  }

  async sendCommand(command: string): Promise<void> {
    if (!this.attachment) throw new Error('not attached to instance');
    const stop = this.ctx.processConfiguration().stop;
    if (stop.type === 'command' && command === stop.value) this.setState('stopping');
    await this.write(`${command}\n`);
  }

  // ---------------------------------------------------------------- stopping

  async stop(): Promise<void> {
    const stop = this.ctx.processConfiguration().stop;
    if (stop.type === '' || stop.type === 'signal') {
      if (stop.type === '') this.ctx.logger.warn('no stop configuration for this server, using termination procedure');
      await this.terminate(stopSignal(stop.value));
      return;
    }
    if (this.current !== 'offline') this.setState('stopping');
    if (stop.type === 'command' && this.attachment) {
      await this.sendCommand(stop.value);
      return;
    }
    // Native stop: the image's stop signal; waiting (indefinitely) is left to waitForStop.
    const info = await this.inspect();
    if (!info) {
      this.releaseAttachment();
      this.setState('offline');
      return;
    }
    if (!info.State.Running) return;
    const signal = (info.Config as { StopSignal?: string }).StopSignal || 'SIGTERM';
    try {
      await this.docker.getContainer(info.Id).kill({ signal });
    } catch (err) {
      if (isNotFound(err)) {
        this.releaseAttachment();
        this.setState('offline');
        return;
      }
      if (statusCode(err) === 409) return; // exited in the meantime
      throw dockerError('stopping the container', err);
    }
  }

  /**
   * Polls until the container is not running (or gone). False when `signal` aborted first. The
   * end of the attached console stream (state `offline`) wakes the poll at once, so the engine is
   * asked again right away instead of a poll interval later.
   */
  private async waitNotRunning(signal: AbortSignal): Promise<boolean> {
    for (;;) {
      if (signal.aborted) return false;
      const info = await this.inspect();
      if (!info || !info.State.Running) return true;
      await new Promise<void>((resolve) => {
        const onState = (state: ProcessState): void => {
          if (state === 'offline') done();
        };
        const done = (): void => {
          clearTimeout(timer);
          signal.removeEventListener('abort', done);
          this.off('state', onState);
          resolve();
        };
        const timer = setTimeout(done, STOP_POLL_MS);
        signal.addEventListener('abort', done, { once: true });
        this.on('state', onState);
      });
    }
  }

  async waitForStop(timeoutMs: number, terminate: boolean, signal?: AbortSignal): Promise<void> {
    const timeout = AbortSignal.timeout(Math.max(0, timeoutMs));
    const deadline = signal ? AbortSignal.any([signal, timeout]) : timeout;
    const outcome = (): Error =>
      signal?.aborted
        ? new WingsError('CANCELLED', 'waiting for the server to stop was cancelled')
        : new WingsError('STOP_TIMEOUT', `server did not stop within ${Math.round(timeoutMs / 1000)} s`);

    let stopError: unknown = null;
    await new Promise<void>((resolve) => {
      const onAbort = (): void => resolve();
      deadline.addEventListener('abort', onAbort, { once: true });
      this.stop().then(
        () => {
          deadline.removeEventListener('abort', onAbort);
          resolve();
        },
        (err: unknown) => {
          deadline.removeEventListener('abort', onAbort);
          stopError = err;
          resolve();
        },
      );
    });
    if (stopError !== null && !deadline.aborted) throw stopError;

    let stopped = false;
    let waitError: unknown = null;
    try {
      stopped = await this.waitNotRunning(deadline);
    } catch (err) {
      waitError = err;
    }
    if (stopped) return;
    if (terminate) {
      this.ctx.logger.warn('server did not stop in time, killing it');
      await this.terminate('SIGKILL');
      // Give the engine a moment to reap it, so callers see the container stopped.
      await this.waitNotRunning(AbortSignal.timeout(10_000)).catch(() => false);
      return;
    }
    throw waitError ?? outcome();
  }

  async terminate(signal: NodeJS.Signals): Promise<void> {
    const info = await this.inspect();
    if (!info) {
      if (this.current !== 'offline') {
        this.setState('stopping');
        this.setState('offline');
      }
      return;
    }
    if (!info.State.Running) {
      if (this.current !== 'offline') {
        this.setState('stopping');
        this.setState('offline');
      }
      return;
    }
    this.setState('stopping');
    try {
      await this.docker.getContainer(info.Id).kill({ signal });
    } catch (err) {
      if (!isNotFound(err) && statusCode(err) !== 409) throw dockerError(`sending ${signal} to the container`, err);
    }
    this.setState('offline');
  }

  // ---------------------------------------------------------------- logs, exit state

  async readLog(lines: number): Promise<string[]> {
    if (lines <= 0) return [];
    const info = await this.inspect();
    if (!info) return [];
    let buf: Buffer;
    try {
      buf = await this.docker.getContainer(info.Id).logs({ stdout: true, stderr: true, follow: false, tail: lines });
    } catch (err) {
      // 409: the container is being removed (a start re-creates it): no history of a current run.
      if (isNotFound(err) || statusCode(err) === 409) return [];
      throw dockerError('reading the container log', err);
    }
    if (!Buffer.isBuffer(buf)) buf = Buffer.from(String(buf));
    if (!info.Config.Tty) buf = demux(buf);
    const out: string[] = [];
    const splitter = new LineSplitter((line) => out.push(line));
    splitter.push(buf);
    splitter.flush();
    return out.slice(-lines);
  }

  async exitState(): Promise<ExitState> {
    // The console stream can end a moment before the engine records the exit: until then the
    // container still shows as running with exit code 0. Wait (briefly) for the recorded exit.
    const deadline = Date.now() + EXIT_STATE_WAIT_MS;
    let info = await this.inspect();
    while (info?.State.Running && Date.now() < deadline) {
      await sleep(STOP_POLL_MS);
      info = await this.inspect();
    }
    if (!info) return { exitCode: 1, oomKilled: false };
    return { exitCode: info.State.ExitCode, oomKilled: info.State.OOMKilled };
  }

  // ---------------------------------------------------------------- destroy, live update

  destroy(): Promise<void> {
    this.releaseAttachment();
    return this.exclusive(async () => {
      this.releaseAttachment();
      const info = await this.inspect();
      if (this.current !== 'offline') this.setState('stopping');
      if (info) await this.removeContainer(info);
      this.setState('offline');
    });
  }

  async inSituUpdate(): Promise<void> {
    const info = await this.inspect();
    if (!info) return;
    const resources = containerResources(this.ctx.config(), this.ctx.settings().build, { pidsLimit: true });
    delete resources.OomKillDisable; // not updatable on a live container
    try {
      await this.docker.getContainer(info.Id).update(resources);
    } catch (err) {
      if (isNotFound(err)) return;
      throw dockerError('updating the container resources', err);
    }
  }

  // ---------------------------------------------------------------- installer

  async runInstaller(options: InstallerOptions): Promise<boolean> {
    const config = this.ctx.config();
    const name = installerContainerName(config, this.ctx.uuid);
    const installDirectory = path.join(config.system.tmp_directory, this.ctx.uuid);
    await mkdir(installDirectory, { recursive: true });
    await writeFile(path.join(installDirectory, 'install.sh'), options.script.replace(/\r\n/g, '\n'), { mode: 0o644 });

    let container: Dockerode.Container | null = null;
    const kill = (): void => {
      container?.kill({ signal: 'SIGKILL' }).catch(() => {});
    };
    try {
      options.signal.throwIfAborted();
      const image = await ensureImage(this.docker, this.ctx, options.image, options.signal);
      const old = await this.inspectOwned(name);
      if (old) await this.removeContainer(old);
      options.signal.throwIfAborted();

      const createOptions = installerContainerOptions({
        config,
        settings: this.ctx.settings(),
        uuid: this.ctx.uuid,
        dataDirectory: this.ctx.dataDirectory,
        installDirectory,
        env: this.ctx.environmentVariables(),
        image,
        entrypoint: options.entrypoint,
        networkMode: await this.networkMode(),
      });
      try {
        container = await this.docker.createContainer(createOptions);
      } catch (err) {
        throw dockerError(`creating installer container ${name}`, err);
      }

      const stream = (await withTimeout(
        container.attach({ stream: true, stdin: false, stdout: true, stderr: true }),
        ATTACH_TIMEOUT_MS,
        'attaching to the installer',
      )) as unknown as Duplex;
      const splitter = new LineSplitter((line) => options.onOutput(line));
      const ended = new Promise<void>((resolve) => {
        stream.on('data', (chunk: Buffer | string) => splitter.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk));
        stream.on('error', (err) => this.ctx.logger.warn({ err: err.message }, 'installer output stream error'));
        stream.on('end', resolve);
        stream.on('close', resolve);
      });

      options.signal.addEventListener('abort', kill, { once: true });
      if (options.signal.aborted) {
        stream.destroy();
        return false;
      }
      try {
        await container.start();
      } catch (err) {
        stream.destroy();
        throw dockerError('starting the installer container', err);
      }
      let result: { StatusCode?: number };
      try {
        result = (await container.wait()) as { StatusCode?: number };
      } catch (err) {
        stream.destroy();
        throw dockerError('waiting for the installer container', err);
      }
      await Promise.race([ended, sleep(2_000)]);
      splitter.flush();
      stream.destroy();
      const ok = result.StatusCode === 0 && !options.signal.aborted;
      this.ctx.logger.info({ exitCode: result.StatusCode, ok }, 'installer finished');
      return ok;
    } catch (err) {
      if (options.signal.aborted) return false;
      throw err;
    } finally {
      options.signal.removeEventListener('abort', kill);
      if (container) {
        await container.remove({ force: true, v: true }).catch((err: unknown) => {
          if (!isNotFound(err)) this.ctx.logger.warn({ err: engineMessage(err) }, 'removing the installer container failed');
        });
      }
      await rm(installDirectory, { recursive: true, force: true }).catch(() => {});
    }
  }
}
