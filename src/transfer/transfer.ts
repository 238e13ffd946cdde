import { EventEmitter } from 'node:events';
import { WingsError, errorMessage } from '../errors.js';

/** The six states of D1. */
export type TransferState = 'pending' | 'processing' | 'cancelling' | 'cancelled' | 'failed' | 'completed';
export type Direction = 'outgoing' | 'incoming';

export const TERMINAL: ReadonlySet<TransferState> = new Set(['cancelled', 'failed', 'completed']);

const ALLOWED: Record<TransferState, readonly TransferState[]> = {
  pending: ['processing', 'cancelling', 'failed'],
  processing: ['completed', 'cancelling', 'failed'],
  cancelling: ['cancelled', 'failed'],
  cancelled: [],
  failed: [],
  completed: [],
};

/** The status API shape of D8. */
export interface TransferView {
  server: string;
  state: TransferState;
  direction: Direction;
  bytes_total: number | null;
  bytes_done: number;
  files_done: number;
  rate_bytes_per_second: number;
  eta_seconds: number | null;
  started_at: string;
  error: string | null;
}

const RATE_WINDOW_MS = 5000;

/**
 * One side's transfer object: the state machine of D1 (each state entered once, in order, exactly
 * one terminal state), the abort signal of its work, and its progress counters.
 */
export class Transfer extends EventEmitter {
  state: TransferState = 'pending';
  readonly startedAt = new Date();
  readonly controller = new AbortController();
  bytesTotal: number | null = null;
  bytesDone = 0;
  filesDone = 0;
  error: string | null = null;
  /** Past this point the transfer can no longer be cancelled (D3). */
  pointOfNoReturn = false;
  /** Resolves when the transfer reached a terminal state and its cleanup is done. */
  readonly finished: Promise<TransferState>;
  private resolveFinished!: (s: TransferState) => void;
  private samples: { t: number; bytes: number }[] = [];

  constructor(
    readonly server: string,
    readonly direction: Direction,
  ) {
    super();
    this.finished = new Promise((r) => (this.resolveFinished = r));
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get isTerminal(): boolean {
    return TERMINAL.has(this.state);
  }

  get isCancellable(): boolean {
    return (this.state === 'pending' || this.state === 'processing') && !this.pointOfNoReturn;
  }

  /** Moves to `to` when the machine allows it; emits `state` once. Returns whether it moved. */
  transition(to: TransferState): boolean {
    if (!ALLOWED[this.state].includes(to)) return false;
    this.state = to;
    this.emit('state', to);
    return true;
  }

  /** Called by the side's runner once cleanup after a terminal state is done. */
  settle(): void {
    this.resolveFinished(this.state);
  }

  /** Requests cancellation: `cancelling` is published and the work is aborted. */
  cancel(reason = 'The transfer was cancelled.'): boolean {
    if (!this.isCancellable) return false;
    this.transition('cancelling');
    this.controller.abort(new WingsError('CANCELLED', reason));
    return true;
  }

  /** Aborts the work with an error (idle timeout, shutdown, …) without entering `cancelling`. */
  fail(err: unknown): void {
    if (!this.error) this.error = errorMessage(err);
    if (!this.controller.signal.aborted) this.controller.abort(err);
  }

  addBytes(n: number): void {
    this.bytesDone += n;
    const now = Date.now();
    const last = this.samples[this.samples.length - 1];
    if (!last || now - last.t >= 200) this.samples.push({ t: now, bytes: this.bytesDone });
    else last.bytes = this.bytesDone;
    while (this.samples.length > 2 && now - this.samples[0].t > RATE_WINDOW_MS) this.samples.shift();
  }

  /** Bytes per second over the last few seconds. */
  rate(): number {
    const first = this.samples[0];
    const now = Date.now();
    if (!first) return 0;
    const dt = (now - first.t) / 1000;
    if (dt <= 0.05) return 0;
    return Math.round((this.bytesDone - first.bytes) / dt);
  }

  eta(): number | null {
    const rate = this.rate();
    if (this.bytesTotal === null || rate <= 0) return null;
    return Math.max(0, Math.round((this.bytesTotal - this.bytesDone) / rate));
  }

  view(): TransferView {
    return {
      server: this.server,
      state: this.state,
      direction: this.direction,
      bytes_total: this.bytesTotal,
      bytes_done: this.bytesDone,
      files_done: this.filesDone,
      rate_bytes_per_second: this.rate(),
      eta_seconds: this.eta(),
      started_at: this.startedAt.toISOString(),
      error: this.error,
    };
  }
}
