/**
 * Over 400 lines on purpose: the tree walk, the block pool and the ordered hand-off to the gzip
 * workers share one backpressure bound; split, that bound would be spread over three files.
 *
 * Packs a server's data directory into a gzip-compressed POSIX (pax) tar, streaming
 * (docs/protocol.md D5.1).
 *
 * The tar bytes are written straight into 1 MiB blocks (file data is read into the block, no
 * buffer per read); each full block becomes one gzip member: compressed on a worker thread
 * (transferred there and back, never copied), or framed as stored deflate blocks in place for
 * level 0. The consumer pulls members in order with `next()` and gives each back with `release()`
 * once it is done with the bytes (after the socket write completed), so a transfer runs on a
 * fixed set of blocks: no garbage per MiB, memory bounded by `maxBlocks` (a few MiB).
 *
 * Small files (most of a modded world or a plugin folder) are read with synchronous calls on
 * this thread: four thread-pool round trips per file (lstat, open, read, close) cost ~60 µs, the
 * synchronous calls ~10 µs. The walk yields to the event loop every few milliseconds and at every
 * block, so the daemon keeps answering meanwhile. Large files are read on the thread pool.
 */
import fs from 'node:fs';
import os from 'node:os';
import { Readable } from 'node:stream';
import { WingsError } from '../errors.js';
import { crc32 } from './crc32.js';
import { SLICE_MS, yieldToLoop } from './slice.js';
import { GzipWorkerPool, PGZIP_BLOCK_SIZE, allocBlock, blockCapacity, storeInPlace } from './pgzip.js';
import { END_OF_ARCHIVE, encodeHeader, paddingFor } from './tar.js';

export type SkippedKind = 'socket' | 'fifo' | 'device' | 'other';

export interface PackOptions {
  /** directory to archive (the server's data dir) */
  root: string;
  /** gzip level 0..9 (0 = store: still a gzip stream, no compression) */
  level: number;
  /** gzip worker threads for levels 1..9; default min(2, os.availableParallelism()) */
  workers?: number;
  /** abort: stop walking/reading promptly; next() rejects with the signal's reason */
  signal?: AbortSignal;
  /** called as raw file-content bytes are read (progress) */
  onFileBytes?: (n: number) => void;
  /** called after each regular file */
  onFileDone?: () => void;
  /** skipped entries (sockets, FIFOs, devices, vanished or unknown files) */
  onSkipped?: (relPath: string, kind: SkippedKind) => void;
  /** input bytes per gzip member (default 1 MiB) */
  blockSize?: number;
}

/** Files up to this size are read with synchronous calls. */
const SMALL_FILE = 256 * 1024;
const SLASH = Buffer.from('/');

// Callback fs wrapped by hand: fs/promises costs several times more per call (measured on
// Node 20: 4–6× per file).
function open(p: Buffer): Promise<number> {
  return new Promise((resolve, reject) =>
    fs.open(p, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW, (err, fd) => (err ? reject(err) : resolve(fd))),
  );
}
function read(fd: number, buf: Buffer, off: number, len: number, pos: number): Promise<number> {
  return new Promise((resolve, reject) => fs.read(fd, buf, off, len, pos, (err, n) => (err ? reject(err) : resolve(n))));
}
function close(fd: number): Promise<void> {
  return new Promise((resolve) => fs.close(fd, () => resolve()));
}

function isErrno(err: unknown, code: string): boolean {
  return (err as NodeJS.ErrnoException | null)?.code === code;
}

function display(rel: Buffer): string {
  return rel.toString('utf8');
}

export function defaultWorkers(): number {
  return Math.min(2, os.availableParallelism());
}

type Waiter = { resolve: () => void; reject: (err: Error) => void };

/**
 * The archive as a sequence of gzip members, pulled with `next()`. Each returned buffer is a view
 * of a pooled block and must be handed back with `release()` when its bytes are no longer needed;
 * a consumer may hold at most `maxBlocks - 2` at once (it holds fewer in practice).
 */
export class ArchiveProducer {
  readonly maxBlocks: number;
  private readonly blockSize: number;
  private readonly capacity: number;
  private readonly pool: GzipWorkerPool | null;
  private readonly free: Buffer[] = [];
  private allocated = 0;
  private blockWaiters: Waiter[] = [];
  private cur: Buffer | null = null;
  private curLen = 0;
  private nextSeq = 0;
  private nextOut = 0;
  private delivered = 0;
  private readonly ready = new Map<number, Buffer>();
  /** views handed to the consumer → their block */
  private readonly held = new Map<ArrayBufferLike, Buffer>();
  private outWaiter: { resolve: (b: Buffer | null) => void; reject: (err: Error) => void } | null = null;
  private walkDone = false;
  private error: Error | null = null;
  private sliceStart = 0;
  private yieldDue = false;
  private started = false;
  private readonly onAbort: () => void;

