import fs from 'node:fs';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { errorMessage } from '../errors.js';
import { PanelError, type PanelClient } from '../panel/client.js';
import type { EventBus } from '../server/events.js';
import type { ServerManager } from '../server/manager.js';
import type { Server } from '../server/server.js';
import { progressLine, transferLogLine } from './format.js';
import { MarkerStore } from './markers.js';
import { Transfer, type Direction, type TransferState, type TransferView } from './transfer.js';

export interface TransferDeps {
  config: () => Config;
  logger: Logger;
  panel: PanelClient;
  servers: ServerManager;
  /** Closes every websocket of a server (after `deleted` was published). */
  closeSockets: (uuid: string) => void;
  /** Metrics hooks (optional). */
  onFinished?: (t: Transfer, durationSeconds: number) => void;
}

export type ReportOutcome = 'ok' | 'conflict' | 'error';

/** Compat strings of D2 for the Panel's `transfer status` event. */
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

/** The registry of active transfers of this node, both directions; events, markers, Panel reports. */
export class TransferManager {
  private readonly outgoingMap = new Map<string, Transfer>();
  private readonly incomingMap = new Map<string, Transfer>();
  private readonly buses = new WeakMap<Transfer, EventBus>();
  readonly markers: MarkerStore;
  readonly logger: Logger;

  constructor(readonly deps: TransferDeps) {
    this.logger = deps.logger.child({ component: 'transfer' });
    this.markers = new MarkerStore(() => deps.config().system.root_directory);
  }

  outgoing(uuid: string): Transfer | undefined {
    return this.outgoingMap.get(uuid);
  }

  incoming(uuid: string): Transfer | undefined {
    return this.incomingMap.get(uuid);
  }

  /** Every active transfer of the node (D8 `GET /api/transfers`). */
  list(): TransferView[] {
    return [...this.outgoingMap.values(), ...this.incomingMap.values()].map((t) => t.view());
  }

  /** Registers a new transfer: persisted marker, state publishing, metrics. */
  register(transfer: Transfer): void {
    const map = transfer.direction === 'outgoing' ? this.outgoingMap : this.incomingMap;
    map.set(transfer.server, transfer);
    try {
      this.markers.write(transfer.direction, transfer.server);
    } catch (err) {
      this.logger.error({ server: transfer.server, err: errorMessage(err) }, 'failed to persist the transfer marker');
    }
    transfer.on('state', (state: TransferState) => {
      this.logger.info({ server: transfer.server, direction: transfer.direction, state }, 'transfer state');
      this.publishState(transfer, state);
    });
  }

  /** Connects the transfer to its server's event bus; publishes `pending` if that is still the state. */
  attachBus(transfer: Transfer, bus: EventBus): void {
    this.buses.set(transfer, bus);
    if (transfer.state === 'pending') this.publishState(transfer, 'pending');
  }

  private publishState(transfer: Transfer, state: TransferState): void {
    const bus = this.buses.get(transfer);
    if (!bus) return;
    bus.publish('transfer.status', state);
    const compat = compatStatus(transfer.direction, state);
    if (compat) bus.publish('transfer status', compat);
  }

  /** A transfer log line on both event names (D2). */
  log(transfer: Transfer, message: string): void {
    const side = transfer.direction === 'outgoing' ? 'source' : 'destination';
    this.logger.info({ server: transfer.server, direction: transfer.direction }, message);
    const bus = this.buses.get(transfer);
    if (!bus) return;
    const line = transferLogLine(side, message);
    bus.publish('transfer.logs', line);
    bus.publish('transfer logs', line);
  }

  /**
   * Progress: `transfer.progress` at most once a second while bytes flow, and the progress log
   * line every 5 s (D8). Returns the function that stops both.
   */
  startProgress(transfer: Transfer, verb: string): () => void {
    let lastBytes = -1;
    const fast = setInterval(() => {
      if (transfer.bytesDone === lastBytes) return;
      lastBytes = transfer.bytesDone;
      this.buses.get(transfer)?.publish('transfer.progress', JSON.stringify(transfer.view()));
    }, 1000);
    const slow = setInterval(() => {
      this.log(transfer, progressLine(verb, transfer.bytesDone, transfer.bytesTotal, transfer.rate(), transfer.eta()));
    }, 5000);
    fast.unref();
    slow.unref();
    return () => {
      clearInterval(fast);
      clearInterval(slow);
    };
  }

