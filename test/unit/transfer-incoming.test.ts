import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { JwtVerifier } from '../../src/auth/jwt.js';
import type { ErrorCode } from '../../src/errors.js';
import { PanelError } from '../../src/panel/client.js';
import type { IncomingBody } from '../../src/transfer/incoming-body.js';
import { acceptIncoming, type IncomingAnswer } from '../../src/transfer/incoming.js';
import { sha256hex, tarGz, transferJwt } from '../helpers/wire.js';
import { FakeBody, NODE_TOKEN, deferred, fixture, rawServer, type FakePart, type Fixture } from './transfer-fakes.js';

const UUID = '3f1c9a7e-2b4d-4e8f-9a6b-1c2d3e4f5a6b';
const jwt = new JwtVerifier(() => NODE_TOKEN);

interface Post {
  authorization?: string;
  contentType?: string;
  transferSize?: string;
  closed?: AbortSignal;
}

/** POST /api/transfers as the HTTP side hands it to the destination. */
function post(f: Fixture, body: IncomingBody, opts: Post = {}): Promise<IncomingAnswer> {
  return acceptIncoming(
    { manager: f.manager, jwt },
    {
      authorization: 'authorization' in opts ? opts.authorization : `Bearer ${transferJwt(NODE_TOKEN, UUID)}`,
      contentType: opts.contentType ?? 'multipart/form-data; boundary=x',
      transferSize: opts.transferSize,
      body,
      closed: opts.closed ?? new AbortController().signal,
    },
  );
}

const archiveOf = () => tarGz([{ name: 'a.txt', content: 'hello' }, { name: 'd/b.bin', content: Buffer.alloc(70_000, 1) }]);
const goodParts = (archive: Buffer): FakePart[] => [{ file: 'archive', data: archive }, { field: 'checksum', value: sha256hex(archive) }];

/** A fixture whose Panel knows the server (and answers its reports). */
function known(transfers: Record<string, unknown> = {}, build: { disk_space?: number } = {}): Fixture {
  const f = fixture(transfers);
  f.panel.configs.set(UUID, rawServer(UUID, build));
  return f;
}

function expectError(a: IncomingAnswer, code: ErrorCode, message?: string | RegExp): void {
  expect(a.ok, JSON.stringify(a)).toBe(false);
  if (a.ok) return;
  expect(a.error.code).toBe(code);
  if (message !== undefined) expect(a.error.message).toMatch(message);
}

/** docs/protocol.md D3.4, D4.2: a transfer that existed ended `outcome` and left nothing: data, registration, marker, listing. */
async function expectCleanEnd(f: Fixture, outcome: 'failed' | 'cancelled', lastLine: string | RegExp): Promise<void> {
  const reports = await f.panel.reportsFor(UUID);
  expect(reports).toEqual([{ uuid: UUID, success: false }]);
  expect(f.finished).toEqual([{ server: UUID, direction: 'incoming', state: outcome }]);
  expect(f.manager.incoming(UUID)).toBeUndefined();
  expect(f.manager.list()).toEqual([]);
  expect(f.manager.markers.list('incoming')).toEqual([]);
  expect(fs.existsSync(path.join(f.config.system.data, UUID))).toBe(false);
  expect(f.servers.has(UUID)).toBe(false);
  expect(f.socketsClosed).toEqual([UUID]);
  const states = f.servers.named(UUID, 'transfer.status');
  expect(states.at(-1)).toBe(outcome);
  expect(f.servers.named(UUID, 'transfer status').at(-1)).toBe('failure');
  expect(f.servers.lines(UUID).at(-1)).toMatch(lastLine);
  expect(f.environments.get(UUID)?.destroyed).toBeGreaterThan(0);
  // the server's sockets learn it is gone, after its terminal state
  const names = (f.servers.buses.get(UUID) ?? []).map((e) => e.event);
  expect(names.at(-1)).toBe('deleted');
  expect(JSON.stringify(f.logs)).not.toContain(NODE_TOKEN);
}