  constructor(private readonly opts: PackOptions) {
    const level = opts.level;
    if (!Number.isInteger(level) || level < 0 || level > 9) throw new RangeError(`gzip level must be 0..9, got ${level}`);
    this.blockSize = opts.blockSize ?? PGZIP_BLOCK_SIZE;
    this.capacity = blockCapacity(this.blockSize);
    const workers = Math.max(1, Math.floor(opts.workers ?? defaultWorkers()));
    // Level 0 frames stored members on this thread (a CRC-32 and a memmove per block): cheaper
    // than a round trip to a worker. Without a CRC-32 function (neither @node-rs/crc32 nor zlib.crc32,
    // Node < 20.15) a worker does it.
    this.pool = level === 0 && crc32 ? null : new GzipWorkerPool(level, workers, (err) => this.fail(err));
    // one block being filled, two per worker compressing or queued, two with the consumer
    this.maxBlocks = (this.pool ? 2 * workers : 1) + 3;
    this.onAbort = () => this.fail(this.abortReason());
    if (opts.signal?.aborted) queueMicrotask(this.onAbort);
    else opts.signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  /** The next gzip member, or null at the end. Rejects with the walk's error or the abort reason. */
  next(): Promise<Buffer | null> {
    if (!this.started) {
      this.started = true;
      void this.walkAll();
    }
    if (this.error) return Promise.reject(this.error);
    const out = this.takeReady();
    if (out !== undefined) return Promise.resolve(out);
    if (this.outWaiter) return Promise.reject(new Error('ArchiveProducer.next() called twice without waiting'));
    return new Promise((resolve, reject) => (this.outWaiter = { resolve, reject }));
  }

  /** Gives back a buffer returned by next(). Unknown or already released buffers are ignored. */
  release(view: Buffer): void {
    const block = this.held.get(view.buffer);
    if (!block) return;
    this.held.delete(view.buffer);
    this.recycle(block);
  }

  /** Stops everything; next() rejects from now on. */
  destroy(err?: Error): void {
    if (!err && this.walkDone && this.nextOut === this.nextSeq) return; // ended: nothing to stop
    this.fail(err ?? new WingsError('CANCELLED', 'archive cancelled'));
  }

  /** Every member is out: workers and the abort listener go. */
  private finish(): void {
    this.pool?.terminate();
    this.opts.signal?.removeEventListener('abort', this.onAbort);
  }

  private abortReason(): Error {
    const reason: unknown = this.opts.signal?.reason;
    return reason instanceof Error ? reason : new WingsError('CANCELLED', 'archive cancelled');
  }

  private fail(err: Error): void {
    if (this.error) return;
    this.error = err;
    this.opts.signal?.removeEventListener('abort', this.onAbort);
    this.pool?.terminate();
    this.ready.clear();
    this.free.length = 0;
    this.cur = null;
    const waiters = this.blockWaiters;
    this.blockWaiters = [];
    for (const w of waiters) w.reject(err);
    const out = this.outWaiter;
    this.outWaiter = null;
    out?.reject(err);
  }

  // ---- output side ----------------------------------------------------------------------------

  private takeReady(): Buffer | null | undefined {
    const view = this.ready.get(this.nextOut);
    if (view) {
      this.ready.delete(this.nextOut);
      this.nextOut++;
      return view;
    }
    if (this.walkDone && this.nextOut === this.nextSeq) return null;
    return undefined;
  }

  private deliver(seq: number, block: Buffer, len: number): void {
    if (this.error) return;
    const view = block.subarray(0, len);
    this.held.set(view.buffer, block);
    this.ready.set(seq, view);
    this.delivered++;
    if (this.walkDone && this.delivered === this.nextSeq) this.finish();
    this.pump();
  }

  private pump(): void {
    if (!this.outWaiter) return;
    const out = this.takeReady();
    if (out === undefined) return;
    const w = this.outWaiter;
    this.outWaiter = null;
    w.resolve(out);
  }

  // ---- blocks -----------------------------------------------------------------------------------

  private recycle(block: Buffer): void {
    if (this.error) return;
    if (block.length !== this.capacity) {
      this.allocated--; // a worker's non-reusable copy stands for a block that is gone
    } else {
      this.free.push(block);
    }
    const w = this.blockWaiters.shift();
    w?.resolve();
  }

  /**
   * Makes sure a block is being filled; false when none is free (the consumer holds them or they
   * are being compressed): then `waitBlock()`. The fast path of every write: no promise.
   */
  private ensureBlock(): boolean {
    if (this.error) throw this.error;
    if (this.cur) return true;
    let b = this.free.pop();
    if (!b && this.allocated < this.maxBlocks) {
      this.allocated++;
      b = allocBlock(this.capacity);
    }
    if (!b) return false;
    this.cur = b;
    this.curLen = 0;
    return true;
  }

  private async waitBlock(): Promise<void> {
    while (!this.ensureBlock()) await new Promise<void>((resolve, reject) => this.blockWaiters.push({ resolve, reject }));
    this.sliceStart = performance.now();
  }

  /** Hands a full block over (compression or stored framing); the walk yields at its next entry. */
  private flushBlock(): void {
    const block = this.cur!;
    const len = this.curLen;
    this.cur = null;
    this.curLen = 0;
    this.yieldDue = true;
    const seq = this.nextSeq++;
    if (!this.pool) {
      const out = storeInPlace(block, len, crc32!);
      this.deliver(seq, block, out);
      return;
    }
    // A non-reusable answer is a copy standing in for the block (which stays with the worker):
    // the count of live blocks is unchanged until the copy is released.
    this.pool.submit(block, len, (out, outLen) => this.deliver(seq, out, outLen));
  }

  /** Copies `src` into the stream; a promise only when it has to wait for a block. */
  private write(src: Buffer, from = 0): Promise<void> | null {
    let off = from;
    while (off < src.length) {
      if (!this.ensureBlock()) return this.waitBlock().then(() => this.write(src, off) ?? undefined);
      const n = Math.min(this.blockSize - this.curLen, src.length - off);
      src.copy(this.cur!, this.curLen, off, off + n);
      this.curLen += n;
      off += n;
      if (this.curLen === this.blockSize) this.flushBlock();
    }
    return null;
  }

  /** True after a block left or after SLICE_MS of synchronous work: time to yieldNow(). */
  private yieldIsDue(): boolean {
    return this.yieldDue || performance.now() - this.sliceStart >= SLICE_MS;
  }

  /** Lets the event loop turn (output, API requests), then starts a new time slice. */
  private async yieldNow(): Promise<void> {
    this.yieldDue = false;
    await yieldToLoop();
    this.sliceStart = performance.now();
    if (this.error) throw this.error;
  }

  // ---- the walk -------------------------------------------------------------------------------

  private async walkAll(): Promise<void> {
    try {
      const root = Buffer.from(this.opts.root);
      const rootSt = fs.statSync(root);
      if (!rootSt.isDirectory()) throw new WingsError('INTERNAL', `archive root is not a directory: ${this.opts.root}`);
      this.sliceStart = performance.now();
      await this.walk(root, null);
      await this.write(END_OF_ARCHIVE);
      if (this.curLen > 0) this.flushBlock();
      this.cur = null;
      this.walkDone = true;
      if (this.delivered === this.nextSeq) this.finish();
      this.pump();
    } catch (err) {
      this.fail(err instanceof Error ? err : new Error(String(err)));
    }
  }

  private async walk(absDir: Buffer, relDir: Buffer | null): Promise<void> {
    const names = fs.readdirSync(absDir, { encoding: 'buffer' });
    names.sort((a, b) => Buffer.compare(a, b));
    for (const name of names) {
      // checked here, not awaited unconditionally: no promise per entry on the fast path
      if (this.yieldIsDue()) await this.yieldNow();
      if (this.error) throw this.error;
      const abs = Buffer.concat([absDir, SLASH, name]);
      const rel = relDir ? Buffer.concat([relDir, SLASH, name]) : name;
      let st: fs.Stats;
      try {
        st = fs.lstatSync(abs);
      } catch (err) {
        if (isErrno(err, 'ENOENT')) {
          this.opts.onSkipped?.(display(rel), 'other'); // vanished since readdir
          continue;
        }
        throw err;
      }
      const mode = st.mode & 0o777;
      const mtime = Math.floor(st.mtimeMs / 1000);
      if (st.isDirectory()) {
        await this.write(encodeHeader({ name: rel, type: 'directory', size: 0, mode, mtime, uid: st.uid, gid: st.gid }));
        await this.walk(abs, rel);
      } else if (st.isSymbolicLink()) {
        const linkname = fs.readlinkSync(abs, { encoding: 'buffer' });
        await this.write(encodeHeader({ name: rel, type: 'symlink', size: 0, linkname, mode, mtime, uid: st.uid, gid: st.gid }));
      } else if (st.isFile()) {
        const size = st.size;
        const small = size <= SMALL_FILE;
        let fd: number;
        try {
          fd = small ? fs.openSync(abs, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW) : await open(abs);
        } catch (err) {
          if (isErrno(err, 'ENOENT')) {
            this.opts.onSkipped?.(display(rel), 'other');
            continue;
          }
          throw err;
        }
        try {
          // Small files take no promise at all unless a block has to be waited for.
          let wait = this.write(encodeHeader({ name: rel, type: 'file', size, mode, mtime, uid: st.uid, gid: st.gid }));
          if (wait) await wait;
          wait = small ? this.readSmall(fd, rel, size, 0) : this.readLarge(fd, rel, size, 0);
          if (wait) await wait;
          wait = this.write(END_OF_ARCHIVE, END_OF_ARCHIVE.length - paddingFor(size));
          if (wait) await wait;
        } finally {
          if (small) fs.closeSync(fd);
          else await close(fd);
        }
        this.opts.onFileDone?.();
      } else {
        const kind: SkippedKind = st.isSocket() ? 'socket' : st.isFIFO() ? 'fifo' : st.isCharacterDevice() || st.isBlockDevice() ? 'device' : 'other';
        this.opts.onSkipped?.(display(rel), kind);
      }
    }
  }

  /**
   * How many bytes to read next: when the rest of the file fits in the block, one byte past its
   * expected end (the block's spare capacity takes it), so a file that grew is caught without an
   * extra read; that byte is never sent.
   */
  private want(rest: number): number {
    const room = this.blockSize - this.curLen;
    return rest < room ? rest + 1 : room;
  }

  /** Takes `n` bytes just read at `pos`; true when the file is complete. */
  private took(n: number, want: number, pos: number, size: number, rel: Buffer): boolean {
    if (pos + n > size) throw new WingsError('CONFLICT', `file changed while being archived: ${display(rel)} grew beyond ${size} bytes`);
    if (n === 0) {
      if (pos < size) throw new WingsError('CONFLICT', `file changed while being archived: ${display(rel)} shrank from ${size} to ${pos} bytes`);
      return true;
    }
    this.curLen += n;
    this.opts.onFileBytes?.(n);
    if (this.curLen === this.blockSize) this.flushBlock();
    // A short read of a regular file at its expected end is its end: no extra read to see the 0.
    return pos + n === size && n < want;
  }

  /** Reads the file from `pos` with synchronous calls; a promise only when waiting for a block. */
  private readSmall(fd: number, rel: Buffer, size: number, from: number): Promise<void> | null {
    let pos = from;
    for (;;) {
      if (!this.ensureBlock()) return this.waitBlock().then(() => this.readSmall(fd, rel, size, pos) ?? undefined);
      const want = this.want(size - pos);
      const n = fs.readSync(fd, this.cur!, this.curLen, want, pos);
      const done = this.took(n, want, pos, size, rel);
      pos += n;
      if (done) return null;
    }
  }

  /** Reads the file from `pos` on the thread pool, straight into the blocks. */
  private async readLarge(fd: number, rel: Buffer, size: number, from: number): Promise<void> {
    let pos = from;
    for (;;) {
      if (!this.ensureBlock()) await this.waitBlock();
      const want = this.want(size - pos);
      const n = await read(fd, this.cur!, this.curLen, want, pos);
      if (this.error) throw this.error;
      const done = this.took(n, want, pos, size, rel);
      pos += n;
      if (done) return;
    }
  }
}

/**
 * The archive as a readable stream of gzip bytes (each member copied out of its block). Errors
 * and aborts destroy it. For the transfer path, ArchiveProducer itself avoids the copy.
 */
export function createArchiveStream(opts: PackOptions): Readable {
  const producer = new ArchiveProducer(opts);
  return new Readable({
    highWaterMark: PGZIP_BLOCK_SIZE,
    read() {
      producer.next().then(
        (view) => {
          if (!view) {
            this.push(null);
            return;
          }
          const out = Buffer.allocUnsafe(view.length);
          view.copy(out);
          producer.release(view);
          this.push(out);
        },
        (err: Error) => this.destroy(err),
      );
    },
    destroy(err, cb) {
      producer.destroy(err ?? undefined);
      cb(err);
    },
  });
}
