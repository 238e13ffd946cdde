/**
 * Parallel gzip: the input is cut into 1 MiB blocks, each compressed by a worker thread as an
 * independent gzip member (RFC 1952 allows a stream of members; Node's gunzip, GNU gzip and Go's
 * gzip.Reader read them as one stream). Members are emitted in input order.
 *
 * Memory: at most `2 × workers` blocks are in flight (sent to a worker and not yet pushed), and
 * Transform's own flow control stops new input while the readable side is above its high-water mark.
 * Workers are created on the first block and terminated on end, error or destroy.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { Worker } from 'node:worker_threads';
import zlib from 'node:zlib';

export const PGZIP_BLOCK_SIZE = 1024 * 1024;

// Runs in the worker (CommonJS in eval mode). Only node:zlib and node:worker_threads.
const WORKER_CODE = `
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const zlib = require('node:zlib');
parentPort.on('message', (msg) => {
  const input = new Uint8Array(msg.buf, 0, msg.len);
  const out = zlib.gzipSync(input, { level: workerData.level });
  const copy = new Uint8Array(out.length);
  copy.set(out);
  parentPort.postMessage({ id: msg.id, buf: copy.buffer }, [copy.buffer]);
});
`;

let liveWorkers = 0;

/** Worker threads currently alive across all parallel gzip streams (for tests and metrics). */
export function liveGzipWorkers(): number {
  return liveWorkers;
}

export interface ParallelGzipOptions {
  level: number;
  workers: number;
  blockSize?: number;
}

interface Slot {
  worker: Worker;
  busy: number;
}

export class ParallelGzip extends Transform {
  private readonly level: number;
  private readonly nWorkers: number;
  private readonly blockSize: number;
  private readonly maxInFlight: number;
  private slots: Slot[] = [];
  private block: Buffer | null = null;
  private blockLen = 0;
  private nextId = 0;
  private nextOut = 0;
  private inFlight = 0;
  private readonly ready = new Map<number, Buffer>();
  private waiting: TransformCallback | null = null;
  private flushing: TransformCallback | null = null;
  private bytesIn = 0;
  private terminated = false;

  constructor(opts: ParallelGzipOptions) {
    super({ readableHighWaterMark: 1024 * 1024 });
    if (!Number.isInteger(opts.level) || opts.level < 0 || opts.level > 9) throw new RangeError(`gzip level must be 0..9, got ${opts.level}`);
    this.level = opts.level;
    this.nWorkers = Math.max(1, Math.floor(opts.workers));
    this.blockSize = opts.blockSize ?? PGZIP_BLOCK_SIZE;
    this.maxInFlight = 2 * this.nWorkers;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      let off = 0;
      this.bytesIn += chunk.length;
      while (off < chunk.length) {
        if (!this.block) {
          this.block = Buffer.allocUnsafeSlow(this.blockSize);
          this.blockLen = 0;
        }
        const n = Math.min(chunk.length - off, this.blockSize - this.blockLen);
        chunk.copy(this.block, this.blockLen, off, off + n);
        this.blockLen += n;
        off += n;
        if (this.blockLen === this.blockSize) this.dispatch();
      }
    } catch (err) {
      cb(err as Error);
      return;
    }
    this.waiting = cb;
    this.release();
  }

  override _flush(cb: TransformCallback): void {
    try {
      if (this.blockLen > 0 || this.bytesIn === 0) this.dispatch();
    } catch (err) {
      cb(err as Error);
      return;
    }
    this.flushing = cb;
    this.checkFlushed();
  }

  override _destroy(err: Error | null, cb: (error: Error | null) => void): void {
    this.block = null;
    this.ready.clear();
    this.waiting = null;
    this.flushing = null;
    this.terminate();
    cb(err);
  }

  /**
   * Only the number of blocks in flight gates new input here. When the readable side is full,
   * Transform itself holds the write callback until the consumer reads (its own _read), so the
   * buffered output stays bounded by the high-water mark plus the blocks in flight.
   */
  private hasRoom(): boolean {
    return this.inFlight < this.maxInFlight;
  }

  private release(): void {
    if (this.waiting && this.hasRoom()) {
      const cb = this.waiting;
      this.waiting = null;
      cb();
    }
  }

  private checkFlushed(): void {
    if (this.flushing && this.inFlight === 0) {
      const cb = this.flushing;
      this.flushing = null;
      this.terminate();
      cb();
    }
  }

  private dispatch(): void {
    const buf = this.block ?? Buffer.allocUnsafeSlow(0);
    const len = this.blockLen;
    this.block = null;
    this.blockLen = 0;
    const id = this.nextId++;
    this.inFlight++;
    const slot = this.pickSlot();
    slot.busy++;
    if (slot.busy === 1) slot.worker.ref();
    // allocUnsafeSlow gives the block its own ArrayBuffer, so it can be transferred, not copied.
    const ab = buf.buffer as ArrayBuffer;
    slot.worker.postMessage({ id, buf: ab, len }, [ab]);
  }

  private pickSlot(): Slot {
    if (this.slots.length < this.nWorkers) {
      const slot = this.spawn();
      if (slot) return slot;
    }
    let best = this.slots[0];
    for (const s of this.slots) if (s.busy < best.busy) best = s;
    return best;
  }

  private spawn(): Slot | null {
    if (this.slots.length && this.slots.some((s) => s.busy === 0)) return null;
    const worker = new Worker(WORKER_CODE, { eval: true, workerData: { level: this.level } });
    liveWorkers++;
    const slot: Slot = { worker, busy: 0 };
    worker.on('message', (msg: { id: number; buf: ArrayBuffer }) => {
      slot.busy--;
      if (slot.busy === 0) worker.unref();
      this.onResult(msg.id, Buffer.from(msg.buf));
    });
    worker.on('error', (err) => this.destroy(err));
    worker.once('exit', (code) => {
      liveWorkers--;
      if (!this.terminated && !this.destroyed) this.destroy(new Error(`gzip worker exited unexpectedly (code ${code})`));
    });
    this.slots.push(slot);
    return slot;
  }

  private onResult(id: number, out: Buffer): void {
    if (this.destroyed) return;
    this.ready.set(id, out);
    while (this.ready.has(this.nextOut)) {
      const b = this.ready.get(this.nextOut)!;
      this.ready.delete(this.nextOut);
      this.nextOut++;
      this.inFlight--;
      this.push(b);
    }
    this.release();
    this.checkFlushed();
  }

  private terminate(): void {
    if (this.terminated) return;
    this.terminated = true;
    for (const s of this.slots) void s.worker.terminate();
    this.slots = [];
  }
}

/**
 * A gzip Transform: level 0 or a single worker use plain zlib on this thread; otherwise
 * parallel gzip on `workers` threads.
 */
export function createGzip(level: number, workers: number): Transform {
  if (level === 0 || workers <= 1) return zlib.createGzip({ level, chunkSize: 64 * 1024 });
  return new ParallelGzip({ level, workers });
}