/** Holds the environment's creation (past the point of no return) until `gate` opens; `creating` says it began. */
function holdCreate(f: Fixture) {
  const creating = deferred();
  const gate = deferred();
  f.env.create = async () => {
    creating.resolve();
    await gate.promise;
  };
  return { creating, gate };
}

/** Nothing at all happened: no transfer, no Panel call, nothing published. */
function expectNothing(f: Fixture): void {
  expect(f.panel.configCalls).toBe(0);
  expect(f.panel.reports).toEqual([]);
  expect(f.finished).toEqual([]);
  expect(f.manager.list()).toEqual([]);
  expect(f.manager.markers.list('incoming')).toEqual([]);
  expect([...f.servers.buses.values()].flat().filter((e) => e.event.startsWith('transfer'))).toEqual([]);
}

describe('the destination: rows of docs/protocol.md D4.1 that create nothing', () => {
  const now = () => Math.floor(Date.now() / 1000);
  const rows: [string, string | undefined, ErrorCode][] = [
    ['no Authorization', undefined, 'AUTH_MISSING'],
    ['not Bearer', 'Basic abc', 'AUTH_MISSING'],
    ['another signature', `Bearer ${transferJwt('another-secret-another-secret', UUID)}`, 'AUTH_INVALID'],
    ['expired', `Bearer ${transferJwt(NODE_TOKEN, UUID, { exp: now() - 100 })}`, 'AUTH_INVALID'],
    ['another scope', `Bearer ${transferJwt(NODE_TOKEN, UUID, { scope: 'websocket' })}`, 'AUTH_SCOPE'],
    ['websocket claims', `Bearer ${transferJwt(NODE_TOKEN, UUID, { permissions: ['*'] })}`, 'AUTH_SCOPE'],
    ['subject not a UUID', `Bearer ${transferJwt(NODE_TOKEN, 'not-a-uuid')}`, 'BAD_SUBJECT'],
  ];
  for (const [label, authorization, code] of rows) {
    it(`${code}: ${label}`, async () => {
      const f = known();
      expectError(await post(f, new FakeBody(goodParts(await archiveOf())), { authorization }), code);
      expectNothing(f);
    });
  }

  it('SERVER_EXISTS for a server that lives here; it is left alone', async () => {
    const f = known();
    const server = f.addServer(UUID);
    expectError(await post(f, new FakeBody(goodParts(await archiveOf()))), 'SERVER_EXISTS');
    expectNothing(f);
    expect(f.servers.get(UUID)).toBe(server);
  });

  it('TRANSFER_IN_PROGRESS while one is incoming', async () => {
    const f = known();
    const first = post(f, new FakeBody([{ file: 'archive', data: await archiveOf(), open: true }]));
    await f.servers.until(UUID, 'transfer.status', 'processing');
    expectError(await post(f, new FakeBody(goodParts(await archiveOf()))), 'TRANSFER_IN_PROGRESS');
    expect(f.manager.incoming(UUID)?.cancel()).toBe(true);
    expectError(await first, 'CANCELLED');
    await expectCleanEnd(f, 'cancelled', 'Canceled.');
  });
});

