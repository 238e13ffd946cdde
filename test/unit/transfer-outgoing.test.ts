import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import type { Server } from '../../src/server/server.js';
import { initiateOutgoing, type InitiateResult } from '../../src/transfer/outgoing.js';
import type { TransferHandle } from '../../src/transfer/runner.js';
import { deferred, fixture, type Fixture } from './transfer-fakes.js';

const UUID = '6b2f0c1e-9d8a-4f7b-8c6d-5e4f3a2b1c0d';
const MiB = 1024 * 1024;
const TOKEN = 'Bearer the-transfer-jwt-verbatim';

/** The destination as the source sees it: a loopback HTTP server run by the test. */
interface Destination {
  url: string;
  /** Resolves with the request's headers when it arrives. */
  request: Promise<IncomingMessage>;
  /** Resolves with the whole body once it was read (for handlers that read it). */
  body: Promise<Buffer>;
  /** Bytes of the body read so far. */
  bytes(): number;
}

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
});

/** Listens on loopback; `answer` decides what to do with the request (after `read` bytes of the body, default all). */
async function destination(answer: (req: IncomingMessage, res: ServerResponse, body: Buffer | null) => void, read: 'all' | 'first' = 'all'): Promise<Destination> {
  const request = deferred<IncomingMessage>();
  const body = deferred<Buffer>();
  let count = 0;
  const server = http.createServer((req, res) => {
    request.resolve(req);
    const chunks: Buffer[] = [];
    let answered = false;
    req.on('data', (c: Buffer) => {
      count += c.length;
      chunks.push(c);
      if (read === 'first' && !answered) {
        answered = true;
        answer(req, res, null);
      }
    });
    req.on('end', () => {
      body.resolve(Buffer.concat(chunks));
      if (!answered) {
        answered = true;
        answer(req, res, Buffer.concat(chunks));
      }
    });
    req.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(() => {
    server.closeAllConnections();
    return new Promise((r) => server.close(() => r()));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/transfers`, request: request.promise, body: body.promise, bytes: () => count };
}

/** A destination's error answer, as the daemon gives it (docs/protocol.md D4). */
const refusal = (status: number, body: { error: string; code: string }) => (_req: IncomingMessage, res: ServerResponse) => {
  res.writeHead(status, { 'content-type': 'application/json', connection: 'close' });
  res.end(JSON.stringify(body));
};

/** A source server with `files` (name → bytes) in its data directory. */
function source(f: Fixture, files: Record<string, Buffer>): Server {
  const server = f.addServer(UUID);
  fs.mkdirSync(server.dataDirectory, { recursive: true });
  for (const [name, data] of Object.entries(files)) fs.writeFileSync(path.join(server.dataDirectory, name), data);
  return server;
}

async function start(f: Fixture, server: Server, url: string): Promise<{ result: InitiateResult; handle: TransferHandle | undefined }> {
  const pending = initiateOutgoing(f.manager, server, { url, token: TOKEN });
  const handle = f.manager.outgoing(UUID);
  return { result: await pending, handle };
}

/** Splits a multipart body as Go's reader would: part name → bytes. */
function parts(body: Buffer, contentType: string): Map<string, Buffer> {
  const boundary = /boundary=([^;]+)/.exec(contentType)![1];
  const out = new Map<string, Buffer>();
  const delim = Buffer.from(`--${boundary}`);
  let at = body.indexOf(delim);
  while (at !== -1) {
    const headEnd = body.indexOf('\r\n\r\n', at);
    if (headEnd === -1) break;
    const name = /name="([^"]+)"/.exec(body.subarray(at, headEnd).toString())?.[1] ?? '?';
    const next = body.indexOf(Buffer.from(`\r\n--${boundary}`), headEnd);
    out.set(name, body.subarray(headEnd + 4, next));
    at = next === -1 ? -1 : next + 2;
  }
  return out;
}

/** docs/protocol.md D3.4 after a failure or cancel: unlocked, off the list, marker gone, failure reported, then the line. */
async function expectReportedEnd(f: Fixture, server: Server, outcome: 'failed' | 'cancelled', lastLine: string | RegExp): Promise<void> {
  expect(await f.panel.reportsFor(UUID)).toEqual([{ uuid: UUID, success: false }]);
  if (outcome === 'cancelled') await f.servers.untilLine(UUID, 'Canceled.');
  expect(f.servers.lines(UUID).at(-1)).toMatch(lastLine);
  expect(server.transferring).toBe(false);
  expect(f.manager.outgoing(UUID)).toBeUndefined();
  expect(f.manager.markers.list('outgoing')).toEqual([]);
  expect(f.finished).toEqual([{ server: UUID, direction: 'outgoing', state: outcome }]);
  expect(f.servers.named(UUID, 'transfer.status').at(-1)).toBe(outcome);
  expect(f.servers.named(UUID, 'transfer status').at(-1)).toBe('failure');
  expect(JSON.stringify(f.logs)).not.toContain('the-transfer-jwt-verbatim');
}

describe('the source: a successful transfer', () => {
  it('stops nothing when offline, streams archive + checksum, completes on 200 and stays locked', async () => {
    const f = fixture();
    const data = randomBytes(300_000);
    const server = source(f, { 'world.bin': data, 'eula.txt': Buffer.from('eula=true\n') });
    const dest = await destination((_req, res) => res.writeHead(200).end());
    const { result, handle } = await start(f, server, dest.url);
    expect(result).toEqual({ status: 202 });
    expect(await handle!.finished).toBe('completed');

    const req = await dest.request;
    expect(req.headers.authorization).toBe(TOKEN);
    expect(Number(req.headers['x-transfer-size'])).toBeGreaterThanOrEqual(300_000);
    const body = parts(await dest.body, req.headers['content-type']!);
    expect([...body.keys()]).toEqual(['archive', 'checksum']);
    expect(body.get('checksum')!.toString()).toBe(createHash('sha256').update(body.get('archive')!).digest('hex'));
    const tar = zlib.gunzipSync(body.get('archive')!);
    expect(tar.includes(data)).toBe(true);

    expect(server.transferring).toBe(true); // until the Panel deletes it (docs/protocol.md D7.1)
    expect(f.panel.reports).toEqual([]);
    expect(f.manager.outgoing(UUID)).toBeUndefined();
    expect(f.manager.markers.list('outgoing')).toEqual([]);
    expect(f.finished).toEqual([{ server: UUID, direction: 'outgoing', state: 'completed' }]);
    expect(f.servers.named(UUID, 'transfer.status')).toEqual(['pending', 'processing', 'completed']);
    expect(f.servers.named(UUID, 'transfer status')).toEqual(['processing', 'completed']);
    expect(f.servers.lines(UUID)).toEqual([
      'Preparing to stream server data to destination...',
      'Streaming archive to destination...',
      'Finished streaming archive to destination.',
    ]);
    // locked: a second transfer is refused
    expect(await initiateOutgoing(f.manager, server, { url: dest.url, token: TOKEN })).toEqual({
      status: 409,
      body: { error: 'A transfer is already in progress for this server.' },
    });
  });

  it('a running server is stopped gracefully first', async () => {
    const f = fixture();
    const server = source(f, { 'a.txt': Buffer.from('a') });
    const env = f.environments.get(UUID)!;
    env.setState('running');
    const dest = await destination((_req, res) => res.writeHead(200).end());
    const { result, handle } = await start(f, server, dest.url);
    expect(result).toEqual({ status: 202 });
    expect(env.state).toBe('offline');
    expect(await handle!.finished).toBe('completed');
  });
});

describe('the source: stopping before the transfer (docs/protocol.md D7.2)', () => {
  it('a stop that fails answers 500, ends failed and unlocks, without a report or a failure line', async () => {
    const f = fixture();
    const server = source(f, { 'a.txt': Buffer.from('a') });
    f.environments.get(UUID)!.setState('running');
    f.env.waitForStop = async () => {
      throw Object.assign(new Error('did not stop'), { code: 'STOP_TIMEOUT' });
    };
    const { result, handle } = await start(f, server, 'http://127.0.0.1:1/api/transfers');
    expect(result).toEqual({ status: 500, body: { error: 'Failed to stop the server before initiating transfer.' } });
    expect(await handle!.finished).toBe('failed');
    expect(server.transferring).toBe(false);
    expect(f.manager.outgoing(UUID)).toBeUndefined();
    expect(f.servers.named(UUID, 'transfer.status')).toEqual(['pending', 'failed']);
    expect(f.servers.lines(UUID)).toEqual([]);
    expect(f.panel.reports).toEqual([]);
  });

  it('a cancel during the stop answers 409 and ends cancelled with a report', async () => {
    const f = fixture();
    const server = source(f, { 'a.txt': Buffer.from('a') });
    f.environments.get(UUID)!.setState('running');
    const stopping = deferred();
    f.env.waitForStop = (_env, signal) =>
      new Promise((_, reject) => {
        stopping.resolve();
        signal?.addEventListener('abort', () => reject(signal.reason), { once: true });
      });
    const pending = initiateOutgoing(f.manager, server, { url: 'http://127.0.0.1:1/api/transfers', token: TOKEN });
    await stopping.promise;
    const handle = f.manager.outgoing(UUID)!;
    expect(handle.state).toBe('pending');
    expect(handle.cancel()).toBe(true);
    expect(await pending).toEqual({ status: 409, body: { error: 'The transfer was cancelled.' } });
    await expectReportedEnd(f, server, 'cancelled', 'Canceled.');
    expect(f.servers.named(UUID, 'transfer.status')).toEqual(['pending', 'cancelling', 'cancelled']);
  });
});

describe('the source: every way the push fails, each unlocking and reported', () => {
  // Each destination misbehaviour: the answer, when it comes ('first' bytes or the whole body), the last line.
  // The paced ones (1 MiB/s, 2 MiB) are certainly mid-stream when the destination acts.
  const answers: [string, Parameters<typeof destination>[0], 'all' | 'first', string | RegExp][] = [
    [
      'the destination refuses: its error and code end up in the failure line',
      refusal(400, { error: 'Checksum mismatch: nope.', code: 'CHECKSUM_MISMATCH' }),
      'all',
      'Transfer failed: Checksum mismatch: nope. (CHECKSUM_MISMATCH, HTTP 400)',
    ],
    [
      "a cancel on the destination: the source ends failed with the destination's reason",
      refusal(409, { error: 'The transfer was cancelled on the destination.', code: 'CANCELLED' }),
      'first',
      'Transfer failed: The transfer was cancelled on the destination. (CANCELLED, HTTP 409)',
    ],
    [
      'a 200 before the whole archive was sent is a failure',
      (_req, res) => res.writeHead(200, { connection: 'close' }).end(),
      'first',
      'Transfer failed: destination answered before the whole archive was sent',
    ],
    ['the destination closes the connection mid-stream', (req) => req.socket.destroy(), 'first', /^Transfer failed: /],
  ];
  for (const [label, answer, read, lastLine] of answers) {
    it(label, async () => {
      const f = fixture({ upload_limit: 1 });
      const server = source(f, { 'a.bin': randomBytes(2 * MiB) });
      const dest = await destination(answer, read);
      const { handle } = await start(f, server, dest.url);
      expect(await handle!.finished).toBe('failed');
      await expectReportedEnd(f, server, 'failed', lastLine);
      if (read === 'first') expect(dest.bytes()).toBeLessThan(2 * MiB);
    });
  }

  it('the destination stops reading: the idle timeout ends it (docs/protocol.md D7.6)', async () => {
    const f = fixture({ idle_timeout: 0.3, compression_level: 'none' });
    // incompressible and far more than the loopback socket buffers hold, so the writes block
    const server = source(f, { 'a.bin': randomBytes(24 * MiB) });
    const sockets: net.Socket[] = [];
    const stalled = net.createServer((s) => {
      s.pause();
      sockets.push(s);
    });
    await new Promise<void>((r) => stalled.listen(0, '127.0.0.1', r));
    closers.push(async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => stalled.close(r));
    });
    const { handle } = await start(f, server, `http://127.0.0.1:${(stalled.address() as AddressInfo).port}/api/transfers`);
    expect(await handle!.finished).toBe('failed');
    await expectReportedEnd(f, server, 'failed', 'Transfer failed: No data moved for 0.3 seconds.');
  });

  it('an unreachable destination', async () => {
    const f = fixture();
    const server = source(f, { 'a.txt': Buffer.from('a') });
    const port = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const { handle } = await start(f, server, `http://127.0.0.1:${port}/api/transfers`);
    expect(await handle!.finished).toBe('failed');
    await expectReportedEnd(f, server, 'failed', /^Transfer failed: .*ECONNREFUSED/);
  });
});

describe('the source: cancel, delete and shutdown (docs/protocol.md D3, D7.3, D9.1)', () => {
  /** A transfer paced at 1 MiB/s of 3 MiB, with bytes already at the destination. */
  async function midStream(f: Fixture, answer: Parameters<typeof destination>[0] = (_req, res) => res.writeHead(200).end()) {
    const server = source(f, { 'a.bin': randomBytes(3 * MiB) });
    let arrived!: () => void;
    const firstBytes = new Promise<void>((r) => (arrived = r));
    const dest = await destination(answer);
    const { result, handle } = await start(f, server, dest.url);
    expect(result).toEqual({ status: 202 });
    void dest.request.then((req) => req.once('data', () => arrived()));
    await firstBytes;
    return { server, dest, handle: handle! };
  }

  it('a cancel mid-stream: cancelling, cancelled, reported, `Canceled.` last; a second cancel is refused', async () => {
    const f = fixture({ upload_limit: 1 });
    const { server, handle } = await midStream(f);
    expect(handle.state).toBe('processing');
    expect(handle.cancel()).toBe(true);
    expect(handle.cancel()).toBe(false);
    expect(await handle.finished).toBe('cancelled');
    await expectReportedEnd(f, server, 'cancelled', 'Canceled.');
    expect(f.servers.named(UUID, 'transfer.status')).toEqual(['pending', 'processing', 'cancelling', 'cancelled']);
    expect(f.servers.named(UUID, 'transfer status')).toEqual(['processing', 'cancelling', 'failure']);
  });

  it('deleting the server mid-stream cancels the transfer', async () => {
    const f = fixture({ upload_limit: 1 });
    const { server, handle } = await midStream(f);
    await f.manager.beforeServerDelete(server);
    expect(handle.state).toBe('cancelled');
    await expectReportedEnd(f, server, 'cancelled', 'Canceled.');
  });

  it('a daemon shutdown mid-stream cancels and reports', async () => {
    const f = fixture({ upload_limit: 1 });
    const { server, handle } = await midStream(f);
    await f.manager.shutdown();
    expect(handle.state).toBe('cancelled');
    await expectReportedEnd(f, server, 'cancelled', 'Canceled.');
  });

  /** The whole body sent; the destination holds its answer until `release`. */
  async function sent(f: Fixture) {
    const release = deferred();
    const server = source(f, { 'a.bin': randomBytes(200_000) });
    const dest = await destination((_req, res) => void release.promise.then(() => res.writeHead(200).end()));
    const { handle } = await start(f, server, dest.url);
    await dest.body;
    await f.servers.untilLine(UUID, 'Finished streaming archive to destination.');
    return { server, handle: handle!, release };
  }

  it('a cancel past the point of no return is refused; the 200 then completes it', async () => {
    const f = fixture();
    const { server, handle, release } = await sent(f);
    expect(handle.state).toBe('processing');
    expect(handle.cancel()).toBe(false);
    release.resolve();
    expect(await handle.finished).toBe('completed');
    expect(server.transferring).toBe(true);
  });

  it('deleting the server after the whole archive was sent completes the transfer (the Panel\'s success handler)', async () => {
    const f = fixture();
    const { server, handle, release } = await sent(f);
    await f.manager.beforeServerDelete(server);
    expect(handle.state).toBe('completed');
    expect(f.servers.named(UUID, 'transfer.status')).toEqual(['pending', 'processing', 'completed']);
    expect(f.servers.named(UUID, 'transfer status')).toEqual(['processing', 'completed']);
    expect(f.panel.reports).toEqual([]);
    expect(f.finished).toEqual([{ server: UUID, direction: 'outgoing', state: 'completed' }]);
    release.resolve();
  });

  it('a daemon shutdown past the point of no return fails the transfer and reports it', async () => {
    const f = fixture();
    const { server, handle, release } = await sent(f);
    await f.manager.shutdown();
    expect(handle.state).toBe('failed');
    await expectReportedEnd(f, server, 'failed', 'Transfer failed: The daemon is shutting down.');
    release.resolve();
  });
});
