import { EventEmitter } from 'node:events';
import { WingsError } from '../errors.js';
import { Transfer, type Direction, type TransferState, type TransferView } from './transfer.js';

/**
 * A runner's events: every state it enters, once and in order (the registry publishes them,
 * docs/protocol.md D1.1, D2.1).
 */
export interface TransferEvents {
  state: [state: TransferState];
}

/**
 * What the registry hands out of a transfer of either side: the routes, the websocket and the
 * metrics read it and may request a cancel (docs/protocol.md D3.1); nothing else of the transfer is
 * reachable.
 */
export interface TransferHandle {
  readonly server: string;
  readonly direction: Direction;
  readonly state: TransferState;
  readonly startedAt: Date;
  readonly bytesDone: number;
  /** Resolves when the transfer is terminal and its cleanup is done. */
  readonly finished: Promise<TransferState>;
  view(): TransferView;
  /** Requests cancellation (docs/protocol.md D3.1): false when nothing is cancellable (the routes answer 409). */
  cancel(): boolean;
}

const SHUTTING_DOWN = 'The daemon is shutting down.';

/**
 * The part both sides share: a runner owns its Transfer (state, signal, error, counters) and is the
 * only one to change it. Each side ends through its own `finish(outcome, error)`, entered once:
 * after `beginFinish()` the outcome is decided, cancels are refused and later aborts are ignored.
 */
export abstract class TransferRunner extends EventEmitter<TransferEvents> implements TransferHandle {
  protected readonly transfer: Transfer;
  private finishing = false;

  constructor(server: string, direction: Direction) {
    super();
    this.transfer = new Transfer(server, direction);
  }

  get server(): string {
    return this.transfer.server;
  }

  get direction(): Direction {
    return this.transfer.direction;
  }

  get state(): TransferState {
    return this.transfer.state;
  }

  get startedAt(): Date {
    return this.transfer.startedAt;
  }

  get bytesDone(): number {
    return this.transfer.bytesDone;
  }

  get finished(): Promise<TransferState> {
    return this.transfer.finished;
  }

  view(): TransferView {
    return this.transfer.view();
  }

  /** docs/protocol.md D3.4: `cancelling` is published, then the work is aborted with a CANCELLED error. */
  cancel(reason = 'The transfer was cancelled.'): boolean {
    if (this.finishing || !this.transfer.isCancellable) return false;
    this.enter('cancelling');
    this.transfer.abort(new WingsError('CANCELLED', reason));
    return true;
  }

  /** docs/protocol.md D7.3: the server is being deleted. Resolves when the transfer is terminal and cleaned up. */
  abstract serverDeleted(): Promise<void>;

  /**
   * docs/protocol.md D9.1: the daemon shuts down: a cancel, or past the point of no return an abort
   * with the reason.
   */
  shutdown(): void {
    if (!this.cancel(SHUTTING_DOWN)) this.abortWith(new Error(SHUTTING_DOWN));
  }

  /** Aborts the work with an error (idle timeout, closed connection, …) without entering `cancelling`. */
  protected abortWith(err: unknown): void {
    if (this.finishing || this.transfer.isTerminal) return;
    this.transfer.recordError(err);
    this.transfer.abort(err);
  }

  /** Enters `to` when the machine allows it and emits it. Returns whether it moved. */
  protected enter(to: TransferState): boolean {
    if (!this.transfer.transition(to)) return false;
    this.emit('state', to);
    return true;
  }

  /** Marks the start of the one finish; false when it had begun already. */
  protected beginFinish(): boolean {
    if (this.finishing || this.transfer.isTerminal) return false;
    this.finishing = true;
    return true;
  }
}
