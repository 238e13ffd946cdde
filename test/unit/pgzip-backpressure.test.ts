import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { ParallelGzip } from '../../src/archive/index.js';

describe('parallel gzip under a slow pull-based consumer', () => {
  it('never stalls when the consumer reads with for-await and pauses between chunks', async () => {
    // Incompressible input makes each member about as large as the readable high-water mark,
    // the case that once left the stream waiting forever.
    const input = randomBytes(12 * 1024 * 1024);
    const pg = new ParallelGzip({ level: 1, workers: 2 });
    const out: Buffer[] = [];
    const consume = (async () => {
      for await (const chunk of pg) {
        out.push(chunk as Buffer);
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    await pipeline(Readable.from([input.subarray(0, 5_000_000), input.subarray(5_000_000)]), pg);
    await consume;
    expect(zlib.gunzipSync(Buffer.concat(out)).equals(input)).toBe(true);
  }, 30_000);
});
