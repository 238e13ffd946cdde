/**
 * Gunzip (multi-member) that never fails the pipeline by itself.
 *
 * A gzip error ends the decompressed output and is kept in `gzipError`; the reader decides:
 * before the tar end-of-archive marker it is a BAD_ARCHIVE, after it the bytes are trailing
 * garbage. After `discard()` (or an error) every further input byte is read and dropped, so the
 * caller, which hashes the whole part upstream, still sees all of it.
 *
 * Two ways through, chosen by the first deflate block of the stream:
 * - compressed (what `best_speed` and every other level write): zlib's gunzip on the thread pool,
 *   members and CRC-32 checked by zlib;
 * - stored (what `compression_level: none` writes, here and in Go): the stored blocks are parsed
 *   here and their bytes passed on as slices of the input: no zlib, no copy. Should a later block of
 *   such a stream be compressed (no known writer does that, but gzip allows it), the rest of that
 *   member goes through zlib's raw inflate, primed with the member's last 32 KiB as its window, and
 *   the parser takes over again at the member's trailer. The trailer's length is checked; its
 *   CRC-32 is not recomputed on this path: the archive's SHA-256, checked on every byte before the
 *   transfer may complete, already covers the data (and CRC-32 costs ~0.5 s of CPU per GiB here).
 */
import { Transform, type TransformCallback } from 'node:stream';
import zlib from 'node:zlib';

const WINDOW = 32 * 1024;
const MAX_HEADER = 64 * 1024;
const FHCRC = 2;
const FEXTRA = 4;
const FNAME = 8;
const FCOMMENT = 16;

type Mode = 'sniff' | 'stored' | 'zlib' | 'raw' | 'stopped';
type Step = 'member' | 'block' | 'data' | 'trailer' | 'padding';

/**
 * Length of the gzip member header at the start of `b`, -1 when `b` is too short to say,
 * or an error message.
 */
function headerLength(b: Buffer): number | string {
  if ((b.length > 0 && b[0] !== 0x1f) || (b.length > 1 && b[1] !== 0x8b)) return 'incorrect header check';
  if (b.length > 2 && b[2] !== 8) return 'unknown compression method';
  if (b.length < 10) return -1;
  const flg = b[3];
  if (flg & 0xe0) return 'unknown header flags set';
  let p = 10;
  if (flg & FEXTRA) {
    if (b.length < p + 2) return -1;
    p += 2 + b.readUInt16LE(p);
    if (b.length < p) return -1;
  }
  for (const f of [FNAME, FCOMMENT]) {
    if (flg & f) {
      const z = b.indexOf(0, p);
      if (z === -1) return -1;
      p = z + 1;
    }
  }
  if (flg & FHCRC) p += 2;
  return b.length < p ? -1 : p;
}

export class TolerantGunzip extends Transform {
  gzipError: Error | null = null;
  private mode: Mode = 'sniff';
  /** zlib for the whole stream (mode 'zlib') or for the rest of one member (mode 'raw') */
  private z: zlib.Gunzip | zlib.InflateRaw | null = null;
  private pendingWrite: TransformCallback | null = null;
  private pendingFlush: TransformCallback | null = null;
  /** bytes not parsed yet: a header cut by a chunk boundary, or the stream's start while sniffing */
  private carry: Buffer | null = null;
  private step: Step = 'member';
  /** bytes left in the current stored block */
  private left = 0;
  private final = false;
  /** output bytes of the current member, modulo 2^32 (the trailer's ISIZE) */
  private isize = 0;
  /** the current member's last output slices, ≥ 32 KiB when there was that much (raw inflate's window) */
  private recent: Buffer[] = [];
  private recentBytes = 0;
  /** raw mode: input bytes written to zlib, and the last chunk written */
  private fed = 0;
  private lastFed: Buffer | null = null;

  constructor(private readonly chunkSize = 128 * 1024) {
    // Object mode: each slice is read as it was pushed. In byte mode read() would concatenate
    // everything buffered (a copy of every byte); the reader gathers slices into writev instead.
    super({ readableObjectMode: true, readableHighWaterMark: 16 });
  }

  /**
   * Stop decompressing and drop all further input; the output ends when the input does, so a
   * reader that waits for the end has consumed every input byte.
   */
  discard(): void {
    this.stop(false);
  }

  private fail(message: string): void {
    const err = new Error(message) as Error & { code: string };
    err.code = 'Z_DATA_ERROR';
    this.gzipError = err;
    this.stop(true);
  }

