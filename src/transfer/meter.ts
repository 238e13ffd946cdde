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

/** Average-rate pacing since the first byte: how long to wait before sending `n` more bytes. */
export class Pace {
  private start = 0;
  private total = 0;

  /** `bytesPerSecond` 0 = no limit */
  constructor(private readonly bytesPerSecond: number) {}

  /** Milliseconds to wait before the next `n` bytes go out (0 = now). */
  delayFor(n: number): number {
    if (this.bytesPerSecond <= 0) return 0;
    if (this.start === 0) this.start = Date.now();
    this.total += n;
    const wait = this.start + (this.total / this.bytesPerSecond) * 1000 - Date.now();
    return wait <= 1 ? 0 : wait;
  }
}

/** Passes bytes through, limited to `bytesPerSecond` (0 = no limit) on average since the first byte. */
export class RateLimiter extends Transform {
  private readonly pace: Pace;

  constructor(bytesPerSecond: number) {
    super({ highWaterMark: 1 << 20 });
    this.pace = new Pace(bytesPerSecond);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    const wait = this.pace.delayFor(chunk.length);
    if (wait === 0) return cb(null, chunk);
    setTimeout(() => cb(null, chunk), wait);
  }
}

export const MiB = 1024 * 1024;
