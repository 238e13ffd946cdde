import crypto from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { crc32 as fastCrc32, fastCrc32Path } from '../../src/archive/crc32.js';
import { TolerantGunzip } from '../../src/archive/gunzip.js';
import { createArchiveStream } from '../../src/archive/index.js';
import { storeInPlace } from '../../src/archive/pgzip.js';
import { gzipHeader, gzipTrailer, storedBlock, zlibCrc32 } from '../helpers/gzip.js';
import { collect, tmpDir } from './archive-helpers.js';

const KiB = 1024;

/** A gzip member of stored blocks, as the source writes it at compression level none. */
function storedMember(data: Buffer): Buffer {
  const buf = Buffer.alloc(data.length + 10 + 5 * (Math.ceil(data.length / 65535) + 1) + 8);
  data.copy(buf);
  return buf.subarray(0, storeInPlace(buf, data.length, zlibCrc32));
}

/** Runs `input` cut into pieces of `piece` bytes through the decoder. */
async function decode(input: Buffer, piece = 64 * KiB): Promise<{ out: Buffer; error: Error | null; consumed: number; chunks: number }> {
  const pieces: Buffer[] = [];
  for (let i = 0; i < input.length; i += piece) pieces.push(input.subarray(i, i + piece));
  let consumed = 0;
  const src = Readable.from(pieces).on('data', (b: Buffer) => (consumed += b.length));
  const g = new TolerantGunzip(16 * KiB);
  const out: Buffer[] = [];
  await pipeline(src, g, async (s: AsyncIterable<Buffer>) => {
    for await (const b of s) out.push(b);
  });
  return { out: Buffer.concat(out), error: g.gzipError, consumed, chunks: out.length };
}

