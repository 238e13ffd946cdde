/**
 * A gzip worker thread of GzipWorkerPool (pgzip.ts): receives blocks, turns each into one gzip
 * member in place (gzip-member.ts) and sends the block back. pgzip.ts starts it as a worker thread
 * (its URL resolved beside pgzip.ts); imported anywhere else, it throws.
 *
 * Blocks travel in transfer lists both ways, never copied: the main thread's block is detached
 * while it is here, and the same memory goes back to be reused for the next block. Buffers
 * created here and transferred to the main thread are not counted by its GC heuristics and piled
 * up there (~130 MiB of RSS per worker in a probe), hence the reuse.
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import { parentPort, workerData } from 'node:worker_threads';
import { crc32 } from './crc32.js';
import { gzipMember } from './gzip-member.js';

/** `workerData` of a gzip worker. */
export interface GzipWorkerData {
  /** zlib level, 0..9 (0: stored members only). */
  level: number;
}

/** Main thread → worker: compress `buf[0, len)`; `buf` is in the transfer list. */
export interface BlockRequest {
  id: number;
  buf: ArrayBuffer;
  len: number;
}

/**
 * Worker → main thread: the member is `buf[0, len)`. `reuse` is true when `buf` is the request's
 * own memory (sent back in the transfer list), false for a copy that the block had no room for.
 */
export interface BlockReply {
  id: number;
  buf: ArrayBuffer;
  len: number;
  reuse: boolean;
}

const data = workerData as Partial<GzipWorkerData> | null;
if (!parentPort || typeof data?.level !== 'number') throw new Error('gzip-worker runs as a worker thread of GzipWorkerPool');
const port = parentPort;
const level = data.level;

// gzipSync leaves its output buffer (about the compressed size) behind at every block; V8 lets up
// to 64 MiB of such external garbage pile up per isolate before it collects. A collection of this
// tiny heap takes about a millisecond, so one every 4 compressed blocks keeps each worker small.
// The flag exposes gc to contexts created after it is set: a fresh one here, nothing else.
let collect: (() => void) | null = null;
try {
  v8.setFlagsFromString('--expose-gc');
  collect = vm.runInNewContext('gc') as () => void;
} catch {}
let sinceGc = 0;

port.on('message', (msg: BlockRequest) => {
  const member = gzipMember(new Uint8Array(msg.buf), msg.len, level, crc32);
  if (member.zlibOutput && collect && ++sinceGc >= 4) {
    sinceGc = 0;
    // Collected while this block's output is still referenced (`member`, used below), so that one
    // survives until the next collection. Freeing every output at once let the allocator give its
    // memory back, and the next outputs were written to fresh pages: 40-60k page faults against
    // 34-40k for a 256 MiB archive, 7-10 % more CPU end to end. The eval'd script this module
    // replaced kept the output alive the same way, through its scope.
    collect();
  }
  if (member.where === 'spill') {
    const copy = new Uint8Array(member.zlibOutput);
    const reply: BlockReply = { id: msg.id, buf: copy.buffer, len: copy.length, reuse: false };
    port.postMessage(reply, [copy.buffer]);
    return;
  }
  const reply: BlockReply = { id: msg.id, buf: msg.buf, len: member.len, reuse: true };
  port.postMessage(reply, [msg.buf]);
});
