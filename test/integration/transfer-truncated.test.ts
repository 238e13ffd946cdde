import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ECHO_SERVER, startNode, startPanel, waitFor, type TestNode, type TestPanel } from '../helpers/harness.js';
import { postTransfer, sha256hex, tarGz, transferJwt } from '../helpers/wire.js';

const BOUNDARY = 'x'.repeat(40);
const fileHead = (name: string, filename: string, first: boolean) =>
  Buffer.from(
    `${first ? '' : '\r\n'}--${BOUNDARY}\r\nContent-Disposition: form-data; name="${name}"; filename="${filename}"\r\n` +
      `Content-Type: application/octet-stream\r\n\r\n`,
  );

/**
 * Regression: a request that ends cleanly inside a file part (its headers and a little data, then
 * the end of the body) made the multipart parser emit 'error' on the part's stream, where nobody
 * listened: the destination daemon died. It must end the transfer with a coded 400 instead.
 */
describe('a transfer body that ends inside a part', () => {
  let tp: TestPanel;
  let node: TestNode;
  let archive: Buffer;

  beforeAll(async () => {
    tp = await startPanel();
    node = await startNode(tp);
    archive = await tarGz([{ name: 'a.bin', content: Buffer.alloc(64 * 1024, 3) }]);
  });
  afterAll(async () => {
    await node?.stop();
    await tp?.close();
  });

  const cases: [string, () => Buffer][] = [
    ['the archive part, after ~100 bytes of gzip', () => Buffer.concat([fileHead('archive', 'archive.tar.gz', true), archive.subarray(0, 100)])],
    ['an unknown part after the archive', () => Buffer.concat([fileHead('archive', 'archive.tar.gz', true), archive, fileHead('install_logs', 'install.log', false), Buffer.alloc(100, 1)])],
    ['a second archive part', () => Buffer.concat([fileHead('archive', 'archive.tar.gz', true), archive, fileHead('archive', 'archive.tar.gz', false), archive.subarray(0, 100)])],
  ];

  for (const [label, body] of cases) {
    it(`inside ${label}: 400 BAD_REQUEST, nothing left behind, failure reported, daemon up`, async () => {
      const s = await tp.panel.admin.createServer({ node_id: node.id, ...ECHO_SERVER, skip_egg_scripts: true, create_on_node: false });
      const r = await postTransfer(node.url, {
        authorization: `Bearer ${transferJwt(node.token, s.uuid)}`,
        body: body(),
        contentType: `multipart/form-data; boundary=${BOUNDARY}`,
      });
      expect(r.status).toBe(400);
      expect(r.body).toMatchObject({ code: 'BAD_REQUEST' });
      expect(typeof r.body.error).toBe('string');

      expect((await node.api('GET', '/api/system')).status).toBe(200);
      await waitFor(async () => (await node.api('GET', `/api/transfers/${s.uuid}`)).status === 404, { what: 'transfer gone' });
      expect(fs.existsSync(node.serverDir(s.uuid))).toBe(false);
      expect((await node.api('GET', `/api/servers/${s.uuid}`)).status).toBe(404);
      await tp.panel.waitForCall(new RegExp(`/servers/${s.uuid}/transfer/failure$`), { timeoutMs: 5000 });
      // still up once the report went out, too
      expect((await node.api('GET', '/api/system')).status).toBe(200);
    });
  }

  it('a well-formed body still transfers afterwards', async () => {
    const s = await tp.panel.admin.createServer({ node_id: node.id, ...ECHO_SERVER, skip_egg_scripts: true, create_on_node: false });
    await tp.panel.admin.raw('POST', '/admin/api/faults', { path: `/servers/${s.uuid}/transfer/success$`, status: 204, count: 1 });
    const body = Buffer.concat([
      fileHead('archive', 'archive.tar.gz', true),
      archive,
      Buffer.from(`\r\n--${BOUNDARY}\r\nContent-Disposition: form-data; name="checksum"\r\n\r\n${sha256hex(archive)}\r\n--${BOUNDARY}--\r\n`),
    ]);
    const r = await postTransfer(node.url, { authorization: `Bearer ${transferJwt(node.token, s.uuid)}`, body, contentType: `multipart/form-data; boundary=${BOUNDARY}` });
    expect(r.status).toBe(200);
    expect(fs.statSync(`${node.serverDir(s.uuid)}/a.bin`).size).toBe(64 * 1024);
  });
});
