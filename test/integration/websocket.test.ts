import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { SignJWT } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ECHO_SERVER, http, startNode, startPanel, waitFor, type TestNode, type TestPanel } from '../helpers/harness.js';
import { HandshakeError, TEST_ORIGIN as ORIGIN, WsClient as Client, closeSocketsOf } from '../helpers/ws.js';

const ECHO = { ...ECHO_SERVER, stop: { type: 'command' as const, value: 'stop' }, skip_egg_scripts: true };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const md5 = (s: string) => createHash('md5').update(s).digest('hex');

describe('console websocket against a real daemon', () => {
  let tp: TestPanel;
  let node: TestNode;
  let other: TestNode;
  let uuid: string;
  let uuid2: string;
  /** The daemons of this file: after each test neither may still hold a socket. */
  const nodes: TestNode[] = [];

  const wsUrl = (server: string, n: TestNode = node) => `${n.url.replace(/^http/, 'ws')}/api/servers/${server}/ws`;
  async function token(
    server: string,
    body: { permissions?: string[]; user_uuid?: string; user_id?: number; expires_in?: number; scope?: string } = {},
  ): Promise<string> {
    return (await tp.panel.admin.websocketToken(server, body)).data.token;
  }
  /** A token signed by the test itself with the node token (claims chosen freely). */
  async function forge(claims: Record<string, unknown>, secret = node.token): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ permissions: ['*'], server_uuid: uuid, user_uuid: 'u-forged', iat: now, exp: now + 600, ...claims })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .sign(new TextEncoder().encode(secret));
  }
  async function connect(server = uuid, n: TestNode = node): Promise<Client> {
    return Client.open(wsUrl(server, n));
  }
  async function authed(
    server = uuid,
    body: Parameters<typeof token>[1] = {},
    n: TestNode = node,
  ): Promise<Client> {
    const c = await connect(server, n);
    c.send('auth', await token(server, body));
    await c.expectEvent('status');
    return c;
  }

  beforeAll(async () => {
    process.env.WINGS_WS_AUTH_TIMEOUT_MS = '4000';
    process.env.WINGS_WS_EXPIRY_CHECK_MS = '500';
    tp = await startPanel();
    [node, other] = await Promise.all([
      startNode(tp, { name: 'ws-a', config: { allowed_origins: [ORIGIN], system: { transfers: { upload_limit: 1 } } } }),
      startNode(tp, { name: 'ws-b', config: { allowed_origins: [ORIGIN] } }),
    ]);
    nodes.push(node, other);
    uuid = (await tp.panel.admin.createServer({ node_id: node.id, ...ECHO })).uuid;
    uuid2 = (await tp.panel.admin.createServer({ node_id: node.id, ...ECHO })).uuid;
  });
  // Whatever a test opened is closed even when it failed, and the daemons must have let go of it
  // before the next test starts (a leftover socket counts against a server's cap of 30).
  afterEach(() => closeSocketsOf(nodes));
  afterAll(async () => {
    await Promise.all([node?.stop(), other?.stop()]);
    await tp?.close();
    delete process.env.WINGS_WS_AUTH_TIMEOUT_MS;
    delete process.env.WINGS_WS_EXPIRY_CHECK_MS;
  });

  it('answers 404 for an unknown server and 400 to a plain GET', async () => {
    const err = await Client.open(wsUrl('00000000-0000-4000-8000-000000000000')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HandshakeError);
    expect((err as HandshakeError).status).toBe(404);
    expect(JSON.parse((err as HandshakeError).body)).toEqual({ error: 'The requested resource does not exist on this instance.' });
    const plain = await http('GET', `${node.url}/api/servers/${uuid}/ws`);
    expect(plain.status).toBe(400);
    // the route is documented without the node token
    const doc = await node.api('GET', '/openapi.json');
    expect(doc.status).toBe(200);
    expect(doc.body.paths['/api/servers/{server}/ws'].get.security).toEqual([]);
  });

  it('checks the origin exactly: remote and allowed_origins pass, others and a missing Origin are refused', async () => {
    for (const headers of [{}, { Origin: 'http://evil.test' }, { Origin: `${ORIGIN}/` }] as Record<string, string>[]) {
      const err = await Client.open(wsUrl(uuid), headers).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(HandshakeError);
      expect((err as HandshakeError).status).toBe(403);
    }
    const fromPanel = await Client.open(wsUrl(uuid), { Origin: tp.panel.publicUrl });
    const allowed = await connect();
    expect(allowed.upgradeHeaders['x-frame-options']).toBe('DENY');
    expect(allowed.upgradeHeaders['sec-websocket-extensions']).toContain('permessage-deflate');
    fromPanel.close();
    allowed.close();
  });

  it('authenticates: auth success, status, then stats while offline; re-auth sends only auth success', async () => {
    const c = await connect();
    c.send('auth', await token(uuid));
    const stats = await c.expectEvent('stats');
    expect(c.events()).toEqual(['auth success', 'status', 'stats']);
    expect(c.messages[0]).toEqual({ event: 'auth success' });
    expect(c.messages[1]).toEqual({ event: 'status', args: ['offline'] });
    const parsed = JSON.parse(stats.args![0]);
    expect(parsed.state).toBe('offline');
    expect(Object.keys(parsed).sort()).toEqual(
      ['cpu_absolute', 'disk_bytes', 'memory_bytes', 'memory_limit_bytes', 'network', 'state', 'uptime'],
    );
    const m = c.mark();
    c.send('auth', await token(uuid));
    await c.expectEvent('auth success', { from: m });
    await sleep(300);
    expect(c.events(m)).toEqual(['auth success']);
    c.close();
    // an invalid re-auth leaves the old token in place
    const d = await authed();
    const dm = d.mark();
    d.send('auth', 'garbage.token.here');
    await d.expectEvent('daemon error', { from: dm });
    d.send('send stats');
    await d.expectEvent('stats', { from: dm });
    // auth is limited to a burst of 2 per 5 s
    d.send('auth', await token(uuid));
    await d.expectEvent('throttled', { from: dm, pred: (x) => x.args?.[0] === 'auth' });
    d.close();
  });

  it('refuses bad tokens with the Wings error texts', async () => {
    const cases: [string, string, RegExp][] = [
      [await forge({}, 'not-the-node-token'), 'daemon error', /^Error Event \[[0-9a-f-]{36}\]: an unexpected error was encountered while handling this request$/],
      ['not a jwt', 'daemon error', /an unexpected error was encountered/],
      [await token(uuid, { expires_in: -30 }), 'jwt error', /^Error Event \[[0-9a-f-]{36}\]: jwt: exp claim is invalid$/],
      [await forge({ exp: undefined }), 'jwt error', /jwt: exp claim is invalid$/],
      [await token(uuid2), 'jwt error', /jwt: server uuid mismatch$/],
      [await token(uuid, { permissions: ['control.console'] }), 'jwt error', /jwt: missing connect permission$/],
      [await token(uuid, { scope: 'files' }), 'jwt error', /jwt: missing connect permission$/],
      [await forge({ iat: Math.floor(Date.now() / 1000) - 3600 }), 'jwt error', /jwt: created too far in past \(denylist\)$/],
      [await forge({ iat: undefined }), 'jwt error', /jwt: created too far in past \(denylist\)$/],
      [
        await new SignJWT({ permissions: ['*'], server_uuid: uuid, exp: Math.floor(Date.now() / 1000) + 60 })
          .setProtectedHeader({ alg: 'HS512' })
          .sign(new TextEncoder().encode(node.token)),
        'daemon error',
        /an unexpected error/,
      ],
    ];
    for (const [tok, event, text] of cases) {
      const c = await connect();
      c.send('auth', tok);
      const msg = await c.expectEvent(event);
      expect(msg.args?.[0], `${event} for ${tok.slice(0, 20)}`).toMatch(text);
      expect(c.find('auth success')).toBeUndefined();
      // not authenticated: other events answer the raw jwt error
      c.send('send stats');
      const raw = await c.expectEvent('jwt error', { pred: (x) => x.args?.[0] === 'jwt: no jwt present' });
      expect(raw.args).toEqual(['jwt: no jwt present']);
      c.close();
    }
    // accepted variants: scope listing websocket, nbf in the future (not checked by Wings)
    for (const tok of [await token(uuid, { scope: 'websocket files' }), await forge({ nbf: Math.floor(Date.now() / 1000) + 3600 })]) {
      const c = await connect();
      c.send('auth', tok);
      await c.expectEvent('auth success');
      c.close();
    }
  });

  it('hides daemon error details unless the token has admin.websocket.errors', async () => {
    const admin = await authed();
    const owner = await authed(uuid, { permissions: ['*'] });
    admin.send('set state', 'explode');
    owner.send('set state', 'explode');
    expect((await admin.expectEvent('daemon error')).args![0]).toMatch(
      /^Error Event \[[0-9a-f-]{36}\]: attempting to handle unknown power action$/,
    );
    expect((await owner.expectEvent('daemon error')).args![0]).toMatch(/: an unexpected error was encountered while handling this request$/);
    admin.close();
    owner.close();
  });

  it('deny-lists jtis via /ws/deny, including tokens of the same second', async () => {
    const user = { user_id: 4242, user_uuid: 'user-deny' };
    const c = await authed(uuid, { ...user, permissions: ['*'] });
    const bystander = await authed(uuid, { user_id: 1, user_uuid: 'user-other', permissions: ['*'] });
    const jti = md5(`${user.user_id}${uuid}`);
    // the second in which the denial happens, or the one before it: taken before the request
    const denySecond = Math.floor(Date.now() / 1000);
    const r = await node.api('POST', `/api/servers/${uuid}/ws/deny`, { jtis: [jti] });
    expect(r.status).toBe(204);
    const m = c.mark();
    c.send('send stats');
    expect((await c.expectEvent('jwt error', { from: m })).args).toEqual(['jwt: created too far in past (denylist)']);
    expect(c.ws.readyState).toBe(WebSocket.OPEN);
    // the bystander keeps working
    const b = bystander.mark();
    bystander.send('send stats');
    await bystander.expectEvent('stats', { from: b });
    // a token issued in the second of the denial (iat has whole-second precision) is refused too
    const fresh = await connect();
    fresh.send('auth', await forge({ jti, user_uuid: user.user_uuid, iat: denySecond }));
    expect((await fresh.expectEvent('jwt error')).args![0]).toMatch(/denylist\)$/);
    // one second later a new token works
    await sleep(1100);
    const later = await connect();
    later.send('auth', await token(uuid, { ...user, permissions: ['*'] }));
    await later.expectEvent('auth success');
    for (const x of [c, bystander, fresh, later]) x.close();
  });

  it('deauthorizes a user: their sockets are closed and their tokens refused, others keep working', async () => {
    const victim = await authed(uuid, { user_uuid: 'user-victim', user_id: 9, permissions: ['*'] });
    const otherServer = await authed(uuid2, { user_uuid: 'user-victim', user_id: 9, permissions: ['*'] });
    const bystander = await authed(uuid, { user_uuid: 'user-bystander', user_id: 10, permissions: ['*'] });
    // The denial covers tokens issued in or before its second. A token minted after the answer
    // can fall in the next second on a loaded machine (it did), so the refused token carries the
    // second taken before the request.
    const denySecond = Math.floor(Date.now() / 1000);
    const r = await node.api('POST', '/api/deauthorize-user', { user: 'user-victim', servers: [uuid] });
    expect(r.status).toBe(204);
    const closed = await victim.closed;
    expect(closed.code).toBe(1006);
    const fresh = await connect();
    fresh.send('auth', await forge({ user_uuid: 'user-victim', iat: denySecond }));
    expect((await fresh.expectEvent('jwt error')).args![0]).toMatch(/denylist\)$/);
    for (const c of [bystander, otherServer]) {
      const m = c.mark();
      c.send('send stats');
      await c.expectEvent('stats', { from: m });
    }
    for (const c of [fresh, bystander, otherServer]) c.close();
  });

  it('runs power actions only with the matching permission, forwards commands and their console output', async () => {
    const viewer = await authed(uuid, { permissions: ['websocket.connect'] });
    viewer.send('set state', 'start');
    viewer.send('send command', 'ignored');
    await sleep(500);
    expect((await node.api('GET', `/api/servers/${uuid}`)).body.state).toBe('offline');

    const op = await authed(uuid, { permissions: ['websocket.connect', 'control.start', 'control.console', 'control.stop'] });
    // offline: commands are ignored silently
    op.send('send command', 'before start');
    const m = op.mark();
    op.send('set state', 'start');
    await op.expectEvent('status', { from: m, pred: (x) => x.args?.[0] === 'running' });
    await viewer.expectEvent('status', { pred: (x) => x.args?.[0] === 'running' });
    op.send('send command', 'hello world');
    await op.expectEvent('console output', { pred: (x) => x.args?.[0] === 'got hello world' });
    await viewer.expectEvent('console output', { pred: (x) => x.args?.[0] === 'got hello world' });
    expect(op.find('console output', 0, (x) => x.args?.[0] === 'got before start')).toBeUndefined();
    expect(viewer.find('console output', 0, (x) => x.args?.[0] === 'got ignored')).toBeUndefined();
    // stats arrive while running
    await op.expectEvent('stats', { pred: (x) => JSON.parse(x.args![0]).state === 'running' });

    // send logs replays the history, oldest first
    const logs = await authed(uuid, { permissions: ['websocket.connect'] });
    const lm = logs.mark();
    logs.send('send logs', null);
    await logs.expectEvent('console output', { from: lm, pred: (x) => x.args?.[0] === 'got hello world' });
    const lines = logs.messages.slice(lm).filter((x) => x.event === 'console output').map((x) => x.args![0]);
    expect(lines.indexOf('server starting')).toBeLessThan(lines.indexOf('got hello world'));

    // starting again fails: details only for admins
    const admin = await authed();
    admin.send('set state', 'start');
    expect((await admin.expectEvent('daemon error')).args![0]).toMatch(/: server is running$/);

    const sm = op.mark();
    op.send('set state', 'stop');
    await op.expectEvent('status', { from: sm, pred: (x) => x.args?.[0] === 'offline' });
    // offline: send logs answers nothing
    const om = logs.mark();
    logs.send('send logs');
    await sleep(400);
    expect(logs.find('console output', om)).toBeUndefined();
    for (const c of [viewer, op, logs, admin]) c.close();
  });

  it('gates install output to admin.websocket.install', async () => {
    const s = await tp.panel.admin.createServer({
      node_id: node.id,
      ...ECHO,
      skip_egg_scripts: false,
      install: { script: '#!/bin/sh\necho "installing now"\necho "more install"\n' },
    });
    await waitFor(async () => (await tp.panel.admin.getServer(s.uuid)).status === null, { what: 'install done' });
    const admin = await authed(s.uuid);
    const owner = await authed(s.uuid, { permissions: ['*'] });
    const r = await node.api('POST', `/api/servers/${s.uuid}/install`);
    expect(r.status).toBe(202);
    await admin.expectEvent('install output', { pred: (x) => x.args?.[0] === 'installing now' });
    await owner.expectEvent('install completed');
    await admin.expectEvent('install completed');
    expect(owner.find('install started')).toEqual({ event: 'install started', args: [''] });
    expect(owner.find('install output')).toBeUndefined();
    admin.close();
    owner.close();
  });

  it('closes frames larger than 4096 bytes with 1009, ignores binary frames and garbage', async () => {
    const c = await authed();
    const bystander = await authed();
    const m = c.mark();
    c.ws.send(Buffer.from(JSON.stringify({ event: 'send stats' })), { binary: true });
    for (const junk of ['{nope', '[]', '"x"', '{"event":5}', '{"event":"send stats","args":[1]}', '{"event":"what"}', '\u0000\u0001']) {
      c.ws.send(junk);
    }
    await sleep(400);
    expect(c.events(m)).toEqual([]);
    c.send('send stats');
    await c.expectEvent('stats', { from: m });
    c.ws.send(JSON.stringify({ event: 'send command', args: ['x'.repeat(5000)] }));
    const closed = await c.closed;
    expect(closed.code).toBe(1009);
    const b = bystander.mark();
    bystander.send('send stats');
    await bystander.expectEvent('stats', { from: b });
    bystander.close();
  });

  it('throttles floods with throttled events and keeps the socket open', async () => {
    const c = await authed();
    const m = c.mark();
    for (let i = 0; i < 25; i++) c.send('send stats');
    await c.expectEvent('throttled', { from: m, pred: (x) => x.args?.[0] === 'global' });
    await c.expectEvent('throttled', { from: m, pred: (x) => x.args?.[0] === 'send stats' });
    expect(c.messages.slice(m).filter((x) => x.event === 'throttled' && x.args?.[0] === 'global')).toHaveLength(1);
    expect(c.messages.slice(m).filter((x) => x.event === 'stats').length).toBeLessThanOrEqual(5);
    const d = await authed();
    const dm = d.mark();
    for (let i = 0; i < 3; i++) d.send('send logs');
    await d.expectEvent('throttled', { from: dm, pred: (x) => x.args?.[0] === 'send logs' });
    await sleep(1200);
    const after = c.mark();
    c.send('send stats');
    await c.expectEvent('stats', { from: after });
    c.close();
    d.close();
  });

  it('caps a server at 30 sockets and closes sockets that never authenticate', async () => {
    const opened: Client[] = [];
    while (opened.length < 30) opened.push(await connect(uuid2));
    const err = await Client.open(wsUrl(uuid2)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HandshakeError);
    expect((err as HandshakeError).status).toBe(400);
    expect(JSON.parse((err as HandshakeError).body)).toEqual({ error: 'Too many open websocket connections.' });
    // the other server is not affected
    const fine = await connect(uuid);
    fine.close();
    // unauthenticated sockets are closed after the auth timeout (4 s in this test)
    const codes = await Promise.all(opened.map((c) => c.closed));
    expect(codes.every((c) => c.code === 1006)).toBe(true);
    const again = await connect(uuid2);
    again.close();
  });

  it('warns about expiring tokens and replaces events with jwt errors once expired', async () => {
    const c = await authed(uuid, { expires_in: 2 });
    await c.expectEvent('token expiring');
    await c.expectEvent('jwt error', { pred: (x) => x.args?.[0] === 'jwt: exp claim is invalid', timeoutMs: 6000 });
    const m = c.mark();
    c.send('auth', await token(uuid));
    await c.expectEvent('auth success', { from: m });
    c.send('send stats');
    await c.expectEvent('stats', { from: m });
    c.close();
  });

  it('closes sockets of a suspended server with 4409', async () => {
    const s = await tp.panel.admin.createServer({ node_id: node.id, ...ECHO, suspended: true });
    const c = await connect(s.uuid);
    const closed = await c.closed;
    expect(closed).toEqual({ code: 4409, reason: 'server is suspended' });
  });

  it('sends deleted as the last event and closes with 1001 when the server is deleted', async () => {
    const s = await tp.panel.admin.createServer({ node_id: node.id, ...ECHO });
    const c = await authed(s.uuid, { permissions: ['*'] });
    const idle = await connect(s.uuid);
    const r = await node.api('DELETE', `/api/servers/${s.uuid}`);
    expect(r.status).toBe(204);
    expect(await c.closed).toEqual({ code: 1001, reason: 'server deleted' });
    expect(c.messages.at(-1)).toEqual({ event: 'deleted', args: ['null'] });
    expect((await idle.closed).code).toBe(1001);
  });

  it('publishes transfer events: status to every socket, logs and progress only to admin.websocket.transfer', async () => {
    const s = await tp.panel.admin.createServer({ node_id: node.id, ...ECHO });
    // the daemon answers the create before it has made the directory (failed once under load)
    await waitFor(() => fs.existsSync(node.serverDir(s.uuid)), { what: 'server directory' });
    fs.writeFileSync(path.join(node.serverDir(s.uuid), 'big.bin'), randomBytes(3 * 1024 * 1024));
    const admin = await authed(s.uuid);
    const owner = await authed(s.uuid, { permissions: ['*'] });
    const viewer = await authed(s.uuid, { permissions: ['websocket.connect'] });
    await tp.panel.admin.startTransfer(s.uuid, { node_id: other.id });
    // a socket that authenticates during the transfer learns its state first
    const late = await connect(s.uuid);
    late.send('auth', await token(s.uuid));
    const lateStatus = await late.expectEvent('transfer.status');
    expect(['pending', 'processing']).toContain(lateStatus.args![0]);
    expect(late.events().slice(0, 3)).toEqual(['auth success', 'status', 'transfer.status']);
    // power actions are refused while transferring
    admin.send('set state', 'start');
    expect((await admin.expectEvent('daemon error')).args![0]).toMatch(/server is currently being transferred$/);

    for (const c of [admin, owner, viewer]) {
      await c.expectEvent('transfer.status', { pred: (x) => x.args?.[0] === 'processing' });
      await c.expectEvent('transfer status', { pred: (x) => x.args?.[0] === 'processing' });
    }
    await admin.expectEvent('transfer.logs');
    await admin.expectEvent('transfer logs');
    await admin.expectEvent('transfer.progress', { timeoutMs: 15_000 });
    // the Panel deletes the source server after success: completed, deleted, close 1001
    for (const c of [admin, owner, viewer]) {
      expect(await c.closed).toEqual({ code: 1001, reason: 'server deleted' });
      expect(c.find('transfer status', 0, (x) => x.args?.[0] === 'completed')).toBeDefined();
      expect(c.messages.at(-1)).toEqual({ event: 'deleted', args: ['null'] });
    }
    for (const c of [owner, viewer]) {
      for (const gated of ['transfer.logs', 'transfer logs', 'transfer.progress']) expect(c.find(gated)).toBeUndefined();
    }
    // the destination serves the server's socket now
    await waitFor(async () => (await other.api('GET', `/api/servers/${s.uuid}`)).status === 200, { what: 'server on B' });
    const onB = await Client.open(wsUrl(s.uuid, other));
    onB.send('auth', (await tp.panel.admin.websocketToken(s.uuid, {})).data.token);
    await onB.expectEvent('status');
    onB.close();
  });

  it('still serves other sockets after all of the above', async () => {
    const c = await authed();
    c.send('send stats');
    await c.expectEvent('stats');
    c.close();
  });
});
