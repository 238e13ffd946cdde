import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ECHO_SERVER, startNode, startPanel, waitFor, type TestNode, type TestPanel } from '../helpers/harness.js';
import { storedGz } from '../helpers/gzip.js';
import { multipart, postTransfer, sha256hex, tarBytes, transferJwt, type TarEntry } from '../helpers/wire.js';

/**
 * zzuf (Debian package `zzuf`, installed by .ci/run) mutates valid transfer bodies at each layer:
 * the tar (then gzip and multipart are built around it), the gzip stream (then multipart), the
 * whole multipart body. Seeds are fixed, so every run posts the same bodies. Whatever arrives, the
 * destination must stay up, answer 200 or a contract error, and leave nothing behind.
 */

const hasZzuf = spawnSync('zzuf', ['-V'], { stdio: 'ignore' }).status === 0;
if (!hasZzuf && process.env.CI) throw new Error('zzuf is not installed (apt-get install zzuf; .ci/run installs it)');
if (!hasZzuf) console.warn('[wings-ts tests] SKIPPING the zzuf fuzz test: zzuf is not installed (apt-get install zzuf)');

/** `data` with bits flipped by zzuf: seed `seed`, ratio `ratio` (a fraction of the bits). */
function zzuf(data: Buffer, seed: number, ratio: string): Buffer {
  const r = spawnSync('zzuf', ['-s', String(seed), '-r', ratio], { input: data, maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`zzuf -s ${seed} -r ${ratio} exited ${r.status}: ${r.stderr.toString()}`);
  return r.stdout;
}

/**
 * Rewrites the header checksum of every tar header reachable from the start, the way a tar writer
 * would after the mutation: without it nearly every mutated header fails its checksum and the
 * extractor never reads the mutated fields (sizes, types, names, modes, link targets, pax records).
 */
function fixTarChecksums(tar: Buffer): Buffer {
  const out = Buffer.from(tar);
  for (let at = 0; at + 512 <= out.length; ) {
    const header = out.subarray(at, at + 512);
    if (header.every((b) => b === 0)) break;
    header.fill(0x20, 148, 156);
    let sum = 0;
    for (const b of header) sum += b;
    header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    const size = parseInt(header.toString('latin1', 124, 136).replace(/\0.*$/s, '').trim() || '0', 8);
    if (!Number.isSafeInteger(size) || size < 0) break;
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

/** The statuses docs/protocol.md D4.1 and D6.3 give each code POST /api/transfers may answer for a body. */
const CONTRACT: Record<string, number[]> = {
  BAD_REQUEST: [400],
  CHECKSUM_MISMATCH: [400],
  BAD_ARCHIVE: [400],
  DISK_FULL: [507],
  // 502: configuration refused; 409: the Panel refused the success report (it has no transfer row)
  PANEL: [502, 409],
};

/** Many small entries, so that most of the tar is headers: every kind the extractor handles. */
const ENTRIES: TarEntry[] = [
  { name: 'config', type: 'directory', mode: 0o755 },
  { name: 'config/server.properties', content: 'motd=fuzz\nmax-players=20\n' },
  { name: 'config/empty.txt', content: '' },
  { name: 'run.sh', content: '#!/bin/sh\necho hi\n', mode: 0o755 },
  { name: 'link-to-run', type: 'symlink', linkname: 'run.sh' },
  { name: `${'deep/'.repeat(24)}long-name.txt`, content: 'a name longer than the 100 bytes of a ustar name field' },
  { name: 'world', type: 'directory' },
  ...Array.from({ length: 12 }, (_, i): TarEntry => ({ name: `world/r.${i}.mca`, content: Buffer.alloc(300 + i * 97, i) })),
  { name: 'big.bin', content: Buffer.alloc(20_000, 0x5a) },
];

const SEEDS_PER_LAYER = 24;

describe.skipIf(!hasZzuf)('zzuf-mutated transfer bodies against a real destination', () => {
  let tp: TestPanel;
  let node: TestNode;
  let tar: Buffer;

  beforeAll(async () => {
    tp = await startPanel();
    node = await startNode(tp);
    tar = await tarBytes(ENTRIES);
  });
  afterAll(async () => {
    await node?.stop();
    await tp?.close();
  });

  const body = (archive: Buffer) =>
    multipart([
      { name: 'archive', filename: 'archive.tar.gz', data: archive },
      { name: 'checksum', data: sha256hex(archive) },
    ]);

  /** Posts one body for a fresh server the Panel knows, and checks the answer and what is left. */
  async function post(make: () => { body: Buffer; contentType: string }): Promise<void> {
    const s = await tp.panel.admin.createServer({ node_id: node.id, ...ECHO_SERVER, skip_egg_scripts: true, create_on_node: false });
    const { body, contentType } = make();
    const r = await postTransfer(node.url, { authorization: `Bearer ${transferJwt(node.token, s.uuid)}`, body, contentType });
    expect((await node.api('GET', '/api/system')).status, 'daemon up').toBe(200);
    if (r.status === 200) {
      // a mutation the archive survives: the server is here now; delete it so the next case starts clean
      expect((await node.api('DELETE', `/api/servers/${s.uuid}`)).status).toBe(204);
    } else {
      expect(r.body, `HTTP ${r.status}: ${JSON.stringify(r.body)}`).toEqual({ error: expect.any(String), code: expect.any(String) });
      expect(CONTRACT[r.body.code] ?? [], `HTTP ${r.status} ${r.body.code}: ${r.body.error}`).toContain(r.status);
      expect(r.body.error.length).toBeGreaterThan(0);
    }
    await waitFor(async () => (await node.api('GET', '/api/transfers')).body?.length === 0, { what: 'no active transfer' });
    await waitFor(() => !fs.existsSync(node.dataDir) || fs.readdirSync(node.dataDir).length === 0, { what: 'empty data dir' });
    expect((await node.api('GET', `/api/servers/${s.uuid}`)).status).toBe(404);
  }

  it('the unmutated bodies of each layer reach the success report', async () => {
    // The Panel has no transfer row, so it refuses the success report: 409 PANEL, after a full extraction.
    for (const archive of [zlib.gzipSync(tar), storedGz(tar)]) {
      const { body: b, contentType } = body(archive);
      const s = await tp.panel.admin.createServer({ node_id: node.id, ...ECHO_SERVER, skip_egg_scripts: true, create_on_node: false });
      const r = await postTransfer(node.url, { authorization: `Bearer ${transferJwt(node.token, s.uuid)}`, body: b, contentType });
      expect(r.status).toBe(409);
      expect(r.body.code).toBe('PANEL');
    }
  });

  describe('the tar, then gzip and multipart around it', () => {
    for (let seed = 1; seed <= SEEDS_PER_LAYER; seed++) {
      it(`zzuf -s ${seed} -r 0.0002, header checksums rewritten`, () => post(() => body(zlib.gzipSync(fixTarChecksums(zzuf(tar, seed, '0.0002'))))));
    }
  });

  describe('the gzip stream (deflate and stored blocks), then multipart', () => {
    for (let seed = 1; seed <= SEEDS_PER_LAYER; seed++) {
      const stored = seed % 2 === 0;
      it(`zzuf -s ${seed} -r 0.0005 of a ${stored ? 'stored' : 'deflate'} stream`, () =>
        post(() => body(zzuf(stored ? storedGz(tar) : zlib.gzipSync(tar), seed, '0.0005'))));
    }
  });

  describe('the whole multipart body', () => {
    for (let seed = 1; seed <= SEEDS_PER_LAYER; seed++) {
      it(`zzuf -s ${seed} -r 0.001`, () =>
        post(() => {
          const b = body(zlib.gzipSync(tar));
          return { body: zzuf(b.body, seed, '0.001'), contentType: b.contentType };
        }));
    }
  });
});
