/**
 * Parallel gzip: input cut into 1 MiB blocks, each compressed by a worker thread as an independent
 * gzip member (RFC 1952 allows a stream of members; Node's gunzip, GNU gzip and Go's gzip.Reader
 * read them as one stream). Members are emitted in input order.
 *
 * GzipWorkerPool does the work on blocks it is handed (the archive producer of pack.ts fills them
 * directly and puts the members back in order). Workers are created on demand and terminated by
 * the pool's owner at the end, on error or on abort.
 */
import { Worker } from 'node:worker_threads';
import { fastCrc32Path } from './crc32.js';

export const PGZIP_BLOCK_SIZE = 1024 * 1024;

// Runs in the worker (CommonJS in eval mode). Only node:zlib and node:worker_threads.
//
// Incompressible blocks (already-compressed worlds, jars, archives, random data) cost deflate
// the most time for nothing: level 1 runs at ~20 MiB/s on random data against ~50 on text. So a
// block is first probed: up to three 16 KiB slices are checked for 4-byte repeats (what LZ77
// finds; a hash table, no allocation) and order-0 entropy; when none looks compressible (under
// 2 % repeats and over 7.5 bits per byte), the block is written as stored deflate blocks (what level 0
// writes) instead. A block that mixes compressible and random data compresses well enough in the
// probe and keeps its level. The output is a valid gzip member either way.
//
// Stored members are framed here, in place in the block (CRC-32 from crc32.ts's library, a memmove per
// 64 KiB): no zlib stream, no allocation. Compressed members are copied back into the block. The
// block (its capacity has room for the stored framing) then goes back to the main thread, which
// reuses it: buffers created here and transferred to the main thread are not counted by its
// GC heuristics and piled up there (~130 MiB of RSS per worker in a probe).
/**
 * A gzip member of stored deflate blocks (what level 0 writes), built in place in `buf` over its
 * first `len` bytes; returns the member's length, or -1 when `buf` has no room for the framing.
 * Runs on the main thread and, through its source text, in the workers: keep it self-contained.
 */
export function storeInPlace(buf: Uint8Array, len: number, crc32: (data: Uint8Array) => number): number {
  const STORED = 65535;
  const n = Math.max(1, Math.ceil(len / STORED));
  const total = 10 + 5 * n + len + 8;
  if (total > buf.length) return -1;
  const crc = crc32(buf.subarray(0, len)) >>> 0;
  for (let i = n - 1; i >= 0; i--) {
    const s = i * STORED;
    const k = Math.min(len, s + STORED) - s;
    const d = 10 + 5 * (i + 1) + s;
    buf.copyWithin(d, s, s + k);
    buf[d - 5] = i === n - 1 ? 1 : 0;
    buf[d - 4] = k & 255;
    buf[d - 3] = k >>> 8;
    buf[d - 2] = ~k & 255;
    buf[d - 1] = (~k >>> 8) & 255;
  }
  buf.set([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3], 0);
  const t = new DataView(buf.buffer, buf.byteOffset + total - 8, 8);
  t.setUint32(0, crc, true);
  t.setUint32(4, len >>> 0, true);
  return total;
}

const WORKER_CODE = `
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const zlib = require('node:zlib');
const PROBE = 16 * 1024;
let crc32 = typeof zlib.crc32 === 'function' ? zlib.crc32 : null;
try {
  if (workerData.crc32Path) crc32 = require(workerData.crc32Path).crc32;
} catch {}
const hashTable = new Int32Array(1 << 12);
const hist = new Uint32Array(256);
/** Cheap estimate, no allocation: 4-byte repeats (what LZ77 finds) and order-0 entropy. */
function compressibleSlice(b) {
  hashTable.fill(-1);
  hist.fill(0);
  let matches = 0;
  const end = b.length - 3;
  for (let i = 0; i < end; i++) {
    const v = b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24);
    const h = Math.imul(v, 0x9e3779b1) >>> 20;
    const p = hashTable[h];
    if (p >= 0 && b[p] === b[i] && b[p + 1] === b[i + 1] && b[p + 2] === b[i + 2] && b[p + 3] === b[i + 3]) matches++;
    hashTable[h] = i;
    hist[b[i]]++;
  }
  if (matches > 0.02 * b.length) return true;
  let bits = 0;
  for (let i = 0; i < 256; i++) {
    if (hist[i]) {
      const q = hist[i] / b.length;
      bits -= q * Math.log2(q);
    }
  }
  return bits < 7.5;
}
function incompressible(input) {
  if (input.length < 8 * PROBE) return false;
  const step = Math.floor((input.length - PROBE) / 2);
  for (let i = 0; i < 3; i++) {
    // one compressible slice is enough to keep the level
    if (compressibleSlice(input.subarray(i * step, i * step + PROBE))) return false;
  }
  return true;
}
${storeInPlace.toString()}
// gzipSync leaves its output buffer (about the compressed size) behind at every block; V8 lets
// up to 64 MiB of such external garbage pile up per isolate before it collects. A collection of
// this tiny heap takes about a millisecond, so one every 4 compressed blocks keeps each worker
// small. gc is exposed for this worker's context only.
let collect = null;
try {
  require('node:v8').setFlagsFromString('--expose-gc');
  collect = require('node:vm').runInNewContext('gc');
} catch {}
let sinceGc = 0;
parentPort.on('message', (msg) => {
  const block = new Uint8Array(msg.buf);
  const input = block.subarray(0, msg.len);
  const level = workerData.level > 0 && incompressible(input) ? 0 : workerData.level;
  let len = level === 0 && crc32 ? storeInPlace(block, msg.len, crc32) : -1;
  if (len < 0) {
    const out = zlib.gzipSync(input, { level });
    if (out.length <= block.length) {
      block.set(out, 0);
      len = out.length;
      if (collect && ++sinceGc >= 4) {
        sinceGc = 0;
        collect();
      }
    } else {
      // cannot happen with the block's spare room; kept correct anyway
      const copy = new Uint8Array(out);
      parentPort.postMessage({ id: msg.id, buf: copy.buffer, len: copy.length, reuse: false }, [copy.buffer]);
      return;
    }
  }
  parentPort.postMessage({ id: msg.id, buf: msg.buf, len, reuse: true }, [msg.buf]);
});
`;

