/**
 * One block of input as one gzip member, built in the block's own memory: what each gzip worker
 * thread does (gzip-worker.ts), and, for compression level none, what the archive producer does on
 * the main thread (pack.ts). Pure functions of their arguments, with no thread of their own, so the
 * unit tests call them directly.
 *
 * Incompressible blocks (already-compressed worlds, jars, archives, random data) cost deflate the
 * most time for nothing: level 1 runs at ~20 MiB/s on random data against ~50 on text. So a block
 * is first probed: up to three 16 KiB slices are checked for 4-byte repeats (what LZ77 finds; a
 * hash table, no allocation) and order-0 entropy; when none looks compressible (under 2 % repeats
 * and over 7.5 bits per byte), the block is written as stored deflate blocks (what level 0 writes)
 * instead. A block that mixes compressible and random data compresses well enough in the probe and
 * keeps its level. The output is a valid gzip member either way.
 *
 * Stored members are framed in place in the block (a memmove per 64 KiB, no zlib stream, no
 * allocation). Compressed members are copied back into the block, whose capacity (blockCapacity()
 * in pgzip.ts) has room for the stored framing and any deflate overhead.
 */
import zlib from 'node:zlib';
import type { Crc32 } from './crc32.js';

const PROBE_BYTES = 16 * 1024;
/** Bytes of deflate's stored blocks: at most 65,535 each. */
const STORED_MAX = 65535;

/**
 * A gzip member of stored deflate blocks (what level 0 writes), built in place in `buf` over its
 * first `len` bytes; returns the member's length, or -1 when `buf` has no room for the framing.
 */
export function storeInPlace(buf: Uint8Array, len: number, crc32: Crc32): number {
  const n = Math.max(1, Math.ceil(len / STORED_MAX));
  const total = 10 + 5 * n + len + 8;
  if (total > buf.length) return -1;
  const crc = crc32(buf.subarray(0, len)) >>> 0;
  // last block first: each moves up by the headers of the blocks before it and its own
  for (let i = n - 1; i >= 0; i--) {
    const s = i * STORED_MAX;
    const k = Math.min(len, s + STORED_MAX) - s;
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

// One set per thread, reused by every probe: the probe allocates nothing.
const hashTable = new Int32Array(1 << 12);
const histogram = new Uint32Array(256);

/** Cheap estimate of one slice: 4-byte repeats (what LZ77 finds) and order-0 entropy. */
function compressibleSlice(b: Uint8Array): boolean {
  hashTable.fill(-1);
  histogram.fill(0);
  let matches = 0;
  const end = b.length - 3;
  for (let i = 0; i < end; i++) {
    const v = b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24);
    const h = Math.imul(v, 0x9e3779b1) >>> 20;
    const p = hashTable[h];
    if (p >= 0 && b[p] === b[i] && b[p + 1] === b[i + 1] && b[p + 2] === b[i + 2] && b[p + 3] === b[i + 3]) matches++;
    hashTable[h] = i;
    histogram[b[i]]++;
  }
  if (matches > 0.02 * b.length) return true;
  let bits = 0;
  for (let i = 0; i < 256; i++) {
    if (histogram[i]) {
      const q = histogram[i] / b.length;
      bits -= q * Math.log2(q);
    }
  }
  return bits < 7.5;
}

/** True when none of three slices (start, middle, end) of `input` looks compressible; blocks under 128 KiB are never judged so. */
export function incompressible(input: Uint8Array): boolean {
  if (input.length < 8 * PROBE_BYTES) return false;
  const step = Math.floor((input.length - PROBE_BYTES) / 2);
  for (let i = 0; i < 3; i++) {
    // one compressible slice is enough to keep the level
    if (compressibleSlice(input.subarray(i * step, i * step + PROBE_BYTES))) return false;
  }
  return true;
}

/**
 * A block's member: in the block itself over `[0, len)`, or, when it did not fit there (cannot
 * happen with blockCapacity()'s spare room; kept correct anyway), in `zlibOutput`. `zlibOutput` is
 * the buffer zlib returned, also for a member copied into the block; stored members built here
 * have none.
 */
export type Member = { where: 'block'; len: number; zlibOutput?: Buffer } | { where: 'spill'; len: number; zlibOutput: Buffer };

/**
 * Compresses `block[0, len)` into one gzip member at `level` (incompressible input is stored
 * instead, see above). `crc32` undefined (no CRC-32 function on this Node): stored members come
 * from zlib too.
 */
export function gzipMember(block: Uint8Array, len: number, level: number, crc32: Crc32 | undefined): Member {
  const input = block.subarray(0, len);
  const effective = level > 0 && incompressible(input) ? 0 : level;
  const stored = effective === 0 && crc32 ? storeInPlace(block, len, crc32) : -1;
  if (stored >= 0) return { where: 'block', len: stored };
  const out = zlib.gzipSync(input, { level: effective });
  if (out.length > block.length) return { where: 'spill', len: out.length, zlibOutput: out };
  block.set(out, 0);
  return { where: 'block', len: out.length, zlibOutput: out };
}
