import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signNodeJwt } from '../../tools/panel-lite/index.js';
import {
  ECHO_SERVER,
  startTwoNodes,
  stopTwoNodes,
  waitFor,
  type TestNode,
  type TestPanel,
} from '../helpers/harness.js';
import { storedGz } from '../helpers/gzip.js';
import { multipart, postTransfer, sha256hex, tarBytes, tarGz, transferJwt } from '../helpers/wire.js';

/** Every row of docs/protocol.md D4.1, sent straight to a destination daemon. */
describe('POST /api/transfers errors (docs/protocol.md D4.1)', () => {
  let tp: TestPanel;
  let a: TestNode;
  let b: TestNode;

  beforeAll(async () => {
    ({ tp, a, b } = await startTwoNodes({}, {}));
  });
  afterAll(() => stopTwoNodes({ tp, a, b }));

  /** A server the Panel knows on node A (the source), not on B. */
  async function panelServer(build?: { disk_space?: number }): Promise<string> {
    const s = await tp.panel.admin.createServer({ node_id: a.id, ...ECHO_SERVER, skip_egg_scripts: true, build, create_on_node: false });
    return s.uuid;
  }

  async function failureReports(uuid: string): Promise<number> {
    return (await tp.panel.admin.calls({ path: `/servers/${uuid}/transfer/failure` })).length;
  }

  /** The destination holds nothing of the transfer: no data, no registration, no active transfer. */
  async function expectNothingOnB(uuid: string): Promise<void> {
    await waitFor(async () => (await b.api('GET', `/api/transfers/${uuid}`)).status === 404, { what: 'transfer gone' });
    expect(fs.existsSync(b.serverDir(uuid))).toBe(false);
    expect((await b.api('GET', `/api/servers/${uuid}`)).status).toBe(404);
  }

  const good = async () => {
    const archive = await tarGz([{ name: 'a.txt', content: 'hello' }]);
    return { archive, ...multipart([{ name: 'archive', filename: 'archive.tar.gz', data: archive }, { name: 'checksum', data: sha256hex(archive) }]) };
  };

  it('401 AUTH_MISSING without a Bearer header', async () => {
    const uuid = await panelServer();
    const { body, contentType } = await good();
    for (const authorization of [undefined, 'Basic abc', 'Bearer', 'bearer x']) {
      const r = await postTransfer(b.url, { authorization, body, contentType });
      expect(r.status, String(authorization)).toBe(401);
      expect(r.body).toEqual({ error: 'The required authorization heads were not present in the request.', code: 'AUTH_MISSING' });
      expect(r.headers['www-authenticate']).toBe('Bearer');
    }
    await expectNothingOnB(uuid);
  });

  it('401 AUTH_INVALID for bad signature, alg, malformed, expired, not yet valid', async () => {
    const uuid = await panelServer();
    const { body, contentType } = await good();
    const now = Math.floor(Date.now() / 1000);
    const tokens = [
      transferJwt('wrong-secret-wrong-secret', uuid),
      transferJwt(b.token, uuid, {}, { alg: 'HS512' }),
      'not.a.jwt',
      transferJwt(b.token, uuid, { exp: now - 10 }),
      transferJwt(b.token, uuid, { nbf: now + 120 }),
      transferJwt(b.token, uuid, { exp: null }),
      `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${Buffer.from(JSON.stringify({ sub: uuid, exp: now + 100 })).toString('base64url')}.`,
    ];
    for (const t of tokens) {
      const r = await postTransfer(b.url, { authorization: `Bearer ${t}`, body, contentType });
      expect(r.status, t).toBe(401);
      expect(r.body.code).toBe('AUTH_INVALID');
    }
    // nbf within the 60 s leeway is accepted (ends in a real transfer)
    expect(await failureReports(uuid)).toBe(0);
    await expectNothingOnB(uuid);
  });

  it('403 AUTH_SCOPE for tokens of another purpose; a scope listing transfer is accepted', async () => {
    const uuid = await panelServer();
    const { body, contentType } = await good();
    const now = Math.floor(Date.now() / 1000);
    const ws = signNodeJwt(b.token, { iat: now, exp: now + 600, server_uuid: uuid, permissions: ['*'], user_uuid: uuid });
    for (const t of [ws, transferJwt(b.token, uuid, { scope: 'websocket' }), transferJwt(b.token, uuid, { file_path: '/x' })]) {
      const r = await postTransfer(b.url, { authorization: `Bearer ${t}`, body, contentType });
      expect(r.status).toBe(403);
      expect(r.body.code).toBe('AUTH_SCOPE');
    }
    await expectNothingOnB(uuid);
    const ok = await postTransfer(b.url, { authorization: `Bearer ${transferJwt(b.token, uuid, { scope: 'websocket transfer' })}`, body, contentType });
    // The Panel has no pending transfer for it, so the success report gets 409 → the destination ends failed (docs/protocol.md D6.3).
    expect(ok.status).not.toBe(403);
    await expectNothingOnB(uuid);
  });

  it('400 BAD_SUBJECT when sub is not a UUID', async () => {
    const { body, contentType } = await good();
    const r = await postTransfer(b.url, { authorization: `Bearer ${transferJwt(b.token, 'not-a-uuid')}`, body, contentType });
    expect(r.status).toBe(400);
    expect(r.body.code).toBe('BAD_SUBJECT');
  });

  it('409 SERVER_EXISTS for a server that already lives here', async () => {
    const s = await tp.panel.admin.createServer({ node_id: b.id, ...ECHO_SERVER, skip_egg_scripts: true });
    fs.writeFileSync(`${b.serverDir(s.uuid)}/keep.txt`, 'keep');
    const { body, contentType } = await good();
    const r = await postTransfer(b.url, { authorization: `Bearer ${transferJwt(b.token, s.uuid)}`, body, contentType });
    expect(r.status).toBe(409);
    expect(r.body.code).toBe('SERVER_EXISTS');
    expect(fs.readFileSync(`${b.serverDir(s.uuid)}/keep.txt`, 'utf8')).toBe('keep');
    expect(await failureReports(s.uuid)).toBe(0);
  });

  it('502 PANEL when the Panel refuses the configuration, with a failure report', async () => {
    const uuid = await panelServer();
    await tp.panel.admin.raw('POST', '/admin/api/faults', { path: `/servers/${uuid}$`, method: 'GET', status: 403, count: 1 });
    const { body, contentType } = await good();
    const r = await postTransfer(b.url, { authorization: `Bearer ${transferJwt(b.token, uuid)}`, body, contentType });
    expect(r.status).toBe(502);
    expect(r.body.code).toBe('PANEL');
    await waitFor(async () => (await failureReports(uuid)) === 1, { what: 'failure report' });
    await expectNothingOnB(uuid);
  });

  const badBodies: [string, () => Promise<{ body: Buffer; contentType: string }>, string][] = [
    ['not multipart', async () => ({ body: Buffer.from('{"a":1}'), contentType: 'application/json' }), 'BAD_REQUEST'],
    ['no parts', async () => multipart([]), 'BAD_REQUEST'],
    ['checksum before archive', async () => {
      const archive = await tarGz([{ name: 'a', content: 'x' }]);
      return multipart([{ name: 'checksum', data: sha256hex(archive) }, { name: 'archive', filename: 'archive.tar.gz', data: archive }]);
    }, 'BAD_REQUEST'],
    ['checksum missing', async () => multipart([{ name: 'archive', filename: 'archive.tar.gz', data: await tarGz([{ name: 'a', content: 'x' }]) }]), 'BAD_REQUEST'],
    ['archive missing', async () => multipart([{ name: 'checksum', data: 'a'.repeat(64) }]), 'BAD_REQUEST'],
    ['bad hex', async () => {
      const archive = await tarGz([{ name: 'a', content: 'x' }]);
      return multipart([{ name: 'archive', filename: 'archive.tar.gz', data: archive }, { name: 'checksum', data: 'zz'.repeat(32) }]);
    }, 'BAD_REQUEST'],
    ['checksum of megabytes', async () => {
      const archive = await tarGz([{ name: 'a', content: 'x' }]);
      return multipart([{ name: 'archive', filename: 'archive.tar.gz', data: archive }, { name: 'checksum', data: 'a'.repeat(4 * 1024 * 1024) }]);
    }, 'BAD_REQUEST'],
    ['checksum mismatch', async () => {
      const archive = await tarGz([{ name: 'a', content: 'x' }]);
      return multipart([{ name: 'archive', filename: 'archive.tar.gz', data: archive }, { name: 'checksum', data: sha256hex(Buffer.from('other')) }]);
    }, 'CHECKSUM_MISMATCH'],
    ['one flipped byte in a stored (level none) stream: its CRC-32 is not checked, the SHA-256 is', async () => {
      const good = storedGz(await tarBytes([{ name: 'big', content: Buffer.alloc(300_000, 7) }]));
      const data = Buffer.from(good);
      data[150_000] ^= 1; // file data, inside a stored block
      return multipart([{ name: 'archive', filename: 'archive.tar.gz', data }, { name: 'checksum', data: sha256hex(good) }]);
    }, 'CHECKSUM_MISMATCH'],
    ['not gzip', async () => {
      const data = Buffer.from('this is not gzip at all');
      return multipart([{ name: 'archive', filename: 'archive.tar.gz', data }, { name: 'checksum', data: sha256hex(data) }]);
    }, 'BAD_ARCHIVE'],
    ['truncated gzip', async () => {
      const full = await tarGz([{ name: 'big', content: Buffer.alloc(200_000, 7) }]);
      const data = full.subarray(0, Math.floor(full.length / 2));
      return multipart([{ name: 'archive', filename: 'archive.tar.gz', data }, { name: 'checksum', data: sha256hex(data) }]);
    }, 'BAD_ARCHIVE'],
    ['parent traversal', async () => {
      const data = await tarGz([{ name: '../escape.txt', content: 'x' }]);
      return multipart([{ name: 'archive', filename: 'archive.tar.gz', data }, { name: 'checksum', data: sha256hex(data) }]);
    }, 'BAD_ARCHIVE'],
    ['absolute path', async () => {
      const data = await tarGz([{ name: '/tmp/wings-escape-abs.txt', content: 'x' }]);
      return multipart([{ name: 'archive', filename: 'archive.tar.gz', data }, { name: 'checksum', data: sha256hex(data) }]);
    }, 'BAD_ARCHIVE'],
    ['write through a symlink', async () => {
      const data = await tarGz([
        { name: 'link', type: 'symlink', linkname: '/tmp' },
        { name: 'link/wings-escape-link.txt', content: 'pwned' },
      ]);
      return multipart([{ name: 'archive', filename: 'archive.tar.gz', data }, { name: 'checksum', data: sha256hex(data) }]);
    }, 'BAD_ARCHIVE'],
    ['hard link', async () => {
      const data = await tarGz([{ name: 'a', content: 'x' }, { name: 'b', type: 'link', linkname: 'a' }]);
      return multipart([{ name: 'archive', filename: 'archive.tar.gz', data }, { name: 'checksum', data: sha256hex(data) }]);
    }, 'BAD_ARCHIVE'],
  ];

  for (const [label, make, code] of badBodies) {
    it(`${code} for ${label}, and nothing is left behind`, async () => {
      const uuid = await panelServer();
      const { body, contentType } = await make();
      const r = await postTransfer(b.url, { authorization: `Bearer ${transferJwt(b.token, uuid)}`, body, contentType });
      expect(r.body.code).toBe(code);
      expect(r.status).toBe(code === 'BAD_REQUEST' || code === 'CHECKSUM_MISMATCH' || code === 'BAD_ARCHIVE' ? 400 : 0);
      expect(typeof r.body.error).toBe('string');
      await expectNothingOnB(uuid);
      await waitFor(async () => (await failureReports(uuid)) === 1, { what: 'failure report' });
      expect(fs.existsSync('/tmp/wings-escape-abs.txt')).toBe(false);
      expect(fs.existsSync('/tmp/wings-escape-link.txt')).toBe(false);
    });
  }

  it('ignores unknown parts and accepts checksum_archive (Pelican)', async () => {
    const uuid = await panelServer();
    await tp.panel.admin.raw('POST', '/admin/api/faults', { path: `/servers/${uuid}/transfer/success$`, status: 204, count: 1 });
    const archive = await tarGz([{ name: 'a.txt', content: 'hello' }]);
    const { body, contentType } = multipart([
      { name: 'archive', filename: 'archive.tar.gz', data: archive },
      { name: 'install_logs', filename: 'install.log', data: Buffer.alloc(2 * 1024 * 1024, 1) },
      { name: 'checksum_archive', data: sha256hex(archive) },
    ]);
    const r = await postTransfer(b.url, { authorization: `Bearer ${transferJwt(b.token, uuid)}`, body, contentType });
    expect(r.status).toBe(200);
    expect(fs.readFileSync(`${b.serverDir(uuid)}/a.txt`, 'utf8')).toBe('hello');
  });

  it('507 DISK_FULL: a gzip bomb stops at the server disk limit; a declared size over it is refused early', async () => {
    const uuid = await panelServer({ disk_space: 5 });
    const bomb = await tarGz([{ name: 'zeros.bin', content: Buffer.alloc(50 * 1024 * 1024) }]);
    const { body, contentType } = multipart([{ name: 'archive', filename: 'archive.tar.gz', data: bomb }, { name: 'checksum', data: sha256hex(bomb) }]);
    const r = await postTransfer(b.url, { authorization: `Bearer ${transferJwt(b.token, uuid)}`, body, contentType });
    expect(r.status).toBe(507);
    expect(r.body.code).toBe('DISK_FULL');
    await expectNothingOnB(uuid);

    const uuid2 = await panelServer({ disk_space: 5 });
    const early = await postTransfer(b.url, {
      authorization: `Bearer ${transferJwt(b.token, uuid2)}`,
      body,
      contentType,
      headers: { 'x-transfer-size': String(100 * 1024 * 1024) },
    });
    expect(early.status).toBe(507);
    expect(early.body.code).toBe('DISK_FULL');
    await expectNothingOnB(uuid2);
  });
});
