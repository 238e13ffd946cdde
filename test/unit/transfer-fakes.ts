/** Fakes for the transfer runner unit tests: Panel, environment, server registry, request body, logs. */
import { EventEmitter, once } from 'node:events';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import pino, { type Logger } from 'pino';
import { ConfigSchema, type Config } from '../../src/config/schema.js';
import type { Environment, EnvironmentContext, ExitState, ProcessState } from '../../src/environment/environment.js';
import { WingsError } from '../../src/errors.js';
import { PanelError, type PanelClient } from '../../src/panel/client.js';
import { parseServerConfiguration, type ServerConfigurationData } from '../../src/server/configuration.js';
import type { BusEvent } from '../../src/server/events.js';
import { ServerManager } from '../../src/server/manager.js';
import type { Server } from '../../src/server/server.js';
import type { IncomingBody, PartHandlers } from '../../src/transfer/incoming-body.js';
import { TransferManager, type TransferServers } from '../../src/transfer/manager.js';
import type { TransferPanel } from '../../src/transfer/report.js';
import type { TransferHandle } from '../../src/transfer/runner.js';
import { tmpDir } from '../helpers/tmp.js';
export { deferred } from '../helpers/deferred.js';

export const NODE_TOKEN = 'unit-test-node-token-0123456789abcdef0123456789abcdef';

/** The configuration the Panel serves for a server (only what the daemon reads). */
export function rawServer(uuid: string, build: { disk_space?: number } = {}): Record<string, unknown> {
  return { settings: { uuid, invocation: 'true', build }, process_configuration: {} };
}

/** The Panel: server configurations, and the outcome reports it received (answered by `answerReport`). */
export class FakePanel implements TransferPanel {
  readonly configs = new Map<string, unknown>();
  readonly reports: { uuid: string; success: boolean }[] = [];
  /** When set, the configuration call fails with it. */
  configError: Error | null = null;
  /** When set, the configuration call waits for it (a slow Panel). */
  configGate: Promise<void> | null = null;
  answerReport: (uuid: string, success: boolean) => Promise<void> = async () => {};
  configCalls = 0;
  private readonly reported = new EventEmitter();

  /** Resolves once the Panel received `n` outcome reports for the server. */
  async reportsFor(uuid: string, n = 1): Promise<{ uuid: string; success: boolean }[]> {
    const mine = () => this.reports.filter((r) => r.uuid === uuid);
    while (mine().length < n) await once(this.reported, 'report');
    return mine();
  }

  async getServerConfiguration(uuid: string, signal?: AbortSignal): Promise<unknown> {
    this.configCalls++;
    if (this.configGate) {
      const aborted = new Promise<never>((_, reject) => signal?.addEventListener('abort', () => reject(signal.reason), { once: true }));
      await Promise.race([this.configGate, aborted]);
    }
    if (this.configError) throw this.configError;
    if (!this.configs.has(uuid)) throw new PanelError(404, 'NotFound', 'no such server');
    return this.configs.get(uuid);
  }

  async setTransferStatus(uuid: string, success: boolean): Promise<void> {
    this.reports.push({ uuid, success });
    this.reported.emit('report');
    await this.answerReport(uuid, success);
  }
}

/** What every environment of a fixture does; tests replace the functions. */
export interface EnvironmentBehaviour {
  create: () => Promise<void>;
  waitForStop: (env: FakeEnvironment, signal?: AbortSignal) => Promise<void>;
}

/** An environment with no instance: states by hand, create/stop as the fixture's behaviour says. */
export class FakeEnvironment extends EventEmitter implements Environment {
  readonly kind = 'process' as const;
  state: ProcessState = 'offline';
  isAttached = false;
  created = 0;
  destroyed = 0;

  constructor(
    readonly ctx: EnvironmentContext,
    private readonly behaviour: EnvironmentBehaviour,
  ) {
    super();
  }

  setState(state: ProcessState): void {
    if (state === this.state) return;
    this.state = state;
    this.emit('state', state);
  }
  async exists(): Promise<boolean> {
    return this.created > this.destroyed;
  }
  async isRunning(): Promise<boolean> {
    return this.state === 'running';
  }
  async attach(): Promise<void> {}
  async create(): Promise<void> {
    await this.behaviour.create();
    this.created++;
  }
  async start(): Promise<void> {
    this.setState('running');
  }
  async stop(): Promise<void> {}
  async waitForStop(_timeoutMs: number, _terminate: boolean, signal?: AbortSignal): Promise<void> {
    await this.behaviour.waitForStop(this, signal);
  }
  async terminate(): Promise<void> {
    this.setState('offline');
  }
  async sendCommand(): Promise<void> {}
  async readLog(): Promise<string[]> {
    return [];
  }
  async exitState(): Promise<ExitState> {
    return { exitCode: 0, oomKilled: false };
  }
  async destroy(): Promise<void> {
    this.destroyed++;
  }
  async inSituUpdate(): Promise<void> {}
  async runInstaller(): Promise<boolean> {
    return true;
  }
  async detach(): Promise<void> {}
}

/** The real server registry, recording every event each server's bus publishes. */
export class RecordingServers implements TransferServers {
  readonly buses = new Map<string, BusEvent[]>();
  private readonly published = new EventEmitter();

  constructor(readonly inner: ServerManager) {}

  has(uuid: string): boolean {
    return this.inner.has(uuid);
  }
  get(uuid: string): Server | undefined {
    return this.inner.get(uuid);
  }
  instantiate(data: ServerConfigurationData): Server {
    const server = this.inner.instantiate(data);
    const events: BusEvent[] = [];
    this.buses.set(server.uuid, events);
    server.events.subscribe((e) => {
      events.push(e);
      this.published.emit('event');
    });
    return server;
  }
  add(server: Server): void {
    this.inner.add(server);
  }
  remove(uuid: string): void {
    this.inner.remove(uuid);
  }

