import { EventEmitter } from 'node:events';
import type { TransferState, TransferView } from '../../src/transfer/transfer.js';
import { errorMessage } from '../../src/errors.js';
import type { DemoNode } from './nodes.js';
import { ServerSocket, type SocketEvent } from './socket.js';
import { sleep } from './wait.js';

export type Side = 'source' | 'destination';
const TERMINAL = new Set(['completed', 'cancelled', 'failed']);

export interface SideWatcherOptions {
  node: DemoNode;
  side: Side;
  uuid: string;
  /** The Origin the node accepts (its `remote`). */
  origin: string;
  /** A websocket JWT for this server, signed with this node's token. */
  token: () => string;
  /** An already authenticated socket of this server on this node (the console socket of the source). */
  socket?: ServerSocket;
}

/**
 * Follows one side of a transfer: the `transfer.status` / `transfer.progress` / `transfer.logs`
 * events of the server's websocket on that node; until the socket is authenticated (the
 * destination only knows the server once the archive request arrived) it polls the status API
 * (`GET /api/servers/:uuid/transfer` or `GET /api/transfers/:uuid`).
 *
 * Events: `state` (state, via), `progress` (view), `log` (line), `end` (terminal state or 'gone').
 */
export class SideWatcher extends EventEmitter {
  /** Every state seen, in order. */
  readonly states: TransferState[] = [];
  view: TransferView | undefined;
  /** The last state; `gone` when the transfer left the active list without a terminal state seen. */
  final: TransferState | 'gone' | undefined;
  via: 'websocket' | 'polling' = 'polling';
  readonly ended: Promise<TransferState | 'gone'>;
  startedAt = 0;
  endedAt = 0;
  wsError: string | undefined;
  /** Transfer events received over the websocket. */
  wsEvents = 0;
  private resolveEnded!: (s: TransferState | 'gone') => void;
  private socket: ServerSocket | undefined;
  private ownSocket = false;
  private timer: NodeJS.Timeout | undefined;
  private seen = false;
  private connecting = false;
  private stopped = false;

  constructor(private readonly opts: SideWatcherOptions) {
    super();
    this.ended = new Promise((r) => (this.resolveEnded = r));
    if (opts.socket?.authenticated) {
      this.socket = opts.socket;
      this.via = 'websocket';
    }
  }

  get statusPath(): string {
    return this.opts.side === 'source' ? `/api/servers/${this.opts.uuid}/transfer` : `/api/transfers/${this.opts.uuid}`;
  }

  start(): void {
    this.startedAt = Date.now();
    const tick = async () => {
      if (this.stopped) return;
      await this.poll().catch(() => {});
      if (!this.stopped) this.timer = setTimeout(() => void tick(), this.via === 'websocket' ? 1000 : 200);
    };
    void tick();
  }

  /** Feeds an event of a shared socket (the console socket of the source). */
  handleEvent(e: SocketEvent): void {
    if (this.stopped) return;
    if (e.event.startsWith('transfer.')) this.wsEvents++;
    switch (e.event) {
      case 'transfer.status':
        this.enter(e.args[0] as TransferState, 'websocket');
        break;
      case 'transfer.progress':
        try {
          const view = JSON.parse(e.args[0] ?? '') as TransferView;
          this.view = view;
          this.emit('progress', view, 'websocket');
        } catch {}
        break;
      case 'transfer.logs':
        this.emit('log', e.args[0] ?? '');
        break;
      case 'deleted':
        if (!this.final && this.seen) this.finish('gone');
        break;
    }
  }

  private enter(state: TransferState, via: 'websocket' | 'polling'): void {
    if (!state || this.final) return;
    this.seen = true;
    if (this.states[this.states.length - 1] !== state) {
      this.states.push(state);
      this.emit('state', state, via);
    }
    if (TERMINAL.has(state)) this.finish(state);
  }

  private finish(state: TransferState | 'gone'): void {
    if (this.final) return;
    this.final = state;
    this.endedAt = Date.now();
    this.resolveEnded(state);
    this.emit('end', state);
  }

  private async poll(): Promise<void> {
    if (this.final) return;
    const r = await this.opts.node.api('GET', this.statusPath);
    if (r.status === 200 && r.body && typeof r.body === 'object') {
      const view = r.body as TransferView;
      if (this.via === 'polling') {
        this.view = view;
        this.emit('progress', view, 'polling');
        this.enter(view.state, 'polling');
      } else if (!this.seen) {
        this.enter(view.state, 'polling');
      }
      if (!this.socket && !this.connecting) void this.connect();
    } else if (r.status === 404 && this.seen) {
      // Left the active list: the socket normally delivered the terminal state already; give it a moment.
      await sleep(300);
      if (!this.final) this.finish('gone');
    }
  }

  /**
   * Connects the websocket now (the source side, whose server exists before the transfer starts),
   * so that no state is missed: a quick cancel can take the transfer off the status API before
   * a poll sees its terminal state.
   */
  async connectEarly(): Promise<void> {
    if (!this.socket && !this.connecting) await this.connect();
  }

  private async connect(): Promise<void> {
    this.connecting = true;
    const url = `${this.opts.node.url.replace(/^http/, 'ws')}/api/servers/${this.opts.uuid}/ws`;
    const socket = new ServerSocket(url, this.opts.origin, this.opts.token, (e) => this.handleEvent(e), () => {
      if (this.socket === socket) {
        this.socket = undefined;
        this.via = 'polling';
      }
    });
    try {
      await socket.connect();
      if (this.stopped) {
        socket.close();
        return;
      }
      this.socket = socket;
      this.ownSocket = true;
      this.via = 'websocket';
    } catch (err) {
      this.wsError = errorMessage(err);
      // Keep polling; retry the socket a little later.
      await sleep(1000);
    } finally {
      this.connecting = false;
    }
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.ownSocket) this.socket?.close();
  }
}
