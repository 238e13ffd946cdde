/**
 * Splits a console byte stream into lines the way Wings does (docs/protocol.md W11.1): `\n` and
 * `\r\n` end a line and are removed; a line longer than 64 KiB is emitted in 64 KiB pieces.
 */
export const MAX_LINE_BYTES = 64 * 1024;

export class LineSplitter {
  private pending: Buffer[] = [];
  private pendingLength = 0;

  constructor(private readonly onLine: (line: string) => void) {}

  push(chunk: Buffer): void {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl === -1) break;
      this.append(chunk.subarray(start, nl));
      this.emitPending(true);
      start = nl + 1;
    }
    if (start < chunk.length) this.append(chunk.subarray(start));
  }

  /** Emit what is left (stream end). */
  flush(): void {
    if (this.pendingLength > 0) this.emitPending(true);
  }

  private append(part: Buffer): void {
    let rest = part;
    while (this.pendingLength + rest.length > MAX_LINE_BYTES) {
      const take = MAX_LINE_BYTES - this.pendingLength;
      this.pending.push(rest.subarray(0, take));
      this.pendingLength += take;
      this.emitPending(false);
      rest = rest.subarray(take);
    }
    if (rest.length > 0) {
      this.pending.push(rest);
      this.pendingLength += rest.length;
    }
  }

  private emitPending(endOfLine: boolean): void {
    let line = Buffer.concat(this.pending, this.pendingLength).toString('utf8');
    this.pending = [];
    this.pendingLength = 0;
    if (endOfLine && line.endsWith('\r')) line = line.slice(0, -1);
    this.onLine(line.replace(/ \r/g, '\r\n'));
  }
}
