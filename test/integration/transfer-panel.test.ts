import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ECHO_SERVER,
  startTwoNodes,
  stopTwoNodes,
  waitFor,
  type TestNode,
  type TestPanel,
} from '../helpers/harness.js';
import { multipart, postTransfer, sha256hex, tarGz, transferJwt } from '../helpers/wire.js';

/** docs/protocol.md D6.1, D6.2: Panel reports are idempotent; 5xx is retried, 409 ends the reporting. */
describe('transfer outcome reports to the Panel', () => {
  let tp: TestPanel;
  let a: TestNode;
  let b: TestNode;

  beforeAll(async () => {
    ({ tp, a, b } = await startTwoNodes({}, {}));
  });
  afterAll(() => stopTwoNodes({ tp, a, b }));

  const body = async () => {
    const archive = await tarGz([{ name: 'a.txt', content: 'hello' }]);
    return multipart([{ name: 'archive', filename: 'archive.tar.gz', data: archive }, { name: 'checksum', data: sha256hex(archive) }]);
  };

  it('retries a failure report answered with 5xx until the Panel accepts it', async () => {
    const s = await tp.panel.admin.createServer({ node_id: a.id, ...ECHO_SERVER, skip_egg_scripts: true, create_on_node: false });
    await tp.panel.admin.raw('POST', '/admin/api/faults', { path: `/servers/${s.uuid}/transfer/failure$`, status: 503, count: 2 });
    const bad = multipart([{ name: 'archive', filename: 'archive.tar.gz', data: Buffer.from('nope') }, { name: 'checksum', data: sha256hex(Buffer.from('nope')) }]);
    const r = await postTransfer(b.url, { authorization: `Bearer ${transferJwt(b.token, s.uuid)}`, body: bad.body, contentType: bad.contentType });
    expect(r.body.code).toBe('BAD_ARCHIVE');
    await waitFor(async () => (await tp.panel.admin.calls({ path: `/servers/${s.uuid}/transfer/failure$` })).length === 3, {
      what: 'three failure report attempts',
      timeoutMs: 10_000,
    });
    const calls = await tp.panel.admin.calls({ path: `/servers/${s.uuid}/transfer/failure$` });
    expect(calls.map((c) => c.status)).toEqual([503, 503, 409]); // no pending transfer row: the Panel's 409 ends the reporting
  });

  it('a 409 to the success report means the Panel recorded a failure: the destination ends failed and cleans up', async () => {
    const s = await tp.panel.admin.createServer({ node_id: a.id, ...ECHO_SERVER, skip_egg_scripts: true, create_on_node: false });
    await tp.panel.admin.raw('POST', '/admin/api/faults', { path: `/servers/${s.uuid}/transfer/success$`, status: 409, count: 1 });
    const { body: b1, contentType } = await body();
    const r = await postTransfer(b.url, { authorization: `Bearer ${transferJwt(b.token, s.uuid)}`, body: b1, contentType });
    expect(r.status).not.toBe(200);
    expect(r.body.code).toBe('PANEL');
    await waitFor(async () => (await b.api('GET', `/api/transfers/${s.uuid}`)).status === 404);
    expect(fs.existsSync(b.serverDir(s.uuid))).toBe(false);
    expect((await b.api('GET', `/api/servers/${s.uuid}`)).status).toBe(404);
    // exactly one success attempt (409 is final) then one failure report
    expect((await tp.panel.admin.calls({ path: `/servers/${s.uuid}/transfer/success$` })).length).toBe(1);
    await waitFor(async () => (await tp.panel.admin.calls({ path: `/servers/${s.uuid}/transfer/failure$` })).length === 1);
  });

  it('the destination reports success before answering the source, and the Panel deletes the source server', async () => {
    const s = await tp.panel.admin.createServer({ node_id: a.id, ...ECHO_SERVER, skip_egg_scripts: true });
    fs.writeFileSync(path.join(a.serverDir(s.uuid), 'x.txt'), 'x');
    await tp.panel.admin.startTransfer(s.uuid, { node_id: b.id });
    await waitFor(async () => (await tp.panel.admin.getTransfer(s.uuid)).successful === true, { what: 'success' });
    await waitFor(async () => (await a.api('GET', `/api/servers/${s.uuid}`)).status === 404, { what: 'source deleted' });
    const success = await tp.panel.admin.calls({ path: `/servers/${s.uuid}/transfer/success$` });
    expect(success.length).toBe(1);
    expect(success[0].status).toBe(204);
    // the source never reports success, and nobody reported failure
    expect((await tp.panel.admin.calls({ path: `/servers/${s.uuid}/transfer/failure$` })).length).toBe(0);
  });
});
