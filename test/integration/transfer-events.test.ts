import { randomBytes } from 'node:crypto';
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
import { EventRecorder } from '../helpers/ws.js';

const strip = (line: string) => line.replace(/\u001b\[[0-9;]*m/g, '');

/** docs/protocol.md D1, D2, D8 on the wire: every state once, in order, on both names, from both sides. */
describe('transfer events on the console websocket', () => {
  let tp: TestPanel;
  let a: TestNode;
  let b: TestNode;

  beforeAll(async () => {
    ({ tp, a, b } = await startTwoNodes({ config: { system: { transfers: { upload_limit: 6 } } } }, {}));
  });
  afterAll(() => stopTwoNodes({ tp, a, b }));

  async function server(mib: number): Promise<string> {
    const s = await tp.panel.admin.createServer({ node_id: a.id, ...ECHO_SERVER, skip_egg_scripts: true });
    fs.writeFileSync(path.join(a.serverDir(s.uuid), 'data.bin'), randomBytes(mib * 1024 * 1024));
    return s.uuid;
  }

  const token = async (uuid: string, permissions?: string[]) => (await tp.panel.admin.websocketToken(uuid, permissions ? { permissions } : {})).data.token;

  async function destinationSocket(uuid: string, permissions?: string[]): Promise<EventRecorder> {
    await waitFor(async () => (await b.api('GET', `/api/servers/${uuid}`)).status === 200, { what: 'server registered on B' });
    // websocket tokens for B are signed with B's token: ask panel-lite for one after the transfer started
    const { signNodeJwt } = await import('../../tools/panel-lite/index.js');
    const now = Math.floor(Date.now() / 1000);
    const jwt = signNodeJwt(b.token, {
      iat: now,
      nbf: now - 300,
      exp: now + 600,
      jti: 'events-test',
      server_uuid: uuid,
      user_uuid: '11111111-1111-4111-8111-111111111111',
      permissions: permissions ?? ['*', 'admin.websocket.transfer'],
    });
    return EventRecorder.connect(b.url, uuid, jwt, tp.panel.publicUrl);
  }

  it('a successful transfer: pending → processing → completed on both sides, compat names, logs and progress', async () => {
    const uuid = await server(36); // 6 s at 6 MiB/s: at least one 5 s progress line
    const src = await EventRecorder.connect(a.url, uuid, await token(uuid), tp.panel.publicUrl);
    const plain = await EventRecorder.connect(a.url, uuid, await token(uuid, ['*']), tp.panel.publicUrl);
    await tp.panel.admin.startTransfer(uuid, { node_id: b.id });
    const dst = await destinationSocket(uuid);
    await src.waitFor((e) => e.event === 'deleted', 'source deleted event', 30_000);
    await dst.waitFor((e) => e.event === 'transfer.status' && e.args?.[0] === 'completed', 'destination completed', 30_000);
    // the compat name is a frame of its own, sent right after: wait for it too, not just the first
    await dst.waitFor((e) => e.event === 'transfer status' && e.args?.[0] === 'success', 'destination compat success');

    expect(src.named('transfer.status')).toEqual(['pending', 'processing', 'completed']);
    expect(src.named('transfer status')).toEqual(['processing', 'completed']);
    const srcLogs = src.named('transfer.logs').map(strip);
    expect(srcLogs).toEqual(src.named('transfer logs').map(strip));
    expect(srcLogs[0]).toMatch(/^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} UTC \[Transfer System\] \[Source Node\]: Preparing to stream server data to destination\.\.\.$/);
    expect(srcLogs.some((l) => /Uploading \[[= ]{25}\] [\d.]+ \w+ \/ [\d.]+ MiB \(\d+%, [\d.]+ \w+\/s, ETA/.test(l))).toBe(true);
    expect(srcLogs.some((l) => l.endsWith('Finished streaming archive to destination.'))).toBe(true);
    expect(src.named('transfer.logs')[0]).toMatch(/^\u001b\[33m\u001b\[1m.*\u001b\[39m .*\u001b\[0m$/);
    const progress = src.named('transfer.progress').map((p) => JSON.parse(p));
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.at(-1)).toMatchObject({ server: uuid, direction: 'outgoing', state: 'processing' });
    expect(Object.keys(progress[0]).sort()).toEqual(
      ['bytes_done', 'bytes_total', 'direction', 'error', 'eta_seconds', 'files_done', 'rate_bytes_per_second', 'server', 'started_at', 'state'].sort(),
    );
    // the deleted event comes last, after completed
    const names = src.events.map((e) => e.event);
    expect(names.lastIndexOf('deleted')).toBeGreaterThan(names.lastIndexOf('transfer.status'));

    // a socket without admin.websocket.transfer sees status events only
    expect(plain.named('transfer.status')).toEqual(['pending', 'processing', 'completed']);
    expect(plain.named('transfer.logs')).toEqual([]);
    expect(plain.named('transfer logs')).toEqual([]);
    expect(plain.named('transfer.progress')).toEqual([]);

    // destination: joined mid-transfer, so the current state first, then the rest in order
    const dstStates = dst.named('transfer.status');
    expect(['pending', 'processing']).toContain(dstStates[0]);
    expect(dstStates.slice(dstStates.indexOf('processing'))).toEqual(['processing', 'completed']);
    expect(dst.named('transfer status').at(-1)).toBe('success');
    expect(dst.named('transfer.logs').map(strip).some((l) => l.includes('[Destination Node]: '))).toBe(true);
    for (const r of [src, plain, dst]) r.close();
  });

  it('a cancelled transfer: cancelling → cancelled, compat failure, `Canceled.` last on the source; destination deleted and closed', async () => {
    const uuid = await server(24);
    const src = await EventRecorder.connect(a.url, uuid, await token(uuid), tp.panel.publicUrl);
    await tp.panel.admin.startTransfer(uuid, { node_id: b.id });
    const dst = await destinationSocket(uuid);
    await dst.waitFor((e) => e.event === 'transfer.progress', 'destination progress');
    expect((await a.api('DELETE', `/api/servers/${uuid}/transfer`)).status).toBe(202);
    await src.waitFor((e) => e.event === 'transfer.logs' && strip(e.args![0]).endsWith('Canceled.'), 'Canceled.');
    await waitFor(() => dst.closed, { what: 'destination socket closed' });

    expect(src.named('transfer.status')).toEqual(['pending', 'processing', 'cancelling', 'cancelled']);
    expect(src.named('transfer status')).toEqual(['processing', 'cancelling', 'failure']);
    expect(strip(src.named('transfer.logs').at(-1)!)).toMatch(/\[Source Node\]: Canceled\.$/);
    const dstStates = dst.named('transfer.status');
    expect(dstStates.at(-1)).toBe('failed');
    expect(dst.named('transfer status').at(-1)).toBe('failure');
    expect(dst.events.at(-1)?.event).toBe('deleted');
    src.close();
  });
});
