import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ECHO_SERVER, startNode, startPanel, tmpDir, waitFor, type TestNode, type TestPanel } from '../helpers/harness.js';
import { storedGz } from '../helpers/gzip.js';
import { snapshot } from '../helpers/tree.js';
import { sha256hex, tarBytes, tarGz, transferJwt, type TarEntry } from '../helpers/wire.js';

/**
 * Interoperability with the Go daemon, both directions, with hand-written peers that follow
 * docs/protocol.md W26.1 byte for byte.
 */
describe('Go-shaped peers', () => {
  let tp: TestPanel;
  let node: TestNode;

  beforeAll(async () => {
    tp = await startPanel();
    node = await startNode(tp, { config: { system: { transfers: { idle_timeout: 1 } } } });
  });
  afterAll(async () => {
    await node?.stop();
    await tp?.close();
  });

  /** Listens `receiver` on a loopback port and asks the source to send server `uuid` there, as the Panel does. */
  async function sendTo(receiver: net.Server, uuid: string, token: string): ReturnType<TestNode['api']> {
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
    const port = (receiver.address() as net.AddressInfo).port;
    return node.api('POST', `/api/servers/${uuid}/transfer`, {
      server_id: uuid,
      url: `http://127.0.0.1:${port}/api/transfers`,
      token,
      server: { uuid, start_on_completion: false },
    });
  }

  const forms: [string, (entries: TarEntry[]) => Promise<Buffer>][] = [
    ['deflate', tarGz],
    // what Go's pgzip writes at compression_level none: stored blocks, sync-flush markers; taken by
    // the destination's own stored-block parser, not zlib
    ['stored blocks (level none)', async (entries) => storedGz(await tarBytes(entries))],
  ];
  for (const [form, makeArchive] of forms) it(`receives from a Go-shaped source (${form}): no directory entries, chunked body, no X-Transfer-Size, 60-hex boundary`, async () => {
    const s = await tp.panel.admin.createServer({ node_id: node.id, ...ECHO_SERVER, skip_egg_scripts: true, create_on_node: false });
    // The Panel has no pending transfer row here; make its success endpoint accept the report.
    await tp.panel.admin.raw('POST', '/admin/api/faults', { path: `/servers/${s.uuid}/transfer/success$`, status: 204, count: 1 });
    const big = randomBytes(1_500_000);
    // Go's archive/tar writes only regular files, named by relative path, lexical order.
    const archive = await makeArchive([
      { name: 'a/b/deep.txt', content: 'deep' },
      { name: 'big.bin', content: big },
      { name: 'server.properties', content: 'motd=go\n', mode: 0o600 },
    ]);
    const boundary = randomBytes(30).toString('hex');
    async function* body() {
      yield Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="archive"; filename="archive.tar.gz"\r\nContent-Type: application/octet-stream\r\n\r\n`);
      for (let o = 0; o < archive.length; o += 32 * 1024) yield archive.subarray(o, o + 32 * 1024);
      yield Buffer.from(`\r\n--${boundary}\r\nContent-Disposition: form-data; name="checksum"\r\n\r\n${sha256hex(archive)}`);
      yield Buffer.from(`\r\n--${boundary}--\r\n`);
    }
    const res = await request(`${node.url}/api/transfers`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${transferJwt(node.token, s.uuid)}`,
        'content-type': `multipart/form-data; boundary=${boundary}`,
        'user-agent': 'Go-http-client/1.1',
        'accept-encoding': 'gzip',
      },
      body: Readable.from(body()),
    });
    expect(res.statusCode).toBe(200);
    expect(await res.body.text()).toBe('');
    const dir = node.serverDir(s.uuid);
    expect(fs.readFileSync(path.join(dir, 'a/b/deep.txt'), 'utf8')).toBe('deep');
    expect(createHash('sha256').update(fs.readFileSync(path.join(dir, 'big.bin'))).digest('hex')).toBe(sha256hex(big));
    expect(fs.statSync(path.join(dir, 'server.properties')).mode & 0o777).toBe(0o600);
    const info = await node.api('GET', `/api/servers/${s.uuid}`);
    expect(info.status).toBe(200);
    expect(info.body.state).toBe('offline');
  });

  it('sends to a Go-shaped destination that reads part by part and untars with a standard reader', async () => {
    const s = await tp.panel.admin.createServer({ node_id: node.id, ...ECHO_SERVER, skip_egg_scripts: true });
    const src = node.serverDir(s.uuid);
    fs.mkdirSync(path.join(src, 'world/region'), { recursive: true });
    fs.mkdirSync(path.join(src, 'empty'));
    fs.writeFileSync(path.join(src, 'world/region/r.mca'), randomBytes(5 * 1024 * 1024));
    fs.writeFileSync(path.join(src, 'eula.txt'), 'eula=true\n'.repeat(10000));
    fs.symlinkSync('eula.txt', path.join(src, 'link'));
    const expected = await snapshot(src);

    const out = tmpDir('go-dest-');
    let seen: { authorization?: string; contentType?: string; transferSize?: string; parts: string[]; checksumOk?: boolean } = { parts: [] };
    const receiver = http.createServer((req, res) => {
      seen = { authorization: req.headers.authorization, contentType: req.headers['content-type'], transferSize: req.headers['x-transfer-size'] as string, parts: [] };
      const boundary = /boundary=([^;]+)/.exec(req.headers['content-type'] ?? '')![1];
      // A minimal part reader like Go's mime/multipart: archive first, then checksum.
      const tar = spawn('tar', ['-xzf', '-', '-C', out]);
      const hash = createHash('sha256');
      let buf = Buffer.alloc(0);
      let phase: 'preamble' | 'archive' | 'rest' = 'preamble';
      const delim = Buffer.from(`\r\n--${boundary}`);
      req.on('data', (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk]);
        if (phase === 'preamble') {
          const end = buf.indexOf('\r\n\r\n');
          if (end === -1) return;
          const head = buf.subarray(0, end).toString();
          expect(head.startsWith(`--${boundary}\r\n`)).toBe(true);
          seen.parts.push(/name="([^"]+)"/.exec(head)![1]);
          buf = buf.subarray(end + 4);
          phase = 'archive';
        }
        if (phase === 'archive') {
          const at = buf.indexOf(delim);
          const safe = at === -1 ? Math.max(0, buf.length - delim.length) : at;
          const data = buf.subarray(0, safe);
          hash.update(data);
          tar.stdin.write(data);
          buf = buf.subarray(safe);
          if (at !== -1) {
            tar.stdin.end();
            phase = 'rest';
          }
        }
      });
      req.on('end', () => {
        const rest = buf.toString();
        const m = /name="([^"]+)"\r\n\r\n([0-9a-f]{64})\r\n--/.exec(rest);
        seen.parts.push(m?.[1] ?? '?');
        seen.checksumOk = m?.[2] === hash.digest('hex');
        tar.on('close', (code) => {
          res.writeHead(code === 0 && seen.checksumOk ? 200 : 500);
          res.end();
        });
      });
    });
    try {
      const r = await sendTo(receiver, s.uuid, 'Bearer the-jwt-verbatim');
      expect(r.status).toBe(202);
      await waitFor(async () => (await node.api('GET', `/api/servers/${s.uuid}/transfer`)).status === 404, { what: 'source done' });
      expect(seen.authorization).toBe('Bearer the-jwt-verbatim');
      expect(seen.contentType).toMatch(/^multipart\/form-data; boundary=[0-9a-f]{60}$/);
      expect(Number(seen.transferSize)).toBeGreaterThan(5 * 1024 * 1024);
      expect(seen.parts).toEqual(['archive', 'checksum']);
      expect(seen.checksumOk).toBe(true);
      expect(await snapshot(out)).toEqual(expected);
      // completed: the source stays locked until the Panel deletes the server (docs/protocol.md D7.1)
      const power = await node.api('POST', `/api/servers/${s.uuid}/power`, { action: 'start' });
      expect(power.status).toBe(409);
      expect((await node.api('DELETE', `/api/servers/${s.uuid}/transfer`)).status).toBe(409);
      expect((await node.api('DELETE', `/api/servers/${s.uuid}`)).status).toBe(204);
    } finally {
      receiver.close();
      fs.rmSync(out, { recursive: true, force: true });
    }
  });

  it('fails an incoming transfer whose stream stalls longer than idle_timeout, and cleans up', async () => {
    const s = await tp.panel.admin.createServer({ node_id: node.id, ...ECHO_SERVER, skip_egg_scripts: true, create_on_node: false });
    const boundary = 'b'.repeat(60);
    const sock = net.connect(Number(new URL(node.url).port), '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    let response = '';
    sock.on('data', (d) => (response += d.toString()));
    const closed = new Promise((r) => sock.once('close', r));
    sock.write(
      `POST /api/transfers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${transferJwt(node.token, s.uuid)}\r\n` +
        `Content-Type: multipart/form-data; boundary=${boundary}\r\nTransfer-Encoding: chunked\r\n\r\n`,
    );
    const head = `--${boundary}\r\nContent-Disposition: form-data; name="archive"; filename="archive.tar.gz"\r\n\r\n`;
    const partial = Buffer.concat([Buffer.from(head), (await tarGz([{ name: 'x', content: randomBytes(100_000) }])).subarray(0, 1000)]);
    sock.write(`${partial.length.toString(16)}\r\n`);
    sock.write(partial);
    sock.write('\r\n');
    // …and then nothing: the destination must give up after idle_timeout (1 s).
    await waitFor(() => response.includes('IDLE_TIMEOUT'), { what: 'idle timeout answer', timeoutMs: 5000 });
    expect(response).toMatch(/^HTTP\/1\.1 408/);
    await closed;
    await waitFor(async () => (await node.api('GET', `/api/transfers/${s.uuid}`)).status === 404);
    expect(fs.existsSync(node.serverDir(s.uuid))).toBe(false);
    await tp.panel.waitForCall(new RegExp(`/servers/${s.uuid}/transfer/failure$`), { timeoutMs: 5000 });
  });

  it('fails an outgoing transfer whose destination stops reading for longer than idle_timeout, and unlocks the source', async () => {
    const s = await tp.panel.admin.createServer({ node_id: node.id, ...ECHO_SERVER, skip_egg_scripts: true });
    // incompressible: far more than the loopback socket buffers hold, so the sender's writes block
    fs.writeFileSync(path.join(node.serverDir(s.uuid), 'world.bin'), randomBytes(48 * 1024 * 1024));
    const sockets: net.Socket[] = [];
    const stalled = net.createServer((sock) => {
      sock.pause(); // accepts, reads nothing
      sockets.push(sock);
    });
    try {
      const r = await sendTo(stalled, s.uuid, 'Bearer x');
      expect(r.status).toBe(202);
      expect((await node.api('POST', `/api/servers/${s.uuid}/commands`, { commands: ['x'] })).status).toBe(409); // locked
      await waitFor(async () => (await node.api('GET', `/api/servers/${s.uuid}/transfer`)).status === 404, { what: 'source gave up', timeoutMs: 10_000 });
      await node.waitForLog('Transfer failed: No data moved for 1 seconds.');
      // at warn, and naming the key that sets the limit
      const failedLine = node.log().split('\n').find((l) => l.includes('Transfer failed: No data moved'));
      expect(failedLine).toContain('"level":40');
      expect(failedLine).toContain('Raise system.transfers.idle_timeout if the link is that slow.');
      await tp.panel.waitForCall(new RegExp(`/servers/${s.uuid}/transfer/failure$`), { timeoutMs: 5000 });
      // unlocked: a stopped server now answers 502 to commands, not 409
      expect((await node.api('POST', `/api/servers/${s.uuid}/commands`, { commands: ['x'] })).status).toBe(502);
    } finally {
      for (const sock of sockets) sock.destroy();
      stalled.close();
    }
  });
});
