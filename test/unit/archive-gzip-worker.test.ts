import crypto from 'node:crypto';
import zlib from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { crc32 } from '../../src/archive/crc32.js';
import { gzipMember, incompressible, storeInPlace } from '../../src/archive/gzip-member.js';
import { GzipWorkerPool, PGZIP_BLOCK_SIZE, allocBlock, blockCapacity } from '../../src/archive/pgzip.js';
import { zlibCrc32 } from '../helpers/gzip.js';
import { waitForNoWorkers } from './archive-helpers.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/** Log-like text: compresses well. */
function text(bytes: number): Buffer {
  const words = 'load data file name value key map list item stack count time date user group mode port host'.split(' ');
  let s = '';
  for (let i = 0; s.length < bytes; i++) s += `${i} [INFO] ${words[i % words.length]} ${words[(i * 7) % words.length]} ok\n`;
  return Buffer.from(s.slice(0, bytes));
}

/** A block from allocBlock() holding `input` (its capacity leaves room for any member). */
function blockOf(input: Buffer): Buffer {
  const block = allocBlock(blockCapacity(PGZIP_BLOCK_SIZE));
  input.copy(block);
  return block;
}

/** A stored member: header, one 5-byte header per 64 KiB stored block, the data, trailer. */
const storedLength = (n: number): number => 10 + 5 * Math.max(1, Math.ceil(n / 65535)) + n + 8;

describe('gzip members (the worker\'s work, on this thread)', () => {
  it('the probe finds random data incompressible and text, mixed data or a small block not', () => {
    const random = crypto.randomBytes(MiB);
    expect(incompressible(random)).toBe(true);
    expect(incompressible(text(MiB))).toBe(false);
    // one compressible slice of the three (start, middle, end) keeps the level
    const mixed = Buffer.from(random);
    text(16 * KiB).copy(mixed, (MiB - 16 * KiB) >> 1);
    expect(incompressible(mixed)).toBe(false);
    expect(incompressible(random.subarray(0, 128 * KiB - 1))).toBe(false);
  });

  it('stores incompressible blocks in place and deflates the others exactly as zlib does', () => {
    const random = crypto.randomBytes(MiB);
    const block = blockOf(random);
    const stored = gzipMember(block, random.length, 1, crc32);
    expect(stored).toEqual({ where: 'block', len: storedLength(random.length) });
    expect(zlib.gunzipSync(block.subarray(0, stored.len)).equals(random)).toBe(true);

    const input = text(MiB);
    const b2 = blockOf(input);
    const deflated = gzipMember(b2, input.length, 6, crc32);
    expect(deflated.where).toBe('block');
    expect(b2.subarray(0, deflated.len).equals(zlib.gzipSync(input, { level: 6 }))).toBe(true);
    expect(deflated.zlibOutput?.equals(b2.subarray(0, deflated.len))).toBe(true);
  });

  it('level 0 stores every block; without a CRC-32 function zlib stores it', () => {
    const input = text(300 * KiB);
    const block = blockOf(input);
    const m = gzipMember(block, input.length, 0, crc32);
    expect(m).toEqual({ where: 'block', len: storedLength(input.length) });
    expect(zlib.gunzipSync(block.subarray(0, m.len)).equals(input)).toBe(true);

    const b2 = blockOf(input);
    const z = gzipMember(b2, input.length, 0, undefined);
    expect(z.zlibOutput).toBeDefined();
    expect(zlib.gunzipSync(b2.subarray(0, z.len)).equals(input)).toBe(true);
  });

  it('a member that does not fit in its block comes back as a copy', () => {
    const input = crypto.randomBytes(1000);
    const tight = Buffer.from(input); // no room for the stored framing
    expect(storeInPlace(tight, input.length, zlibCrc32)).toBe(-1);
    const m = gzipMember(tight, input.length, 0, crc32);
    expect(m.where).toBe('spill');
    expect(m.len).toBe(m.zlibOutput!.length);
    expect(zlib.gunzipSync(m.zlibOutput!).equals(input)).toBe(true);
  });
});

describe('gzip worker threads', () => {
  const fatal: Error[] = [];
  afterAll(() => expect(fatal).toEqual([]));

  it('a block travels to the worker and back without a copy: detached here meanwhile, the same capacity returned for reuse', async () => {
    const pool = new GzipWorkerPool(1, 1, (err) => fatal.push(err));
    const input = Buffer.concat([text(MiB / 2), crypto.randomBytes(MiB / 2)]);
    const block = blockOf(input);
    const memory = block.buffer;
    const back = new Promise<{ out: Buffer; len: number; reusable: boolean }>((resolve) =>
      pool.submit(block, input.length, (out, len, reusable) => resolve({ out, len, reusable })),
    );
    expect(memory.byteLength).toBe(0); // transferred, not copied
    const { out, len, reusable } = await back;
    pool.terminate();
    expect(reusable).toBe(true);
    expect(out.byteOffset).toBe(0);
    expect(out.buffer.byteLength).toBe(blockCapacity(PGZIP_BLOCK_SIZE));
    expect(zlib.gunzipSync(out.subarray(0, len)).equals(input)).toBe(true);
    expect(await waitForNoWorkers()).toBe(0);
  });

  it('the worker module refuses to run outside a gzip worker thread', async () => {
    await expect(import('../../src/archive/gzip-worker.js')).rejects.toThrow('runs as a worker thread');
  });
});