let liveWorkers = 0;

/** Worker threads currently alive across all parallel gzip streams (for tests and metrics). */
export function liveGzipWorkers(): number {
  return liveWorkers;
}

/** Bytes a block needs for `blockSize` bytes of input: room for the stored framing (5 bytes per 64 KiB, header, trailer) and any deflate overhead. */
export function blockCapacity(blockSize: number): number {
  return blockSize + Math.max(4096, Math.ceil(blockSize / 64));
}

/** A block that can travel to a worker and back: its own ArrayBuffer, offset 0. */
export function allocBlock(capacity: number): Buffer {
  return Buffer.allocUnsafeSlow(capacity);
}

/**
 * Called with the block back from its worker: `out` holds the member in `[0, len)`. `out` is the
 * block itself (a new Buffer over the same memory, transferred back) when `reusable`, else a copy.
 */
export type MemberDone = (out: Buffer, len: number, reusable: boolean) => void;

interface Slot {
  worker: Worker;
  busy: number;
}

/**
 * Worker threads compressing blocks into gzip members. A block is transferred, never copied: it
 * is detached (unusable) on this thread until it comes back, so a block cannot be reused by
 * mistake while a worker writes it. Workers are created on demand and unref'd while idle.
 */
export class GzipWorkerPool {
  private slots: Slot[] = [];
  private readonly pending = new Map<number, MemberDone>();
  private nextId = 0;
  private terminated = false;

  constructor(
    private readonly level: number,
    private readonly nWorkers: number,
    private readonly onFatal: (err: Error) => void,
  ) {
    if (!Number.isInteger(level) || level < 0 || level > 9) throw new RangeError(`gzip level must be 0..9, got ${level}`);
  }

  /** Compress `block[0, len)`; `block` must come from allocBlock(). */
  submit(block: Buffer, len: number, done: MemberDone): void {
    if (this.terminated) throw new Error('gzip worker pool terminated');
    const id = this.nextId++;
    const slot = this.pickSlot();
    slot.busy++;
    if (slot.busy === 1) slot.worker.ref();
    this.pending.set(id, done);
    const ab = block.buffer as ArrayBuffer;
    slot.worker.postMessage({ id, buf: ab, len }, [ab]);
  }

  terminate(): void {
    if (this.terminated) return;
    this.terminated = true;
    this.pending.clear();
    for (const s of this.slots) void s.worker.terminate();
    this.slots = [];
  }

  private pickSlot(): Slot {
    if (this.slots.length < this.nWorkers && !this.slots.some((s) => s.busy === 0)) return this.spawn();
    let best = this.slots[0];
    for (const s of this.slots) if (s.busy < best.busy) best = s;
    return best;
  }

  private spawn(): Slot {
    const worker = new Worker(WORKER_CODE, { eval: true, workerData: { level: this.level, crc32Path: fastCrc32Path } });
    liveWorkers++;
    const slot: Slot = { worker, busy: 0 };
    worker.on('message', (msg: { id: number; buf: ArrayBuffer; len: number; reuse: boolean }) => {
      slot.busy--;
      if (slot.busy === 0) worker.unref();
      const done = this.pending.get(msg.id);
      this.pending.delete(msg.id);
      if (!this.terminated && done) done(Buffer.from(msg.buf), msg.len, msg.reuse);
    });
    worker.on('error', (err) => {
      if (!this.terminated) this.onFatal(err);
    });
    worker.once('exit', (code) => {
      liveWorkers--;
      if (!this.terminated) this.onFatal(new Error(`gzip worker exited unexpectedly (code ${code})`));
    });
    this.slots.push(slot);
    return slot;
  }
}
