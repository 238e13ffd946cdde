import { Transform, type TransformCallback } from 'node:stream';

/** Fires `onIdle` when `touch()` has not been called for `timeoutMs`; paused until started. */
export class IdleWatchdog {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly timeoutMs: number,
    private readonly onIdle: () => void,
  ) {}

  touch(): void {
    if (this.timer) this.timer.refresh();
    else {
      this.timer = setTimeout(this.onIdle, this.timeoutMs);
      this.timer.unref();
    }
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/**
 * Passes bytes through, limited to `bytesPerSecond` (0 = no limit) on average since the first byte,
 * calling `onChunk` for each chunk.
 */
export class RateLimiter extends Transform {
  private start = 0;
  private total = 0;

  constructor(
    private readonly bytesPerSecond: number,
    private readonly onChunk?: (n: number) => void,
  ) {
    super({ highWaterMark: 1 << 20 });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.onChunk?.(chunk.length);
    if (this.bytesPerSecond <= 0) return cb(null, chunk);
    if (this.start === 0) this.start = Date.now();
    this.total += chunk.length;
    const due = this.start + (this.total / this.bytesPerSecond) * 1000;
    const wait = due - Date.now();
    if (wait <= 1) return cb(null, chunk);
    setTimeout(() => cb(null, chunk), wait);
  }
}

export const MiB = 1024 * 1024;