describe('the destination: a successful transfer', () => {
  it('extracts, verifies, creates the environment, reports success, then answers 200', async () => {
    const f = known();
    const archive = await archiveOf();
    const a = await post(f, new FakeBody(goodParts(archive)), { transferSize: '70005' });
    expect(a).toEqual({ ok: true });
    expect(f.panel.reports).toEqual([{ uuid: UUID, success: true }]);
    expect(f.finished).toEqual([{ server: UUID, direction: 'incoming', state: 'completed' }]);
    const dir = path.join(f.config.system.data, UUID);
    expect(fs.readFileSync(path.join(dir, 'a.txt'), 'utf8')).toBe('hello');
    expect(fs.statSync(path.join(dir, 'd/b.bin')).size).toBe(70_000);
    const server = f.servers.get(UUID);
    expect(server?.transferring).toBe(false);
    expect(f.environments.get(UUID)?.created).toBe(1);
    expect(f.manager.incoming(UUID)).toBeUndefined();
    expect(f.manager.markers.list('incoming')).toEqual([]);
    expect(f.servers.named(UUID, 'transfer.status')).toEqual(['pending', 'processing', 'completed']);
    expect(f.servers.named(UUID, 'transfer status')).toEqual(['processing', 'success']);
    expect(f.servers.lines(UUID)).toEqual([
      'Receiving server data from the source node...',
      'Extracting archive...',
      'Archive verified; creating the server environment...',
      'Transfer completed.',
    ]);
    expect(f.socketsClosed).toEqual([]);
  });

  it('accepts checksum_archive (Pelican) and drains unknown parts', async () => {
    const f = known();
    const archive = await archiveOf();
    const parts: FakePart[] = [
      { file: 'archive', data: archive },
      { file: 'install_logs', data: Buffer.alloc(300_000, 2) },
      { field: 'checksum_archive', value: sha256hex(archive) },
    ];
    expect(await post(f, new FakeBody(parts))).toEqual({ ok: true });
  });
});

