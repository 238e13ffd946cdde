/**
 * The console output throttle of docs/protocol.md W11.2: a fixed window of `intervalMs` starting at
 * the first line after the previous window expired; at most `lines` lines forwarded per window.
 */
export class ConsoleThrottle {
  private windowStart = 0;
  private count = 0;
  private throttling = false;

  constructor(
    private readonly lines: number,
    private readonly intervalMs: number,
  ) {}

  /** 'allow', 'drop', or 'drop-first' (the first dropped line of an episode: announce throttling). */
  check(now = Date.now()): 'allow' | 'drop' | 'drop-first' {
    if (now - this.windowStart >= this.intervalMs) {
      this.windowStart = now;
      this.count = 0;
    }
    if (this.count < this.lines) {
      this.count++;
      this.throttling = false;
      return 'allow';
    }
    if (this.throttling) return 'drop';
    this.throttling = true;
    return 'drop-first';
  }

  reset(): void {
    this.windowStart = 0;
    this.count = 0;
    this.throttling = false;
  }
}
