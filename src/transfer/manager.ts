import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { EventBus } from '../server/events.js';
import type { ServerManager } from '../server/manager.js';
import type { Server } from '../server/server.js';
import { progressLine, transferLogLine } from './format.js';
import { MarkerStore } from './markers.js';
import { recoverTransfers } from './recovery.js';
import type { TransferPanel } from './report.js';
import type { TransferHandle, TransferRunner } from './runner.js';
import type { Direction, TransferState, TransferView } from './transfer.js';

/** The server registry calls the destination makes: look up, register, unregister. */
export type TransferServers = Pick<ServerManager, 'has' | 'get' | 'instantiate' | 'add' | 'remove'>;

export interface TransferDeps {
  config: () => Config;
  logger: Logger;
  panel: TransferPanel;
  servers: TransferServers;
  /** Closes every websocket of a server (after `deleted` was published). */
  closeSockets: (uuid: string) => void;
  /** Metrics hook: a transfer left the active list in its final state. */
  onFinished?: (t: TransferHandle, durationSeconds: number) => void;
}

/** Compat strings of docs/protocol.md D2.1 for the Panel's `transfer status` event. */
function compatStatus(direction: Direction, state: TransferState): string | undefined {
  switch (state) {
    case 'pending':
      return undefined;
    case 'processing':
    case 'cancelling':
      return state;
    case 'cancelled':
    case 'failed':
      return 'failure';
    case 'completed':
      return direction === 'incoming' ? 'success' : 'completed';
  }
}

const SHUTDOWN_WAIT_MS = 10_000;

/**
 * The registry of this node's active transfers, both directions, with their persisted markers,
 * and the publisher of their states, log lines and progress on the server's event bus. The
 * runners (outgoing.ts, incoming.ts) own the transfers; the registry only lists and relays.
 */
export class TransferManager {
  private readonly outgoingMap = new Map<string, TransferRunner>();
  private readonly incomingMap = new Map<string, TransferRunner>();
  private readonly buses = new WeakMap<TransferHandle, EventBus>();
  readonly markers: MarkerStore;
  readonly logger: Logger;

  constructor(readonly deps: TransferDeps) {
    this.logger = deps.logger.child({ component: 'transfer' });
    this.markers = new MarkerStore(() => deps.config().system.root_directory);
  }

  outgoing(uuid: string): TransferHandle | undefined {
    return this.outgoingMap.get(uuid);
  }

  incoming(uuid: string): TransferHandle | undefined {
    return this.incomingMap.get(uuid);
  }

  /** Every active transfer of the node (docs/protocol.md D8.1). */
  list(): TransferView[] {
    return [...this.outgoingMap.values(), ...this.incomingMap.values()].map((t) => t.view());
  }

  /** Registers a new transfer: persisted marker, state publishing, metrics. */
  register(transfer: TransferRunner): void {
    const map = transfer.direction === 'outgoing' ? this.outgoingMap : this.incomingMap;
    map.set(transfer.server, transfer);
    try {
      this.markers.write(transfer.direction, transfer.server);
    } catch (err) {
      this.logger.error({ server: transfer.server, err }, 'failed to persist the transfer marker');
    }
    transfer.on('state', (state) => {
      this.logger.info({ server: transfer.server, direction: transfer.direction, state }, 'transfer state');
      this.publishState(transfer, state);
    });
  }

  /** Connects the transfer to its server's event bus; publishes `pending` if that is still the state. */
  attachBus(transfer: TransferHandle, bus: EventBus): void {
    this.buses.set(transfer, bus);
    if (transfer.state === 'pending') this.publishState(transfer, 'pending');
  }

  private publishState(transfer: TransferHandle, state: TransferState): void {
    const bus = this.buses.get(transfer);
    if (!bus) return;
    bus.publish('transfer.status', state);
    const compat = compatStatus(transfer.direction, state);
    if (compat) bus.publish('transfer status', compat);
  }

  /**
   * A transfer log line on both event names (docs/protocol.md D2.2). `warn` for the lines that end
   * a transfer badly (failed, cancelled): an operator filters the daemon's log on them.
   */
  log(transfer: TransferHandle, message: string, level: 'info' | 'warn' = 'info'): void {
    const side = transfer.direction === 'outgoing' ? 'source' : 'destination';
    this.logger[level]({ server: transfer.server, direction: transfer.direction }, message);
    const bus = this.buses.get(transfer);
    if (!bus) return;
    const line = transferLogLine(side, message);
    bus.publish('transfer.logs', line);
    bus.publish('transfer logs', line);
  }

  /**
   * Progress: `transfer.progress` at most once a second while bytes flow, and the progress log
   * line every 5 s (docs/protocol.md D8.3, D8.4). Returns the function that stops both.
   */
  startProgress(transfer: TransferHandle, verb: string): () => void {
    let lastBytes = -1;
    const fast = setInterval(() => {
      if (transfer.bytesDone === lastBytes) return;
      lastBytes = transfer.bytesDone;
      this.buses.get(transfer)?.publish('transfer.progress', JSON.stringify(transfer.view()));
    }, 1000);
    const slow = setInterval(() => {
      const v = transfer.view();
      this.log(transfer, progressLine(verb, v.bytes_done, v.bytes_total, v.rate_bytes_per_second, v.eta_seconds));
    }, 5000);
    fast.unref();
    slow.unref();
    return () => {
      clearInterval(fast);
      clearInterval(slow);
    };
  }

  /** Removes a terminal transfer from the active list and drops its marker. */
  unregister(transfer: TransferHandle): void {
    const map = transfer.direction === 'outgoing' ? this.outgoingMap : this.incomingMap;
    if (map.get(transfer.server) === transfer) map.delete(transfer.server);
    try {
      this.markers.remove(transfer.direction, transfer.server);
    } catch {}
    this.deps.onFinished?.(transfer, (Date.now() - transfer.startedAt.getTime()) / 1000);
  }

  /** docs/protocol.md D7.3: deleting a server ends its transfers first (each side's rule is its runner's). */
  async beforeServerDelete(server: Server): Promise<void> {
    await this.outgoingMap.get(server.uuid)?.serverDeleted();
    await this.incomingMap.get(server.uuid)?.serverDeleted();
  }

  /** Daemon shutdown (docs/protocol.md D9.1): running transfers are cancelled and reported (bounded wait). */
  async shutdown(): Promise<void> {
    const all = [...this.outgoingMap.values(), ...this.incomingMap.values()];
    for (const t of all) t.shutdown();
    await Promise.race([
      Promise.all(all.map((t) => t.finished)),
      new Promise((r) => setTimeout(r, SHUTDOWN_WAIT_MS).unref()),
    ]);
  }

  /** Boot recovery of transfers that died with the process (docs/protocol.md D7.5). */
  async recoverAtBoot(): Promise<void> {
    const { config, panel, servers } = this.deps;
    await recoverTransfers({ config, logger: this.logger, panel, hasServer: (uuid) => servers.has(uuid) }, this.markers);
  }
}