  /** Removes a terminal transfer from the active list and drops its marker. */
  unregister(transfer: Transfer): void {
    const map = transfer.direction === 'outgoing' ? this.outgoingMap : this.incomingMap;
    if (map.get(transfer.server) === transfer) map.delete(transfer.server);
    try {
      this.markers.remove(transfer.direction, transfer.server);
    } catch {}
    this.deps.onFinished?.(transfer, (Date.now() - transfer.startedAt.getTime()) / 1000);
  }

  /**
   * Reports the outcome to the Panel (D6): 409 ends the reporting ('conflict'); 5xx and network
   * errors are retried by the client; any other 4xx ends it and is logged.
   */
  async report(uuid: string, success: boolean): Promise<ReportOutcome> {
    try {
      await this.deps.panel.setTransferStatus(uuid, success);
      return 'ok';
    } catch (err) {
      if (err instanceof PanelError && err.status === 409) {
        this.logger.info({ server: uuid, success }, 'panel already recorded the transfer outcome (409)');
        return 'conflict';
      }
      this.logger.error({ server: uuid, success, err: errorMessage(err) }, 'failed to report the transfer outcome');
      return 'error';
    }
  }

  /**
   * D7 delete rules. Source: after the whole archive and checksum were sent the transfer ends
   * `completed`; while still streaming it is cancelled. Destination: the transfer is cancelled.
   * Resolves when the transfer is terminal and cleaned up.
   */
  async beforeServerDelete(server: Server): Promise<void> {
    const out = this.outgoingMap.get(server.uuid);
    if (out && !out.isTerminal) {
      if (out.pointOfNoReturn && out.state === 'processing') {
        out.emit('deleted-after-send');
      } else if (!out.cancel('The server was deleted.')) {
        out.fail(new Error('The server was deleted.'));
      }
      await out.finished;
    }
    const inc = this.incomingMap.get(server.uuid);
    if (inc && !inc.isTerminal) {
      if (!inc.cancel('The server was deleted.')) inc.fail(new Error('The server was deleted.'));
      await inc.finished;
    }
  }

  /** Daemon shutdown (D9): running transfers are cancelled and reported. */
  async shutdown(): Promise<void> {
    const all = [...this.outgoingMap.values(), ...this.incomingMap.values()];
    for (const t of all) {
      if (!t.cancel('The daemon is shutting down.')) t.fail(new Error('The daemon is shutting down.'));
    }
    await Promise.race([
      Promise.all(all.map((t) => t.finished)),
      new Promise((r) => setTimeout(r, 10_000).unref()),
    ]);
  }

  /**
   * Boot recovery (D7): markers left over mean the transfer died with the process. Runs after the
   * servers were loaded from the Panel, so `servers.has()` tells what the Panel lists here.
   */
  async recoverAtBoot(): Promise<void> {
    const cfg = this.deps.config();
    for (const m of this.markers.list('incoming')) {
      if (this.deps.servers.has(m.server)) {
        this.logger.info({ server: m.server }, 'incoming transfer finished before the restart: the panel lists the server here; keeping it');
      } else {
        this.logger.warn({ server: m.server }, 'incoming transfer died with the daemon: removing partial data and reporting failure');
        await fs.promises.rm(`${cfg.system.data}/${m.server}`, { recursive: true, force: true }).catch(() => {});
        await this.report(m.server, false);
      }
      this.markers.remove('incoming', m.server);
    }
    for (const m of this.markers.list('outgoing')) {
      if (!this.deps.servers.has(m.server)) {
        this.logger.info({ server: m.server }, 'outgoing transfer succeeded before the restart (the panel no longer lists the server here); leaving its data alone');
      } else {
        this.logger.warn({ server: m.server }, 'outgoing transfer died with the daemon: reporting failure; the server is unlocked');
        await this.report(m.server, false);
      }
      this.markers.remove('outgoing', m.server);
    }
  }
}
