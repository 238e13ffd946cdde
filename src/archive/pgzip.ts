/**
 * Parallel gzip: input cut into 1 MiB blocks, each compressed by a worker thread as an independent
 * gzip member (RFC 1952 allows a stream of members; Node's gunzip, GNU gzip and Go's gzip.Reader
 * read them as one stream). Members are emitted in input order.
 *
 * GzipWorkerPool does the work on blocks it is handed (the archive producer of pack.ts fills them
 * directly and puts the members back in order). Workers are created on demand and terminated by
 * the pool's owner at the end, on error or on abort.
 *
 * The worker is the module gzip-worker beside this one, found from this module's own URL: the
 * compiled gzip-worker.js when this is dist/archive/pgzip.js (the daemon). When this module runs
 * from its TypeScript source (vitest and tsx load src/ directly: the unit tests, bench/), the
 * worker is gzip-worker.ts, which Node 20 cannot load by itself, and the main thread's loader
 * hooks do not reach worker threads there (tsx registers its ESM hooks on the main thread only,
 * and skips `--import tsx` in a worker's execArgv the same way). So on that path only, the worker
 * starts from a three-line bootstrap that installs tsx's require hook in the worker, then requires
 * gzip-worker.ts (tsx compiles it to CommonJS and caches the result). A worker starts in ~0.2 s
 * of CPU this way, ~0.45 s with tsx's ESM hooks (a loader thread per worker), ~0.09 s from dist/.
 * tsx is a devDependency; the compiled daemon never takes this path.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { BlockReply, BlockRequest, GzipWorkerData } from './gzip-worker.js';

export { storeInPlace } from './gzip-member.js';

export const PGZIP_BLOCK_SIZE = 1024 * 1024;

const FROM_SOURCE = import.meta.url.endsWith('.ts');
const WORKER_URL = new URL(FROM_SOURCE ? './gzip-worker.ts' : './gzip-worker.js', import.meta.url);

/** Source mode only: tsx's require hook in the worker, then the TypeScript worker module. */
const TS_BOOTSTRAP = `
const { workerData } = require('node:worker_threads');
require(workerData.tsx).register();
require(workerData.entry);
`;

function startWorker(data: GzipWorkerData): Worker {
  if (!FROM_SOURCE) return new Worker(WORKER_URL, { workerData: data });
  const tsx = createRequire(import.meta.url).resolve('tsx/cjs/api');
  return new Worker(TS_BOOTSTRAP, { eval: true, workerData: { ...data, tsx, entry: fileURLToPath(WORKER_URL) } });
}

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
    const request: BlockRequest = { id, buf: ab, len };
    slot.worker.postMessage(request, [ab]);
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
    const worker = startWorker({ level: this.level });
    liveWorkers++;
    const slot: Slot = { worker, busy: 0 };
    worker.on('message', (msg: BlockReply) => {
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
