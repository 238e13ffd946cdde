/**
 * A token bucket (docs/protocol.md W21): `burst` tokens, one token added every `refillMs`.
 * `take()` removes a token and answers true, or answers false when the bucket is empty.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly refillMs: number,
    private readonly burst: number,
    private readonly now: () => number = Date.now,
  ) {
    this.tokens = burst;
    this.last = now();
  }

  take(): boolean {
    const t = this.now();
    const elapsed = t - this.last;
    if (elapsed > 0) {
      this.tokens = Math.min(this.burst, this.tokens + elapsed / this.refillMs);
      this.last = t;
    }
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return true;
    }
    return false;
  }
}

/** The buckets of one connection: a global one (before parsing) and one per event class. */
export class ConnectionLimiter {
  private readonly global: TokenBucket;
  private readonly perEvent = new Map<string, TokenBucket>();
  private globalEpisode = false;
  private readonly episodes = new Set<string>();

  constructor(private readonly now: () => number = Date.now) {
    this.global = new TokenBucket(200, 10, now);
  }

  /** Before parsing: `ok` false means drop the frame; `notify` marks the first drop of an episode. */
  admitFrame(): { ok: boolean; notify: boolean } {
    if (this.global.take()) {
      this.globalEpisode = false;
      return { ok: true, notify: false };
    }
    const notify = !this.globalEpisode;
    this.globalEpisode = true;
    return { ok: false, notify };
  }

  /** Per event name: `auth` and `send logs` 1/5 s burst 2, `send command` 1/s burst 10, others share 1/s burst 4. */
  admitEvent(event: string): { ok: boolean; notify: boolean } {
    const key = event === 'auth' || event === 'send logs' || event === 'send command' ? event : '*';
    let bucket = this.perEvent.get(key);
    if (!bucket) {
      bucket =
        key === 'send command'
          ? new TokenBucket(1000, 10, this.now)
          : key === '*'
            ? new TokenBucket(1000, 4, this.now)
            : new TokenBucket(5000, 2, this.now);
      this.perEvent.set(key, bucket);
    }
    if (bucket.take()) {
      this.episodes.delete(event);
      return { ok: true, notify: false };
    }
    const notify = !this.episodes.has(event);
    this.episodes.add(event);
    return { ok: false, notify };
  }
}