  /** On a gzip error the output ends at once: the reader fails fast on the truncated tar. */
  private stop(endOutput = true): void {
    if (this.mode === 'stopped') return;
    this.mode = 'stopped';
    this.carry = null;
    this.recent = [];
    this.lastFed = null;
    this.dropZlib();
    if (endOutput) this.push(null);
    const w = this.pendingWrite;
    this.pendingWrite = null;
    w?.();
    const f = this.pendingFlush;
    this.pendingFlush = null;
    f?.();
  }

  private dropZlib(): void {
    const z = this.z;
    this.z = null;
    if (!z) return;
    z.removeAllListeners();
    z.on('error', () => {});
    z.destroy();
  }

  private startZlib(z: zlib.Gunzip | zlib.InflateRaw): void {
    this.z = z;
    z.on('data', (d: Buffer) => {
      if (this.z !== z) return;
      this.isize = (this.isize + d.length) >>> 0;
      if (!this.push(d)) z.pause();
    });
    z.on('error', (err) => {
      if (this.z !== z) return;
      this.gzipError = err;
      this.stop(true);
    });
  }

  override _read(size: number): void {
    super._read(size);
    this.z?.resume();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    switch (this.mode) {
      case 'stopped':
        return cb();
      case 'zlib':
        return this.writeZlib(chunk, cb);
      case 'raw':
        return this.writeRaw(chunk, cb);
      case 'sniff':
        return this.sniff(chunk, cb);
      case 'stored':
        return this.parse(chunk, cb);
    }
  }

  override _flush(cb: TransformCallback): void {
    if (this.mode === 'sniff') {
      // too short to tell: zlib says what is wrong with it (empty input is not an error there)
      const rest = this.carry;
      this.carry = null;
      this.toZlib();
      if (rest) return this.writeZlib(rest, () => this.endZlib(cb));
      return this.endZlib(cb);
    }
    if (this.mode === 'zlib') return this.endZlib(cb);
    if (this.mode === 'stored' && (this.step === 'member' || this.step === 'padding') && !this.carry) return cb();
    if (this.mode !== 'stopped') this.fail('unexpected end of file');
    cb();
  }

  override _destroy(err: Error | null, cb: (error: Error | null) => void): void {
    this.mode = 'stopped';
    this.dropZlib();
    cb(err);
  }

  // ------------------------------------------------------------------ zlib for the whole stream

  private toZlib(): void {
    this.mode = 'zlib';
    const z = zlib.createGunzip({ chunkSize: this.chunkSize });
    this.startZlib(z);
    z.on('end', () => {
      const cb = this.pendingFlush;
      this.pendingFlush = null;
      cb?.();
    });
  }

  private writeZlib(chunk: Buffer, cb: TransformCallback): void {
    const z = this.z;
    if (!z) return cb();
    this.pendingWrite = cb;
    z.write(chunk, () => {
      if (this.pendingWrite === cb) {
        this.pendingWrite = null;
        cb();
      }
    });
  }

  private endZlib(cb: TransformCallback): void {
    if (this.mode !== 'zlib' || !this.z) return cb();
    this.pendingFlush = cb;
    this.z.end();
  }

  // ------------------------------------------------------------------ the stored path

  private sniff(chunk: Buffer, cb: TransformCallback): void {
    const b = this.carry ? Buffer.concat([this.carry, chunk]) : chunk;
    this.carry = null;
    const h = headerLength(b);
    if (h === -1 || (typeof h === 'number' && b.length <= h)) {
      if (b.length > MAX_HEADER) return this.sniffDecided(false, b, cb);
      this.carry = b;
      return cb();
    }
    this.sniffDecided(typeof h === 'number' && ((b[h] >> 1) & 3) === 0, b, cb);
  }

  private sniffDecided(stored: boolean, b: Buffer, cb: TransformCallback): void {
    if (!stored) {
      this.toZlib();
      return this.writeZlib(b, cb);
    }
    this.mode = 'stored';
    this.parse(b, cb);
  }

  /**
   * Parse stored-path input, pushing block bytes as slices of `chunk`; calls `cb` once done with
   * it (at once, or after zlib took the part that follows a compressed block).
   */
  private parse(chunk: Buffer, cb: TransformCallback): void {
    this.pendingWrite = cb;
    this.parseSome(chunk);
    if (this.mode !== 'raw') this.release(cb);
  }

