/**
 * Gunzip (multi-member) that never fails the pipeline by itself.
 *
 * A gzip error ends the decompressed output and is kept in `gzipError`; the reader decides:
 * before the tar end-of-archive marker it is a BAD_ARCHIVE, after it the bytes are trailing
 * garbage. After `discard()` (or an error) every further input byte is read and dropped, so the
 * caller, which hashes the whole part upstream, still sees all of it.
 */
import { Transform, type TransformCallback } from 'node:stream';
import zlib from 'node:zlib';

export class TolerantGunzip extends Transform {
  gzipError: Error | null = null;
  private z: zlib.Gunzip | null;
  private stopped = false;
  private pendingWrite: TransformCallback | null = null;
  private pendingFlush: TransformCallback | null = null;

  constructor(chunkSize = 128 * 1024) {
    super({ readableHighWaterMark: 256 * 1024 });
    const z = zlib.createGunzip({ chunkSize });
    this.z = z;
    z.on('data', (d: Buffer) => {
      if (this.stopped) return;
      if (!this.push(d)) z.pause();
    });
    z.on('error', (err) => {
      this.gzipError = err;
      this.stop(true);
    });
    z.on('end', () => {
      const cb = this.pendingFlush;
      this.pendingFlush = null;
      cb?.();
    });
  }

  /**
   * Stop decompressing and drop all further input; the output ends when the input does, so a
   * reader that waits for the end has consumed every input byte.
   */
  discard(): void {
    this.stop(false);
  }

  /** On a gzip error the output ends at once: the reader fails fast on the truncated tar. */
  private stop(endOutput = true): void {
    if (this.stopped) return;
    this.stopped = true;
    const z = this.z;
    this.z = null;
    z?.removeAllListeners('data');
    z?.on('error', () => {});
    z?.destroy();
    if (endOutput) this.push(null);
    const w = this.pendingWrite;
    this.pendingWrite = null;
    w?.();
    const f = this.pendingFlush;
    this.pendingFlush = null;
    f?.();
  }

  override _read(size: number): void {
    super._read(size);
    this.z?.resume();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.stopped || !this.z) {
      cb();
      return;
    }
    this.pendingWrite = cb;
    this.z.write(chunk, () => {
      if (this.pendingWrite === cb) {
        this.pendingWrite = null;
        cb();
      }
    });
  }

  override _flush(cb: TransformCallback): void {
    if (this.stopped || !this.z) {
      cb();
      return;
    }
    this.pendingFlush = cb;
    this.z.end();
  }

  override _destroy(err: Error | null, cb: (error: Error | null) => void): void {
    const z = this.z;
    this.z = null;
    this.stopped = true;
    if (z) {
      z.on('error', () => {});
      z.destroy();
    }
    cb(err);
  }
}
