/**
 * CRC-32 (the gzip trailer's) for the stored members of compression level none.
 *
 * @node-rs/crc32 (crc32fast, carry-less multiplication): ~45 ms per GiB on this machine, against
 * ~250–390 ms for zlib.crc32 (Node's bundled zlib does not use the CPU's CRC instructions). When its
 * prebuilt binary is missing for this platform, zlib.crc32 (Node ≥ 20.15) does the work.
 */
import { createRequire } from 'node:module';
import zlib from 'node:zlib';

export type Crc32 = (data: Uint8Array) => number;

const require = createRequire(import.meta.url);

let path: string | null = null;
let fast: Crc32 | null = null;
try {
  path = require.resolve('@node-rs/crc32');
  fast = (require(path) as { crc32: Crc32 }).crc32;
  fast(new Uint8Array(1));
} catch {
  path = null;
  fast = null;
}

/** Where the fast CRC-32 was loaded from, or null when it does not load here (the tests check it loads). */
export const fastCrc32Path: string | null = path;

export const crc32: Crc32 | undefined = fast ?? (zlib as { crc32?: Crc32 }).crc32;
