/** Gzip framing written by hand, for crafted streams (stored blocks, odd headers, Go's shapes). */
import zlib from 'node:zlib';

/** zlib's CRC-32 (the independent reference for the daemon's). */
export function zlibCrc32(b: Uint8Array): number {
  return (zlib as unknown as { crc32(b: Uint8Array): number }).crc32(b) >>> 0;
}

/** A member header: the 10 fixed bytes with `flags`, then the optional fields as given. */
export function gzipHeader(flags = 0, extra: Buffer[] = [], os = 3): Buffer {
  return Buffer.concat([Buffer.from([0x1f, 0x8b, 8, flags, 0, 0, 0, 0, 0, os]), ...extra]);
}

/** A stored deflate block (at most 65,535 bytes of data). */
export function storedBlock(data: Buffer, final: boolean): Buffer {
  const n = data.length;
  return Buffer.concat([Buffer.from([final ? 1 : 0, n & 255, n >>> 8, ~n & 255, (~n >>> 8) & 255]), data]);
}

/** A member trailer for uncompressed content `data`: CRC-32 and length. */
export function gzipTrailer(data: Buffer): Buffer {
  const t = Buffer.alloc(8);
  t.writeUInt32LE(zlibCrc32(data), 0);
  t.writeUInt32LE(data.length >>> 0, 4);
  return t;
}

/**
 * `raw` as Go's pgzip writes it at NoCompression: one gzip member of stored deflate blocks of at
 * most 65,535 bytes, an empty stored block (sync flush) after every 1 MiB, an empty final block.
 */
export function storedGz(raw: Buffer): Buffer {
  const out: Buffer[] = [gzipHeader(0, [], 255)];
  for (let o = 0; o < raw.length; o += 1 << 20) {
    const piece = raw.subarray(o, o + (1 << 20));
    for (let p = 0; p < piece.length; p += 65535) out.push(storedBlock(piece.subarray(p, p + 65535), false));
    out.push(storedBlock(Buffer.alloc(0), false));
  }
  out.push(storedBlock(Buffer.alloc(0), true), gzipTrailer(raw));
  return Buffer.concat(out);
}