describe('the destination: every way a transfer fails, each ending clean with a failure report', () => {
  it('PANEL when the Panel refuses the configuration', async () => {
    const f = fixture();
    f.panel.configError = new PanelError(403, 'Forbidden', 'no');
    expectError(await post(f, new FakeBody(goodParts(await archiveOf()))), 'PANEL', /did not provide the server's configuration/);
    expect(await f.panel.reportsFor(UUID)).toEqual([{ uuid: UUID, success: false }]);
    expect(f.finished).toEqual([{ server: UUID, direction: 'incoming', state: 'failed' }]);
    expect(f.manager.list()).toEqual([]);
    expect(f.servers.has(UUID)).toBe(false);
  });

  it('BAD_REQUEST for a body that is not multipart', async () => {
    const f = known();
    expectError(await post(f, new FakeBody([]), { contentType: 'application/json' }), 'BAD_REQUEST', /Invalid content type/);
    await expectCleanEnd(f, 'failed', /^Transfer failed: Invalid content type/);
  });

  it('DISK_FULL when the declared size exceeds the server disk limit, before any byte is read', async () => {
    const f = known({}, { disk_space: 1 });
    expectError(await post(f, new FakeBody(goodParts(await archiveOf())), { transferSize: String(5 * 1024 * 1024) }), 'DISK_FULL');
    await expectCleanEnd(f, 'failed', /^Transfer failed: Not enough disk space/);
  });

  it('DISK_FULL when the archive grows past the disk limit while it is extracted', async () => {
    const f = known({}, { disk_space: 1 });
    const bomb = await tarGz([{ name: 'zeros.bin', content: Buffer.alloc(4 * 1024 * 1024) }]);
    expectError(await post(f, new FakeBody(goodParts(bomb))), 'DISK_FULL');
    await expectCleanEnd(f, 'failed', /^Transfer failed: /);
  });

  it('BAD_ARCHIVE for bytes that are not a gzip tar', async () => {
    const f = known();
    const data = Buffer.from('not gzip at all');
    expectError(await post(f, new FakeBody([{ file: 'archive', data }, { field: 'checksum', value: sha256hex(data) }])), 'BAD_ARCHIVE');
    await expectCleanEnd(f, 'failed', /^Transfer failed: /);
  });

  it('CHECKSUM_MISMATCH when the archive does not hash to the checksum part', async () => {
    const f = known();
    const parts: FakePart[] = [{ file: 'archive', data: await archiveOf() }, { field: 'checksum', value: sha256hex(Buffer.from('x')) }];
    expectError(await post(f, new FakeBody(parts)), 'CHECKSUM_MISMATCH');
    await expectCleanEnd(f, 'failed', /^Transfer failed: Checksum mismatch/);
  });

  const badBodies: [string, (archive: Buffer) => FakePart[], RegExp][] = [
    ['a body without parts', () => [], /archive part is missing/],
    ['only a checksum part', () => [{ field: 'checksum', value: 'a'.repeat(64) }], /before the archive/],
    ['checksum before the archive', (a) => [{ field: 'checksum', value: sha256hex(a) }, { file: 'archive', data: a }], /before the archive/],
    ['no checksum part', (a) => [{ file: 'archive', data: a }], /checksum part is missing/],
    ['a checksum over the bound', (a) => [{ file: 'archive', data: a }, { field: 'checksum', value: 'a'.repeat(128), truncated: true }], /too large/],
    ['a checksum that is not hex', (a) => [{ file: 'archive', data: a }, { field: 'checksum', value: 'zz'.repeat(32) }], /64 hexadecimal/],
    ['two archive parts', (a) => [{ file: 'archive', data: a }, { file: 'archive', data: a }], /More than one archive part/],
    ['a body that ends inside the archive part', (a) => [{ file: 'archive', data: a, breakOff: true }], /Unexpected end of multipart data/],
  ];
  for (const [label, parts, message] of badBodies) {
    it(`BAD_REQUEST for ${label}`, async () => {
      const f = known();
      expectError(await post(f, new FakeBody(parts(await archiveOf()))), 'BAD_REQUEST', message);
      await expectCleanEnd(f, 'failed', /^Transfer failed: /);
    });
  }

  it('IDLE_TIMEOUT when the body carries no bytes for idle_timeout', async () => {
    const f = known({ idle_timeout: 0.2 });
    const a = await post(f, new FakeBody([{ file: 'archive', data: await archiveOf(), open: true }]));
    expectError(a, 'IDLE_TIMEOUT', 'No data received for 0.2 seconds.');
    await expectCleanEnd(f, 'failed', 'Transfer failed: No data received for 0.2 seconds.');
  });

  it('BAD_REQUEST when the source closes the connection before the whole body arrived', async () => {
    const f = known();
    const closed = new AbortController();
    const answer = post(f, new FakeBody([{ file: 'archive', data: await archiveOf(), open: true }]), { closed: closed.signal });
    await f.servers.until(UUID, 'transfer.status', 'processing');
    const { WingsError } = await import('../../src/errors.js');
    closed.abort(new WingsError('BAD_REQUEST', 'The source closed the connection before the whole body was received.'));
    expectError(await answer, 'BAD_REQUEST', /closed the connection/);
    await expectCleanEnd(f, 'failed', /closed the connection/);
  });

  it('INTERNAL when the environment cannot be created after the archive was verified', async () => {
    const f = known();
    f.env.create = async () => {
      throw new Error('no such image');
    };
    expectError(await post(f, new FakeBody(goodParts(await archiveOf()))), 'INTERNAL', 'Failed to create the server environment: no such image');
    await expectCleanEnd(f, 'failed', /no such image/);
  });

  it('PANEL_CONFLICT when the Panel answers 409 to the success report (docs/protocol.md D6.3)', async () => {
    const f = known();
    f.panel.answerReport = async (_uuid, success) => {
      if (success) throw new PanelError(409, 'Conflict', 'Server is not being transferred.');
    };
    expectError(await post(f, new FakeBody(goodParts(await archiveOf()))), 'PANEL_CONFLICT');
    const reports = await f.panel.reportsFor(UUID, 2);
    expect(reports.map((r) => r.success)).toEqual([true, false]);
    expect(f.servers.has(UUID)).toBe(false);
    expect(fs.existsSync(path.join(f.config.system.data, UUID))).toBe(false);
    expect(f.finished).toEqual([{ server: UUID, direction: 'incoming', state: 'failed' }]);
  });
});

describe('the destination: cancel, delete and shutdown (docs/protocol.md D3, D7.3, D9.1)', () => {
  it('a cancel mid-stream: cancelling then cancelled, answered CANCELLED; a second cancel is refused', async () => {
    const f = known();
    const answer = post(f, new FakeBody([{ file: 'archive', data: await archiveOf(), open: true }]));
    await f.servers.until(UUID, 'transfer.status', 'processing');
    const t = f.manager.incoming(UUID)!;
    expect(t.cancel()).toBe(true);
    expect(t.cancel()).toBe(false);
    expectError(await answer, 'CANCELLED', 'The transfer was cancelled on the destination.');
    await expectCleanEnd(f, 'cancelled', 'Canceled.');
    expect(f.servers.named(UUID, 'transfer.status')).toEqual(['pending', 'processing', 'cancelling', 'cancelled']);
    expect(f.servers.named(UUID, 'transfer status')).toEqual(['processing', 'cancelling', 'failure']);
    expect(await t.finished).toBe('cancelled');
  });

  it('a cancel while pending (the Panel call under way)', async () => {
    const f = known();
    const gate = deferred();
    f.panel.configGate = gate.promise;
    const answer = post(f, new FakeBody(goodParts(await archiveOf())));
    await new Promise((r) => setImmediate(r));
    while (!f.manager.incoming(UUID)) await new Promise((r) => setImmediate(r));
    expect(f.manager.incoming(UUID)!.state).toBe('pending');
    expect(f.manager.incoming(UUID)!.cancel()).toBe(true);
    expectError(await answer, 'CANCELLED');
    expect(await f.panel.reportsFor(UUID)).toEqual([{ uuid: UUID, success: false }]);
    expect(f.finished).toEqual([{ server: UUID, direction: 'incoming', state: 'cancelled' }]);
    expect(f.servers.has(UUID)).toBe(false);
  });

  it('a cancel past the point of no return is refused, and the transfer completes', async () => {
    const f = known();
    const { creating, gate } = holdCreate(f);
    const answer = post(f, new FakeBody(goodParts(await archiveOf())));
    await creating.promise;
    const t = f.manager.incoming(UUID)!;
    expect(t.state).toBe('processing');
    expect(t.cancel()).toBe(false);
    gate.resolve();
    expect(await answer).toEqual({ ok: true });
    expect(await t.finished).toBe('completed');
  });

  it('deleting the server mid-stream cancels the transfer; the delete resolves once it is clean', async () => {
    const f = known();
    const answer = post(f, new FakeBody([{ file: 'archive', data: await archiveOf(), open: true }]));
    await f.servers.until(UUID, 'transfer.status', 'processing');
    await f.manager.beforeServerDelete(f.servers.get(UUID)!);
    expect(f.manager.incoming(UUID)).toBeUndefined();
    expect(f.servers.has(UUID)).toBe(false);
    expectError(await answer, 'CANCELLED');
    await expectCleanEnd(f, 'cancelled', 'Canceled.');
  });

  it('deleting the server past the point of no return lets the transfer complete first', async () => {
    const f = known();
    const { creating, gate } = holdCreate(f);
    const answer = post(f, new FakeBody(goodParts(await archiveOf())));
    await creating.promise;
    const deleting = f.manager.beforeServerDelete(f.servers.get(UUID)!);
    gate.resolve();
    await deleting;
    expect(await answer).toEqual({ ok: true });
    expect(f.finished).toEqual([{ server: UUID, direction: 'incoming', state: 'completed' }]);
  });

  it('a daemon shutdown cancels a running transfer and reports it', async () => {
    const f = known();
    const answer = post(f, new FakeBody([{ file: 'archive', data: await archiveOf(), open: true }]));
    await f.servers.until(UUID, 'transfer.status', 'processing');
    await f.manager.shutdown();
    expectError(await answer, 'CANCELLED');
    await expectCleanEnd(f, 'cancelled', 'Canceled.');
  });
});