  private parseSome(chunk: Buffer): void {
    let b = chunk;
    if (this.carry) {
      b = Buffer.concat([this.carry, chunk]);
      this.carry = null;
    }
    let p = 0;
    while (p < b.length && this.mode === 'stored') {
      switch (this.step) {
        case 'data': {
          const n = Math.min(this.left, b.length - p);
          this.out(b.subarray(p, p + n));
          p += n;
          this.left -= n;
          if (this.left === 0) this.step = this.final ? 'trailer' : 'block';
          break;
        }
        case 'block': {
          const type = (b[p] >> 1) & 3;
          if (type !== 0) return this.toRaw(b.subarray(p));
          if (b.length - p < 5) return this.keep(b.subarray(p));
          const len = b[p + 1] | (b[p + 2] << 8);
          const nlen = b[p + 3] | (b[p + 4] << 8);
          if (len !== (~nlen & 0xffff)) return this.fail('invalid stored block lengths');
          this.final = (b[p] & 1) === 1;
          this.left = len;
          p += 5;
          this.step = len ? 'data' : this.final ? 'trailer' : 'block';
          break;
        }
        case 'trailer': {
          if (b.length - p < 8) return this.keep(b.subarray(p));
          if (b.readUInt32LE(p + 4) !== this.isize) return this.fail('incorrect length check');
          p += 8;
          this.step = 'member';
          break;
        }
        case 'member': {
          if (b[p] === 0) {
            this.step = 'padding'; // zeros after the last member are accepted, as zlib does
            break;
          }
          const h = headerLength(b.subarray(p));
          if (typeof h === 'string') return this.fail(h);
          if (h === -1) {
            if (b.length - p > MAX_HEADER) return this.fail('gzip header too long');
            return this.keep(b.subarray(p));
          }
          p += h;
          this.isize = 0;
          this.recent = [];
          this.recentBytes = 0;
          this.step = 'block';
          break;
        }
        case 'padding': {
          const rest = b.subarray(p);
          if (rest.some((x) => x !== 0)) return this.fail('unknown compression method');
          p = b.length;
          break;
        }
      }
    }
  }

  private keep(rest: Buffer): void {
    this.carry = Buffer.from(rest); // a few bytes; not a view that would pin the whole chunk
  }

  private out(slice: Buffer): void {
    if (!slice.length) return;
    this.isize = (this.isize + slice.length) >>> 0;
    this.recent.push(slice);
    this.recentBytes += slice.length;
    while (this.recentBytes - this.recent[0].length >= WINDOW) this.recentBytes -= this.recent.shift()!.length;
    this.push(slice);
  }

  // ------------------------------------------------------------------ raw inflate for one member

  /** A compressed block inside a stored stream: the rest of this member goes through zlib. */
  private toRaw(rest: Buffer): void {
    const cb = this.pendingWrite!; // set by parse(), which called us
    const win = Buffer.concat(this.recent);
    this.recent = [];
    this.recentBytes = 0;
    this.mode = 'raw';
    this.fed = 0;
    const z = zlib.createInflateRaw({ chunkSize: this.chunkSize, ...(win.length ? { dictionary: win.subarray(-WINDOW) } : {}) });
    this.startZlib(z);
    // the chunk's callback waits for zlib: the next chunk must not be fed before this one's end is known
    this.feedRaw(rest, cb);
  }

  private writeRaw(chunk: Buffer, cb: TransformCallback): void {
    this.pendingWrite = cb;
    this.feedRaw(chunk, cb);
  }

  private feedRaw(chunk: Buffer, cb: TransformCallback): void {
    const z = this.z;
    if (!z) return cb();
    this.fed += chunk.length;
    this.lastFed = chunk;
    z.write(chunk, () => {
      if (this.z !== z) return;
      const leftover = this.fed - z.bytesWritten;
      if (leftover <= 0) {
        this.release(cb);
        return;
      }
      // The member's deflate data ended inside this chunk: once zlib's output is all out, the
      // parser goes on from the trailer with the bytes zlib did not take.
      const tail = this.lastFed!.subarray(this.lastFed!.length - leftover);
      const resume = (): void => {
        if (this.z !== z) return;
        this.dropZlib();
        this.mode = 'stored';
        this.step = 'trailer';
        this.lastFed = null;
        this.parse(tail, cb);
      };
      if (z.readableEnded) resume();
      else z.once('end', resume);
    });
  }

  private release(cb: TransformCallback): void {
    if (this.pendingWrite === cb) {
      this.pendingWrite = null;
      cb();
    }
  }
}