  /** The data of every `event` published on the server's bus, in order. */
  named(uuid: string, event: string): unknown[] {
    return (this.buses.get(uuid) ?? []).filter((e) => e.event === event).map((e) => e.data);
  }

  /** Resolves once the server's bus published `event` with `data` (at any time before, too). */
  async until(uuid: string, event: string, data: unknown): Promise<void> {
    while (!this.named(uuid, event).includes(data)) await once(this.published, 'event');
  }

  /** Resolves once the server's bus published the transfer log line `line`. */
  async untilLine(uuid: string, line: string): Promise<void> {
    while (!this.lines(uuid).includes(line)) await once(this.published, 'event');
  }

  /** Transfer log lines without their colour and timestamp prefix. */
  lines(uuid: string): string[] {
    return this.named(uuid, 'transfer.logs').map((l) => String(l).replace(/^.*?\]:\u001b\[39m /, '').replace(/\u001b\[0m$/, ''));
  }
}

export interface Fixture {
  root: string;
  config: Config;
  logger: Logger;
  /** Every log record of the daemon's logger, parsed. */
  logs: Record<string, unknown>[];
  panel: FakePanel;
  env: EnvironmentBehaviour;
  environments: Map<string, FakeEnvironment>;
  servers: RecordingServers;
  manager: TransferManager;
  /** metrics hook calls: the final states the registry saw */
  finished: { server: string; direction: string; state: string }[];
  /** closeSockets calls */
  socketsClosed: string[];
  /** A server of this node with files, as the source of an outgoing transfer. */
  addServer(uuid: string, build?: { disk_space?: number }): Server;
}

/** A daemon's transfer side with fakes around it; `transfers` overrides system.transfers. */
export function fixture(transfers: Record<string, unknown> = {}): Fixture {
  const root = tmpDir('wings-unit-transfer-');
  const config = ConfigSchema.parse({
    token: NODE_TOKEN,
    system: { root_directory: root, data: path.join(root, 'volumes'), transfers },
  });
  const logs: Record<string, unknown>[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
  const panel = new FakePanel();
  const env: EnvironmentBehaviour = {
    create: async () => {},
    waitForStop: async (e) => e.setState('offline'),
  };
  const environments = new Map<string, FakeEnvironment>();
  const inner = new ServerManager({
    config: () => config,
    panel: panel as unknown as PanelClient,
    logger,
    environmentFactory: (ctx) => {
      const e = new FakeEnvironment(ctx, env);
      environments.set(ctx.uuid, e);
      return e;
    },
  });
  // states.json is none of these tests' business; a save timer firing after the temp dir was
  // removed would create it again.
  inner.freeze();
  const servers = new RecordingServers(inner);
  const finished: Fixture['finished'] = [];
  const socketsClosed: string[] = [];
  const manager = new TransferManager({
    config: () => config,
    logger,
    panel,
    servers,
    closeSockets: (uuid) => socketsClosed.push(uuid),
    onFinished: (t: TransferHandle) => finished.push({ server: t.server, direction: t.direction, state: t.state }),
  });
  return {
    root,
    config,
    logger,
    logs,
    panel,
    env,
    environments,
    servers,
    manager,
    finished,
    socketsClosed,
    addServer(uuid, build = {}) {
      const server = servers.instantiate(parseServerConfiguration(rawServer(uuid, build), false));
      servers.add(server);
      return server;
    },
  };
}

/** A part of a fake request body: a file part (its bytes) or a small field. */
export type FakePart = { file: string; data: Buffer; breakOff?: boolean; open?: boolean } | { field: string; value: string; truncated?: boolean };

/**
 * A request body as the HTTP side hands it over, without multipart: each part in order, file parts
 * as streams with backpressure. `breakOff` ends the body inside that file part (the part errors
 * and the reading fails as a malformed body); `open` leaves the part (and the body) open after its
 * bytes, as a source that stalls; `hang` keeps the body open after the last part.
 */
export class FakeBody implements IncomingBody {
  constructor(
    private readonly parts: FakePart[],
    private readonly opts: { hang?: boolean; chunk?: number } = {},
  ) {}

  async read(handlers: PartHandlers, signal: AbortSignal): Promise<void> {
    const aborted = new Promise<never>((_, reject) => {
      if (signal.aborted) reject(signal.reason);
      signal.addEventListener('abort', () => reject(signal.reason), { once: true });
    });
    aborted.catch(() => {});
    const chunk = this.opts.chunk ?? 16 * 1024;
    for (const p of this.parts) {
      if ('field' in p) {
        handlers.activity();
        handlers.field(p.field, p.value, p.truncated ?? false);
        continue;
      }
      const stream = new PassThrough();
      stream.on('error', () => {});
      handlers.file(p.file, stream);
      const end = p.breakOff ? Math.min(p.data.length, 100) : p.data.length;
      for (let o = 0; o < end; o += chunk) {
        handlers.activity();
        if (!stream.write(p.data.subarray(o, Math.min(end, o + chunk)))) await Promise.race([once(stream, 'drain'), aborted]);
      }
      if (p.open) await aborted;
      if (p.breakOff) {
        stream.destroy(new Error('Part terminated early due to unexpected end of multipart data'));
        throw new WingsError('BAD_REQUEST', 'Malformed multipart body: Unexpected end of multipart data');
      }
      stream.end();
    }
    if (this.opts.hang) await aborted;
    await Promise.race([Promise.resolve(), aborted]);
  }
}
