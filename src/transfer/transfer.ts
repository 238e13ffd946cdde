import { errorMessage } from '../errors.js';

/** The six states of docs/protocol.md D1.1. */
export type TransferState = 'pending' | 'processing' | 'cancelling' | 'cancelled' | 'failed' | 'completed';
export type Direction = 'outgoing' | 'incoming';
/** The terminal states: exactly one of them ends each side's transfer. */
export type TransferOutcome = 'completed' | 'cancelled' | 'failed';

export const TERMINAL: ReadonlySet<TransferState> = new Set(['cancelled', 'failed', 'completed']);

const ALLOWED: Record<TransferState, readonly TransferState[]> = {
  pending: ['processing', 'cancelling', 'failed'],
  processing: ['completed', 'cancelling', 'failed'],
  cancelling: ['cancelled', 'failed'],
  cancelled: [],
  failed: [],
  completed: [],
};

/** The status API shape of docs/protocol.md D8.2. */
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
 * One side's transfer record: the state machine of docs/protocol.md D1.1 (each state entered once,
 * in order, exactly one terminal state), the abort signal of its work, its error and progress
 * counters. Only the side's runner (OutgoingTransfer, IncomingTransfer) holds it; everyone else
 * sees the runner.
 */
export class Transfer {
  readonly startedAt = new Date();
  /** Resolves when the transfer reached a terminal state and its cleanup is done. */
  readonly finished: Promise<TransferState>;
  private current: TransferState = 'pending';
  private readonly controller = new AbortController();
  private total: number | null = null;
  private done = 0;
  private files = 0;
  private firstError: string | null = null;
  private pastPointOfNoReturn = false;
  private resolveFinished!: (s: TransferState) => void;
  private samples: { t: number; bytes: number }[] = [];

  constructor(
    readonly server: string,
    readonly direction: Direction,
  ) {
    this.finished = new Promise((r) => (this.resolveFinished = r));
  }

  get state(): TransferState {
    return this.current;
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get isTerminal(): boolean {
    return TERMINAL.has(this.current);
  }

  /** Past this point the transfer can no longer be cancelled (docs/protocol.md D3.2). */
  get pointOfNoReturn(): boolean {
    return this.pastPointOfNoReturn;
  }

  get isCancellable(): boolean {
    return (this.current === 'pending' || this.current === 'processing') && !this.pastPointOfNoReturn;
  }

  get bytesTotal(): number | null {
    return this.total;
  }

  get bytesDone(): number {
    return this.done;
  }

  get filesDone(): number {
    return this.files;
  }

  /** The first error recorded: the one the status API shows and the failure line names. */
  get error(): string | null {
    return this.firstError;
  }

  /** Moves to `to` when the machine allows it. Returns whether it moved. */
  transition(to: TransferState): boolean {
    if (!ALLOWED[this.current].includes(to)) return false;
    this.current = to;
    return true;
  }

  /** Aborts the work (once; later reasons are ignored). */
  abort(reason: unknown): void {
    if (!this.controller.signal.aborted) this.controller.abort(reason);
  }

  /** Records `err` as the transfer's error unless one was recorded before. */
  recordError(err: unknown): void {
    this.firstError ??= errorMessage(err);
  }

  passPointOfNoReturn(): void {
    this.pastPointOfNoReturn = true;
  }

  setTotal(bytes: number | null): void {
    this.total = bytes;
  }

  addFile(): void {
    this.files++;
  }

  /** Called by the runner once cleanup after a terminal state is done. */
  settle(): void {
    this.resolveFinished(this.current);
  }

  addBytes(n: number): void {
    this.done += n;
    const now = Date.now();
    const last = this.samples[this.samples.length - 1];
    if (!last || now - last.t >= 200) this.samples.push({ t: now, bytes: this.done });
    else last.bytes = this.done;
    while (this.samples.length > 2 && now - this.samples[0].t > RATE_WINDOW_MS) this.samples.shift();
  }

  /** Bytes per second over the last few seconds. */
  rate(): number {
    const first = this.samples[0];
    const now = Date.now();
    if (!first) return 0;
    const dt = (now - first.t) / 1000;
    if (dt <= 0.05) return 0;
    return Math.round((this.done - first.bytes) / dt);
  }

  eta(): number | null {
    const rate = this.rate();
    if (this.total === null || rate <= 0) return null;
    return Math.max(0, Math.round((this.total - this.done) / rate));
  }

  view(): TransferView {
    return {
      server: this.server,
      state: this.current,
      direction: this.direction,
      bytes_total: this.total,
      bytes_done: this.done,
      files_done: this.files,
      rate_bytes_per_second: this.rate(),
      eta_seconds: this.eta(),
      started_at: this.startedAt.toISOString(),
      error: this.firstError,
    };
  }
}
