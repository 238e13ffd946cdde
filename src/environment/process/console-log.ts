import { closeSync, fstatSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from 'pino';

/**
 * The per-server console history of the process environment: `<log_directory>/console/<uuid>.log`
 * (docs/protocol.md D9.3), the counterpart of the Docker container log (docs/protocol.md W11.4:
 * truncated at every start, so it covers the current run only; daemon messages are never in it).
 *
 * One line per console line. A console line can itself contain `\n` (the splitter turns
 * "space + CR" into `\r\n`), so such a line is stored with that `\r\n` turned back into ` \r` and
 * decoded again when read: the mapping is exact, because every `\n` inside a split line comes from
 * that replacement.
 *
 * Size cap: when the file would grow beyond `maxBytes` it is rotated to `<file>.1` (replacing the
 * previous one) and a new file begins, so at most 2 × `maxBytes` are kept and `readLog` still sees
 * the latest lines across the rotation.
 *
 * Writes are synchronous and batched by the caller (one `flush()` per output chunk), so a `readLog`
 * always sees every line already emitted as a `console` event.
 */
export const CONSOLE_LOG_MAX_BYTES = 5 * 1024 * 1024;

const TAIL_CHUNK = 64 * 1024;

export function encodeLogLine(line: string): string {
  return line.includes('\n') ? line.replace(/\r\n/g, ' \r') : line;
}

export function decodeLogLine(line: string): string {
  return line.includes(' \r') ? line.replace(/ \r/g, '\r\n') : line;
}

export class ConsoleLog {
  private fd: number | null = null;
  private size = 0;
  private pending: string[] = [];
  private warned = false;

  constructor(
    readonly file: string,
    private readonly logger: Logger,
    private readonly maxBytes = CONSOLE_LOG_MAX_BYTES,
  ) {}

  get rotatedFile(): string {
    return `${this.file}.1`;
  }

  /** Start of a run: empty the history (both files) and keep the file open for appending. */
  reset(): void {
    this.pending = [];
    this.closeFd();
    try {
      mkdirSync(dirname(this.file), { recursive: true });
      rmSync(this.rotatedFile, { force: true });
      this.fd = openSync(this.file, 'w');
      this.size = 0;
      this.warned = false;
    } catch (err) {
      this.fail(err);
    }
  }

  /** Queue one console line; written at the next `flush()`. */
  append(line: string): void {
    this.pending.push(`${encodeLogLine(line)}\n`);
  }

  /** Write the queued lines. Never throws: a broken log must not break the console. */
  flush(): void {
    if (this.pending.length === 0) return;
    const data = Buffer.from(this.pending.join(''), 'utf8');
    this.pending = [];
    try {
      if (this.fd === null) {
        mkdirSync(dirname(this.file), { recursive: true });
        this.fd = openSync(this.file, 'a');
        this.size = fstatSync(this.fd).size;
      }
      if (this.size > 0 && this.size + data.length > this.maxBytes) this.rotate();
      let offset = 0;
      while (offset < data.length) offset += writeSync(this.fd, data, offset, data.length - offset);
      this.size += data.length;
    } catch (err) {
      this.fail(err);
    }
  }

  /** Flush and release the file descriptor (end of a run); the file stays for `readLog`. */
  close(): void {
    this.flush();
    this.closeFd();
  }

  /** Remove the history entirely (server deletion). */
  remove(): void {
    this.pending = [];
    this.closeFd();
    rmSync(this.file, { force: true });
    rmSync(this.rotatedFile, { force: true });
  }

  /** The last `lines` lines (oldest first), reading from the end of the files. */
  async readLast(lines: number): Promise<string[]> {
    this.flush();
    const n = Math.floor(lines);
    if (!(n > 0)) return [];
    const current = await tailLines(this.file, n);
    if (current.length >= n) return current.map(decodeLogLine);
    const older = await tailLines(this.rotatedFile, n - current.length);
    return older.concat(current).map(decodeLogLine);
  }

  private rotate(): void {
    this.closeFd();
    renameSync(this.file, this.rotatedFile);
    this.fd = openSync(this.file, 'w');
    this.size = 0;
  }

  private closeFd(): void {
    if (this.fd === null) return;
    try {
      closeSync(this.fd);
    } catch {}
    this.fd = null;
  }

  private fail(err: unknown): void {
    this.closeFd();
    if (this.warned) return;
    this.warned = true;
    this.logger.warn({ err, file: this.file }, 'cannot write the console log file');
  }
}

/** The last `n` lines of a text file whose lines end with `\n`, read backwards in chunks. */
export async function tailLines(file: string, n: number): Promise<string[]> {
  if (n <= 0) return [];
  let fh;
  try {
    fh = await open(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  try {
    const { size } = await fh.stat();
    const chunks: Buffer[] = [];
    let pos = size;
    let newlines = 0;
    // n complete lines need n + 1 newlines (the one before the first line) unless the file start is reached.
    while (pos > 0 && newlines <= n) {
      const len = Math.min(TAIL_CHUNK, pos);
      pos -= len;
      const buf = Buffer.alloc(len);
      let got = 0;
      while (got < len) {
        const { bytesRead } = await fh.read(buf, got, len - got, pos + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      const part = buf.subarray(0, got);
      chunks.unshift(part);
      for (let i = part.indexOf(0x0a); i !== -1; i = part.indexOf(0x0a, i + 1)) newlines++;
    }
    let data = Buffer.concat(chunks);
    if (pos > 0) {
      // Drop the partial first line (cut at a byte boundary, possibly inside a UTF-8 character).
      const first = data.indexOf(0x0a);
      data = data.subarray(first + 1);
    }
    if (data.length === 0) return [];
    let text = data.toString('utf8');
    if (text.endsWith('\n')) text = text.slice(0, -1);
    const all = text.split('\n');
    return all.length > n ? all.slice(all.length - n) : all;
  } finally {
    await fh.close();
  }
}