describe('TolerantGunzip, stored path (compression level none)', () => {
  const data = crypto.randomBytes(140 * KiB); // three stored blocks
  const member = storedMember(data);

  it('decodes stored members cut at any chunk boundary, passing slices of the input on', async () => {
    const stream = Buffer.concat([member, storedMember(data.subarray(0, 1000)), storedMember(Buffer.alloc(0))]);
    expect(zlib.gunzipSync(stream).equals(Buffer.concat([data, data.subarray(0, 1000)]))).toBe(true);
    for (const piece of [5, 8, 4093, 65536, stream.length]) {
      const r = await decode(stream, piece);
      expect(r.error).toBeNull();
      expect(r.out.equals(Buffer.concat([data, data.subarray(0, 1000)]))).toBe(true);
    }
  });

  it('reads header fields (extra, name, comment, header CRC) and accepts zero padding after the last member', async () => {
    const name = Buffer.from('archive.tar\0');
    const comment = Buffer.from('made by hand\0');
    const extra = Buffer.from([4, 0, 1, 2, 3, 4]);
    const body = data.subarray(0, 70_000);
    const m = Buffer.concat([gzipHeader(4 | 8 | 16 | 2, [extra, name, comment, Buffer.from([0xaa, 0xbb])]), storedBlock(body.subarray(0, 65535), false), storedBlock(body.subarray(65535), true), gzipTrailer(body)]);
    const stream = Buffer.concat([m, Buffer.alloc(5000)]);
    for (const piece of [1, 11, 64 * KiB]) {
      const r = await decode(stream, piece);
      expect(r.error).toBeNull();
      expect(r.out.equals(body)).toBe(true);
      expect(r.consumed).toBe(stream.length);
    }
  });

  it('goes through zlib for a compressed member after stored ones, and for compressed blocks inside a stored member', async () => {
    const text = Buffer.from('the quick brown fox jumps over the lazy dog '.repeat(4000));
    // a member whose first block is stored and whose next blocks are compressed and refer back into it
    const head = text.subarray(0, 50_000);
    const tail = text.subarray(50_000);
    const deflated = zlib.deflateRawSync(tail, { dictionary: head.subarray(-32 * KiB) });
    const mixed = Buffer.concat([gzipHeader(), storedBlock(head, false), deflated, gzipTrailer(text)]);
    expect(zlib.gunzipSync(mixed).equals(text)).toBe(true);
    const stream = Buffer.concat([member, zlib.gzipSync(text), mixed, storedMember(data.subarray(0, 10))]);
    const want = Buffer.concat([data, text, text, data.subarray(0, 10)]);
    for (const piece of [13, 4096, 64 * KiB, stream.length]) {
      const r = await decode(stream, piece);
      expect(r.error).toBeNull();
      expect(r.out.length).toBe(want.length);
      expect(r.out.equals(want)).toBe(true);
    }
  });

  it('a stream that starts compressed goes through zlib whole (and gets its CRC checked)', async () => {
    const text = Buffer.from('abc'.repeat(100_000));
    const ok = await decode(Buffer.concat([zlib.gzipSync(text), member]), 1000);
    expect(ok.error).toBeNull();
    expect(ok.out.equals(Buffer.concat([text, data]))).toBe(true);
    const bad = zlib.gzipSync(text);
    bad[bad.length - 6] ^= 1; // CRC
    const r = await decode(bad);
    expect(r.error?.message).toMatch(/check/);
  });

  const broken: [string, () => Buffer, RegExp][] = [
    ['bad stored lengths', () => Buffer.concat([gzipHeader(), Buffer.from([1, 10, 0, 0, 0]), Buffer.alloc(10), gzipTrailer(Buffer.alloc(10))]), /stored block lengths/],
    ['wrong length in the trailer', () => Buffer.concat([gzipHeader(), storedBlock(Buffer.alloc(10), true), gzipTrailer(Buffer.alloc(11))]), /length check/],
    ['truncated inside a block', () => member.subarray(0, 100_000), /unexpected end/],
    ['truncated inside the trailer', () => member.subarray(0, member.length - 3), /unexpected end/],
    ['truncated inside a compressed block of a stored stream', () => {
      const d = zlib.deflateRawSync(Buffer.from('x'.repeat(50_000) + crypto.randomBytes(5000).toString('hex')));
      return Buffer.concat([gzipHeader(), storedBlock(Buffer.alloc(100), false), d.subarray(0, d.length - 100)]);
    }, /unexpected end/],
    ['non-zero bytes after the last member', () => Buffer.concat([member, Buffer.from('not gzip')]), /header check/],
    ['non-zero bytes after zero padding', () => Buffer.concat([member, Buffer.alloc(100), Buffer.from([1])]), /compression method/],
  ];
  for (const [label, make, message] of broken) {
    it(`${label}: gzipError, output ended, every input byte still read`, async () => {
      const input = make();
      for (const piece of [7, 64 * KiB]) {
        const r = await decode(input, piece);
        expect(r.error?.message).toMatch(message);
        expect(r.consumed).toBe(input.length);
      }
    });
  }

  it('discard() drops the rest of the input while still reading it', async () => {
    const stream = Buffer.concat([member, member]);
    const pieces: Buffer[] = [];
    for (let i = 0; i < stream.length; i += 10_000) pieces.push(stream.subarray(i, i + 10_000));
    let consumed = 0;
    const src = Readable.from(pieces).on('data', (b: Buffer) => (consumed += b.length));
    const g = new TolerantGunzip();
    let got = 0;
    await pipeline(src, g, async (s: AsyncIterable<Buffer>) => {
      for await (const b of s) {
        got += b.length;
        if (got >= 20_000) g.discard();
      }
    });
    expect(g.gzipError).toBeNull();
    expect(got).toBeLessThan(2 * data.length);
    expect(consumed).toBe(stream.length);
  });
});

describe('CRC-32 of the stored members (the stored path above does not check it: zlib does here)', () => {
  it('the fast CRC-32 loads here and agrees with zlib on every length', () => {
    expect(fastCrc32Path).not.toBeNull();
    const b = crypto.randomBytes(70_000);
    for (const n of [0, 1, 7, 16, 63, 64, 65, 1000, 65535, 70_000]) expect(fastCrc32!(b.subarray(3, 3 + n)) >>> 0).toBe(zlibCrc32(b.subarray(3, 3 + n)));
  });

  it("the source's level-0 archive passes zlib's CRC and length checks", async () => {
    const root = tmpDir('crc');
    try {
      fs.writeFileSync(path.join(root, 'big'), crypto.randomBytes(3 * 1024 * KiB + 5));
      for (let i = 0; i < 50; i++) fs.writeFileSync(path.join(root, `small${i}`), crypto.randomBytes(i * 100));
      const gz = await collect(createArchiveStream({ root, level: 0 }));
      expect(() => zlib.gunzipSync(gz)).not.toThrow();
      // and a flipped data byte is caught by zlib through the CRC
      const bad = Buffer.from(gz);
      bad[gz.length >> 1] ^= 1;
      expect(() => zlib.gunzipSync(bad)).toThrow(/check/);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
