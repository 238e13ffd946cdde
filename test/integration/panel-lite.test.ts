import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import Fastify, { type FastifyInstance } from 'fastify';
import { decodeProtectedHeader, jwtVerify } from 'jose';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { ConfigSchema } from '../../src/config/schema.js';
import {
  PanelLiteAdminError,
  signNodeJwt,
  startPanelLite,
  startPanelLiteFromFile,
  type NodeView,
  type PanelLite,
} from '../../tools/panel-lite/index.js';

const ADMIN_TOKEN = 'admin-secret-token';

interface Recorded {
  method: string;
  url: string;
  authorization: string | undefined;
  body: unknown;
  at: number;
}

type Answer = { status: number; body?: unknown; delayMs?: number };

/** A tiny fake Wings node that records every request and answers from a table. */
class FakeNode {
  app: FastifyInstance;
  requests: Recorded[] = [];
  answers = new Map<string, Answer>();
  url = '';

  constructor() {
    this.app = Fastify({ logger: false });
    this.app.removeAllContentTypeParsers();
    this.app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => {
      const t = String(body);
      try {
        done(null, t ? JSON.parse(t) : null);
      } catch {
        done(null, t);
      }
    });
    this.app.all('/*', async (req, reply) => {
      const rec: Recorded = {
        method: req.method,
        url: req.url,
        authorization: req.headers.authorization,
        body: req.body ?? null,
        at: performance.now(),
      };
      this.requests.push(rec);
      const key = `${req.method} ${req.url.split('?')[0]}`;
      const a = this.answers.get(key) ?? { status: req.method === 'POST' ? 202 : 204 };
      if (a.delayMs) await sleep(a.delayMs);
      if (a.body === undefined) return reply.code(a.status).send();
      return reply.code(a.status).send(a.body);
    });
  }

  async start(): Promise<this> {
    await this.app.listen({ host: '127.0.0.1', port: 0 });
    this.url = `http://127.0.0.1:${(this.app.server.address() as AddressInfo).port}`;
    return this;
  }

  find(method: string, url: string): Recorded[] {
    return this.requests.filter((r) => r.method === method && r.url === url);
  }
}

async function remote(
  panel: PanelLite,
  method: 'GET' | 'POST',
  p: string,
  auth: string | null,
  body: unknown = method === 'POST' ? null : undefined,
): Promise<{ status: number; headers: Record<string, unknown>; body: any; ms: number; doneAt: number }> {
  const t0 = performance.now();
  const headers: Record<string, string> = {
    accept: 'application/vnd.pterodactyl.v1+json',
    'content-type': 'application/json',
  };
  if (auth !== null) headers.authorization = auth;
  const res = await request(`${panel.url}/api/remote${p}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.body.text();
  const doneAt = performance.now();
  return {
    status: res.statusCode,
    headers: res.headers,
    body: text ? JSON.parse(text) : null,
    ms: doneAt - t0,
    doneAt,
  };
}

const bearer = (n: NodeView) => `Bearer ${n.token_id}.${n.token}`;
const envelope = (code: string, status: number, detail: string) => ({
  errors: [{ code, status: String(status), detail }],
});

describe('panel-lite', () => {
  let dir: string;
  let panel: PanelLite;
  let fakeA: FakeNode;
  let fakeB: FakeNode;
  let nodeA: NodeView;
  let nodeB: NodeView;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'panel-lite-'));
    fakeA = await new FakeNode().start();
    fakeB = await new FakeNode().start();
    panel = await startPanelLite({ port: 0, adminPort: 0, dataDirectory: dir, adminToken: ADMIN_TOKEN });
    nodeA = await panel.admin.createNode({ name: 'a', url: fakeA.url, data_root: path.join(dir, 'node-a') });
    nodeB = await panel.admin.createNode({ name: 'b', url: fakeB.url });
  });

  afterAll(async () => {
    await panel?.close();
    await fakeA?.app.close();
    await fakeB?.app.close();
    await rm(dir, { recursive: true, force: true });
  });

  beforeEach(() => {
    fakeA.requests = [];
    fakeB.requests = [];
    fakeA.answers.clear();
    fakeB.answers.clear();
  });
  afterEach(async () => {
    await panel.admin.clearFaults();
  });

  it('creates nodes with dot-free credentials and a config.yml that wings-ts accepts', async () => {
    expect(nodeA.id).toBe(1);
    expect(nodeA.token_id).toMatch(/^[A-Za-z0-9]{16}$/);
    expect(nodeA.token).toMatch(/^[A-Za-z0-9]{64}$/);
    expect(nodeA.uuid).toMatch(/^[0-9a-f-]{36}$/);
    const cfg = ConfigSchema.parse(parseYaml(nodeA.config));
    expect(cfg.uuid).toBe(nodeA.uuid);
    expect(cfg.token_id).toBe(nodeA.token_id);
    expect(cfg.token).toBe(nodeA.token);
    expect(cfg.remote).toBe(panel.publicUrl);
    expect(cfg.api.host).toBe('127.0.0.1');
    expect(cfg.api.port).toBe(Number(new URL(fakeA.url).port));
    const root = path.join(dir, 'node-a');
    expect(cfg.system.root_directory).toBe(root);
    expect(cfg.system.data).toBe(path.join(root, 'volumes'));
    expect(cfg.system.log_directory).toBe(path.join(root, 'logs'));
    expect(cfg.system.archive_directory).toBe(path.join(root, 'archives'));
    expect(cfg.system.backup_directory).toBe(path.join(root, 'backups'));
    expect(cfg.system.tmp_directory).toBe(path.join(root, 'tmp'));
    expect((await panel.admin.listNodes()).map((n) => n.id)).toEqual([1, 2]);
  });

  it('refuses admin calls without the admin token', async () => {
    const res = await request(`${panel.adminUrl}/admin/api/nodes`, { headers: { authorization: 'Bearer nope' } });
    expect(res.statusCode).toBe(401);
    await res.body.dump();
  });

  it('answers every DaemonAuthenticate case like the Panel', async () => {
    const missing = await remote(panel, 'GET', '/servers', null);
    expect(missing.status).toBe(401);
    expect(missing.headers['www-authenticate']).toBe('Bearer');
    expect(missing.body).toEqual(
      envelope('HttpException', 401, 'Access to this endpoint must include an Authorization header.'),
    );
    expect((await remote(panel, 'GET', '/servers', `Basic ${nodeA.token}`)).status).toBe(401);
    // a bare "Bearer " reaches the server trimmed to "Bearer": no bearer token at all
    expect((await remote(panel, 'GET', '/servers', 'Bearer ')).status).toBe(401);

    const badFormat = envelope('BadRequestHttpException', 400, 'The Authorization header provided was not in a valid format.');
    for (const v of ['abc', `.${nodeA.token}`, `${nodeA.token_id}.`, 'a.b.c', `0.${nodeA.token}`]) {
      const r = await remote(panel, 'GET', '/servers', `Bearer ${v}`);
      expect(r.status, v).toBe(400);
      expect(r.body).toEqual(badFormat);
    }
    const denied = envelope('AccessDeniedHttpException', 403, 'You are not authorized to access this resource.');
    for (const v of [`unknownid.${nodeA.token}`, `${nodeA.token_id}.${nodeB.token}`, `${nodeA.token_id}.${nodeA.token}x`]) {
      const r = await remote(panel, 'GET', '/servers', `Bearer ${v}`);
      expect(r.status).toBe(403);
      expect(r.body).toEqual(denied);
    }
    expect((await remote(panel, 'GET', '/servers', bearer(nodeA))).status).toBe(200);
    const calls = panel.calls(/^\/api\/remote\/servers$/);
    expect(calls.at(-1)).toMatchObject({ method: 'GET', node_id: nodeA.id, status: 200 });
    expect(calls.some((c) => c.status === 403 && c.node_id === null)).toBe(true);
  });

  describe('server list and details', () => {
    let node3: NodeView;
    beforeAll(async () => {
      node3 = await panel.admin.createNode({ name: 'bulk', url: 'http://127.0.0.1:1' });
      for (let i = 0; i < 120; i++) {
        await panel.admin.createServer({ node_id: node3.id, invocation: 'echo', create_on_node: false, name: `s${i}` });
      }
    });

    it('paginates like Laravel across 3 pages', async () => {
      const p0 = await remote(panel, 'GET', '/servers?page=0&per_page=50', bearer(node3));
      expect(p0.status).toBe(200);
      expect(p0.body.meta).toMatchObject({ current_page: 1, from: 1, to: 50, last_page: 3, per_page: 50, total: 120 });
      expect(p0.body.meta.path).toBe(`${panel.publicUrl}/api/remote/servers`);
      expect(Array.isArray(p0.body.meta.links)).toBe(true);
      expect(p0.body.links).toEqual({
        first: `${panel.publicUrl}/api/remote/servers?page=1`,
        last: `${panel.publicUrl}/api/remote/servers?page=3`,
        prev: null,
        next: `${panel.publicUrl}/api/remote/servers?page=2`,
      });
      const p2 = await remote(panel, 'GET', '/servers?page=2&per_page=50', bearer(node3));
      const p3 = await remote(panel, 'GET', '/servers?page=3&per_page=50', bearer(node3));
      expect(p2.body.meta).toMatchObject({ current_page: 2, from: 51, to: 100 });
      expect(p3.body.meta).toMatchObject({ current_page: 3, from: 101, to: 120, last_page: 3 });
      expect(p3.body.links.next).toBeNull();
      const uuids = [...p0.body.data, ...p2.body.data, ...p3.body.data].map((d: any) => d.uuid);
      expect(new Set(uuids).size).toBe(120);
      expect(p3.body.data).toHaveLength(20);
      const entry = p0.body.data[0];
      expect(Object.keys(entry)).toEqual(['uuid', 'settings', 'process_configuration']);
      expect(entry.settings.meta.name).toBe('s0');

      const beyond = await remote(panel, 'GET', '/servers?page=9&per_page=50', bearer(node3));
      expect(beyond.body.data).toEqual([]);
      expect(beyond.body.meta).toMatchObject({ current_page: 9, from: null, to: null, total: 120 });
      // Only the authenticated node's servers.
      const other = await remote(panel, 'GET', '/servers?page=0&per_page=50', bearer(nodeB));
      expect(other.body.meta).toMatchObject({ total: 0, last_page: 1, from: null, to: null });
    });

    it('serves server details, install script and records install reports', async () => {
      const s = await panel.admin.createServer({
        node_id: node3.id,
        invocation: 'java -jar server.jar',
        create_on_node: false,
        image: 'img:1',
        environment: { FOO: 'bar' },
        build: { memory_limit: 1024, disk_space: 5120 },
        startup_done: ['Done'],
        stop: { type: 'signal', value: 'SIGTERM' },
        install: { script: '#!/bin/sh\necho hi' },
      });
      const d = await remote(panel, 'GET', `/servers/${s.uuid}`, bearer(nodeA)); // no ownership check in 1.11
      expect(d.status).toBe(200);
      expect(Object.keys(d.body)).toEqual(['settings', 'process_configuration']);
      const st = d.body.settings;
      expect(st.uuid).toBe(s.uuid);
      expect(st.invocation).toBe('java -jar server.jar');
      expect(st.environment).toMatchObject({
        FOO: 'bar',
        STARTUP: 'java -jar server.jar',
        P_SERVER_UUID: s.uuid,
        SERVER_MEMORY: 1024,
        SERVER_PORT: s.allocation.port,
      });
      expect(st.build).toEqual({
        memory_limit: 1024,
        swap: 0,
        io_weight: 500,
        cpu_limit: 0,
        threads: null,
        disk_space: 5120,
        oom_disabled: true,
      });
      expect(st.container).toEqual({ image: 'img:1', oom_disabled: true, requires_rebuild: false });
      expect(st.allocations.default).toEqual(s.allocation);
      expect(st.allocations.mappings).toEqual({ [s.allocation.ip]: [s.allocation.port] });
      expect(d.body.process_configuration).toEqual({
        startup: { done: ['Done'], user_interaction: [], strip_ansi: false },
        stop: { type: 'signal', value: 'SIGTERM' },
        configs: [],
      });

      const nf = await remote(panel, 'GET', '/servers/8a6f5b1e-0000-4000-8000-000000000000', bearer(nodeA));
      expect(nf.status).toBe(404);
      expect(nf.body.errors[0].status).toBe('404');

      const inst = await remote(panel, 'GET', `/servers/${s.uuid}/install`, bearer(node3));
      expect(inst.body).toEqual({
        container_image: 'ghcr.io/pterodactyl/installers:debian',
        entrypoint: 'bash',
        script: '#!/bin/sh\necho hi',
      });
      const bad = await remote(panel, 'POST', `/servers/${s.uuid}/install`, bearer(node3), { reinstall: false });
      expect(bad.status).toBe(422);
      expect(bad.body.errors[0]).toMatchObject({ code: 'ValidationException', status: '422' });
      const bad2 = await remote(panel, 'POST', `/servers/${s.uuid}/install`, bearer(node3), null);
      expect(bad2.status).toBe(422);
      const ok = await remote(panel, 'POST', `/servers/${s.uuid}/install`, bearer(node3), {
        successful: false,
        reinstall: true,
      });
      expect(ok.status).toBe(204);
      expect(panel.server(s.uuid)?.status).toBe('reinstall_failed');
      expect(panel.server(s.uuid)?.install_reports).toMatchObject([{ successful: false, reinstall: true }]);

      expect((await remote(panel, 'POST', '/servers/reset', bearer(node3))).status).toBe(204);
      expect((await remote(panel, 'POST', '/activity', bearer(node3), { data: [] })).status).toBe(200);
    });
  });

  describe('transfers', () => {
    let uuid: string;

    beforeAll(async () => {
      fakeA.requests = [];
      const s = await panel.admin.createServer({ node_id: nodeA.id, invocation: 'run', start_on_completion: true });
      uuid = s.uuid;
      expect(s.uuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      const create = fakeA.find('POST', '/api/servers');
      expect(create).toHaveLength(1);
      expect(create[0].body).toEqual({ uuid, start_on_completion: true });
      expect(create[0].authorization).toBe(`Bearer ${nodeA.token}`);
    });

    it('rolls back when the source refuses, and when it is unreachable', async () => {
      fakeA.answers.set(`POST /api/servers/${uuid}/transfer`, {
        status: 409,
        body: { error: 'A transfer is already in progress for this server.' },
      });
      const err = await panel.admin.startTransfer(uuid, { node_id: nodeB.id }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PanelLiteAdminError);
      expect((err as PanelLiteAdminError).status).toBe(502);
      expect((err as PanelLiteAdminError).body).toMatchObject({
        node_status: 409,
        node_body: { error: 'A transfer is already in progress for this server.' },
      });
      expect(panel.transfers(uuid)).toEqual([]);

      const dead = await panel.admin.createNode({ name: 'dead', url: 'http://127.0.0.1:1' });
      const s2 = await panel.admin.createServer({ node_id: dead.id, invocation: 'x', create_on_node: false });
      const e2 = await panel.admin.startTransfer(s2.uuid, { node_id: nodeB.id }).catch((e: unknown) => e);
      expect((e2 as PanelLiteAdminError).status).toBe(502);
      expect((e2 as PanelLiteAdminError).body).toMatchObject({ node_status: 0 });
      expect(panel.transfers(s2.uuid)).toEqual([]);
    });

    it('starts a transfer as the Panel does, and success deletes on the old node before answering', async () => {
      const t = await panel.admin.startTransfer(uuid, { node_id: nodeB.id });
      expect(t).toMatchObject({ server_uuid: uuid, old_node: nodeA.id, new_node: nodeB.id, successful: null });

      const sent = fakeA.find('POST', `/api/servers/${uuid}/transfer`);
      expect(sent).toHaveLength(1);
      expect(sent[0].authorization).toBe(`Bearer ${nodeA.token}`);
      const body = sent[0].body as any;
      expect(Object.keys(body)).toEqual(['server_id', 'url', 'token', 'server']);
      expect(body.server_id).toBe(uuid);
      expect(body.url).toBe(`${fakeB.url}/api/transfers`);
      expect(body.server).toEqual({ uuid, start_on_completion: false });
      expect(body.token).toMatch(/^Bearer /);
      const jwt = (body.token as string).slice(7);

      const { payload, protectedHeader } = await jwtVerify(jwt, new TextEncoder().encode(nodeB.token), {
        issuer: panel.publicUrl,
        audience: fakeB.url,
        algorithms: ['HS256'],
      });
      const jti = createHash('sha256').update(uuid).digest('hex');
      expect(protectedHeader).toEqual({ typ: 'JWT', alg: 'HS256', jti, sub: uuid });
      expect(Array.isArray(payload.aud)).toBe(true);
      expect(payload.aud).toEqual([fakeB.url]);
      expect(payload.jti).toBe(jti);
      expect(payload.sub).toBe(uuid);
      expect(payload.nbf).toBe(payload.iat! - 300);
      expect(payload.exp).toBe(payload.iat! + 900);
      expect(Number.isInteger(payload.iat)).toBe(true);
      expect(payload.unique_id).toMatch(/^[A-Za-z0-9]{16}$/);
      expect(payload.scope).toBeUndefined();
      expect(Object.keys(payload)).toEqual(['iss', 'aud', 'jti', 'iat', 'nbf', 'exp', 'sub', 'unique_id']);
      await expect(jwtVerify(jwt, new TextEncoder().encode(nodeA.token))).rejects.toThrow();

      // a second start while pending is refused
      await expect(panel.admin.startTransfer(uuid, { node_id: nodeB.id })).rejects.toMatchObject({ status: 409 });
      // while pending, only the source lists it
      const listA = await remote(panel, 'GET', '/servers?page=0&per_page=50', bearer(nodeA));
      const listB = await remote(panel, 'GET', '/servers?page=0&per_page=50', bearer(nodeB));
      expect(listA.body.data.map((d: any) => d.uuid)).toContain(uuid);
      expect(listB.body.data.map((d: any) => d.uuid)).not.toContain(uuid);

      // success: the old node receives DELETE (slowly) before the destination gets its 204
      fakeA.answers.set(`DELETE /api/servers/${uuid}`, { status: 204, delayMs: 300 });
      const ok = await remote(panel, 'POST', `/servers/${uuid}/transfer/success`, bearer(nodeB));
      expect(ok.status).toBe(204);
      expect(ok.ms).toBeGreaterThanOrEqual(290);
      const del = fakeA.find('DELETE', `/api/servers/${uuid}`);
      expect(del).toHaveLength(1);
      expect(del[0].authorization).toBe(`Bearer ${nodeA.token}`);
      expect(del[0].at).toBeLessThan(ok.doneAt);
      expect(fakeB.requests).toEqual([]);

      const conflict = envelope('ConflictHttpException', 409, 'Server is not being transferred.');
      for (const kind of ['success', 'failure']) {
        const again = await remote(panel, 'POST', `/servers/${uuid}/transfer/${kind}`, bearer(nodeB));
        expect(again.status).toBe(409);
        expect(again.body).toEqual(conflict);
      }
      expect((await panel.admin.getTransfer(uuid)).successful).toBe(true);
      expect(panel.server(uuid)?.node_id).toBe(nodeB.id);
      const listB2 = await remote(panel, 'GET', '/servers?page=0&per_page=50', bearer(nodeB));
      expect(listB2.body.data.map((d: any) => d.uuid)).toContain(uuid);

      const nf = await remote(panel, 'POST', '/servers/0e4c7a52-1111-4111-8111-111111111111/transfer/success', bearer(nodeB));
      expect(nf.status).toBe(404);
    });

    it('failure marks the transfer unsuccessful (GET accepted) and contacts no node', async () => {
      await panel.admin.startTransfer(uuid, { node_id: nodeA.id }); // back from B to A
      expect(fakeB.find('POST', `/api/servers/${uuid}/transfer`)).toHaveLength(1);
      fakeA.requests = [];
      const r = await remote(panel, 'GET', `/servers/${uuid}/transfer/failure`, bearer(nodeA));
      expect(r.status).toBe(204);
      expect(fakeA.requests).toEqual([]);
      const again = await remote(panel, 'POST', `/servers/${uuid}/transfer/failure`, bearer(nodeB));
      expect(again.status).toBe(409);
      expect(again.body).toEqual(envelope('ConflictHttpException', 409, 'Server is not being transferred.'));
      const rows = (await panel.admin.listTransfers()).filter((t) => t.server_uuid === uuid);
      expect(rows.map((t) => t.successful)).toEqual([true, false]);
      expect(panel.server(uuid)?.node_id).toBe(nodeB.id);
      await panel.waitForCall('/transfer/failure$', { filter: (c) => c.status === 409, timeoutMs: 1000 });
      await panel.admin.waitForCall({ path: '/transfer/failure$', method: 'GET', status: 204 }, 1000);
      const failures = await panel.admin.calls({ path: '/transfer/failure$' });
      expect(failures.slice(-2).map((c) => [c.method, c.status])).toEqual([
        ['GET', 204],
        ['POST', 409],
      ]);
    });

    it('forwards cancels to the source or destination node', async () => {
      fakeB.answers.set(`DELETE /api/servers/${uuid}/transfer`, {
        status: 409,
        body: { error: 'Server is not currently being transferred.' },
      });
      const src = await panel.admin.cancelTransfer(uuid, 'source');
      expect(src).toEqual({ status: 409, body: { error: 'Server is not currently being transferred.' } });
      fakeA.answers.set(`DELETE /api/transfers/${uuid}`, { status: 202 });
      const dst = await panel.admin.cancelTransfer(uuid, 'destination');
      expect(dst.status).toBe(202);
      expect(fakeA.find('DELETE', `/api/transfers/${uuid}`)[0].authorization).toBe(`Bearer ${nodeA.token}`);
    });

    it('issues websocket tokens for the hosting node', async () => {
      const { data } = await panel.admin.websocketToken(uuid);
      expect(data.socket).toBe(`${fakeB.url.replace('http', 'ws')}/api/servers/${uuid}/ws`);
      const { payload, protectedHeader } = await jwtVerify(data.token, new TextEncoder().encode(nodeB.token), {
        audience: fakeB.url,
        issuer: panel.publicUrl,
      });
      const adminUser = panel.state.admin_user;
      const jti = createHash('md5').update(`${adminUser.id}${uuid}`).digest('hex');
      expect(protectedHeader).toEqual({ typ: 'JWT', alg: 'HS256', jti });
      expect(payload).toMatchObject({
        jti,
        server_uuid: uuid,
        permissions: ['*', 'admin.websocket.errors', 'admin.websocket.install', 'admin.websocket.transfer'],
        user_uuid: adminUser.uuid,
        user_id: adminUser.id,
      });
      expect(payload.exp).toBe(payload.iat! + 600);
      expect(payload.nbf).toBe(payload.iat! - 300);
      expect(payload.unique_id).toMatch(/^[A-Za-z0-9]{16}$/);

      const custom = await panel.admin.websocketToken(uuid, {
        permissions: ['websocket.connect'],
        user_id: 7,
        expires_in: 5,
        scope: 'websocket',
      });
      const p2 = (await jwtVerify(custom.data.token, new TextEncoder().encode(nodeB.token))).payload;
      expect(p2).toMatchObject({ permissions: ['websocket.connect'], user_id: 7, scope: 'websocket' });
      expect(p2.exp).toBe(p2.iat! + 5);
    });

    it('signs transfer tokens with overrides for bad-token tests', async () => {
      const t = await panel.admin.transferToken({ server_uuid: uuid, node_id: nodeA.id, scope: 'transfer', exp: 1, unique_id: null });
      expect(t.url).toBe(`${fakeA.url}/api/transfers`);
      expect(t.authorization).toBe(`Bearer ${t.token}`);
      expect(decodeProtectedHeader(t.token)).toMatchObject({ sub: uuid });
      const payload = JSON.parse(Buffer.from(t.token.split('.')[1], 'base64url').toString());
      expect(payload).toMatchObject({ exp: 1, scope: 'transfer', sub: uuid });
      expect(payload.unique_id).toBeUndefined();
      const wrong = await panel.admin.transferToken({ server_uuid: uuid, node_id: nodeA.id, secret: 'other' });
      await expect(jwtVerify(wrong.token, new TextEncoder().encode(nodeA.token))).rejects.toThrow();
      const direct = signNodeJwt('k', { sub: 'x', exp: 2 }, { kid: 'a' });
      expect(decodeProtectedHeader(direct)).toEqual({ typ: 'JWT', alg: 'HS256', kid: 'a' });
    });
  });

  it('injects faults into the next matching remote calls', async () => {
    await panel.admin.addFault({ path: '/servers/reset$', status: 500, count: 2 });
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await remote(panel, 'POST', '/servers/reset', bearer(nodeA))).status);
    expect(statuses).toEqual([500, 500, 204]);
    const recorded = await panel.admin.calls({ path: '/servers/reset$', method: 'POST' });
    expect(recorded.slice(-3).map((c) => [c.status, c.fault !== null])).toEqual([
      [500, true],
      [500, true],
      [204, false],
    ]);

    await panel.admin.addFault({ path: '/activity$', delay_ms: 250 });
    const slow = await remote(panel, 'POST', '/activity', bearer(nodeA), { data: [] });
    expect(slow.status).toBe(200);
    expect(slow.ms).toBeGreaterThanOrEqual(240);
    expect(await panel.admin.listFaults()).toEqual([]);

    await panel.admin.addFault({ path: '^/api/remote/servers$', status: 503, body: { custom: true } });
    const custom = await remote(panel, 'GET', '/servers', bearer(nodeA));
    expect(custom).toMatchObject({ status: 503, body: { custom: true } });
  });

  it('updates node urls, suspends servers and deletes them through the node', async () => {
    const n = await panel.admin.updateNode(nodeB.id, { url: fakeB.url + '/' });
    expect(n.url).toBe(fakeB.url);
    const s = await panel.admin.createServer({ node_id: nodeB.id, invocation: 'x' });
    const u = await panel.admin.updateServer(s.uuid, { suspended: true, build: { memory_limit: 512 } });
    expect(u.suspended).toBe(true);
    expect(u.build.memory_limit).toBe(512);
    expect(fakeB.find('POST', `/api/servers/${s.uuid}/sync`)).toHaveLength(1);
    const d = await remote(panel, 'GET', `/servers/${s.uuid}`, bearer(nodeB));
    expect(d.body.settings.suspended).toBe(true);
    await panel.admin.deleteServer(s.uuid);
    expect(fakeB.find('DELETE', `/api/servers/${s.uuid}`)).toHaveLength(1);
    await expect(panel.admin.getServer(s.uuid)).rejects.toMatchObject({ status: 404 });
  });

  it('generates node configs in the process environment unless the node asks for Docker', async () => {
    // The default: `environment: process`, no Docker section, so the node never touches an engine.
    const plain = ConfigSchema.parse(parseYaml(nodeA.config));
    expect(plain.environment).toBe('process');
    expect(parseYaml(nodeA.config).docker).toBeUndefined();
    expect(nodeA.environment).toBe('process');

    const docker = await panel.admin.createNode({ name: 'docker', url: 'http://127.0.0.1:3', environment: 'docker' });
    expect(docker.environment).toBe('docker');
    const cfg = ConfigSchema.parse(parseYaml(docker.config));
    expect(cfg.environment).toBe('docker');
    expect(cfg.docker.container_name_prefix).toBe(`${docker.uuid.slice(0, 8)}-`);

    // config_overrides are merged last; PATCH changes the environment of the next config.
    const overridden = await panel.admin.updateNode(docker.id, { config_overrides: { docker: { network: { network_mode: 'none' } } } });
    expect(ConfigSchema.parse(parseYaml(overridden.config)).docker.network.network_mode).toBe('none');
    const back = await panel.admin.updateNode(docker.id, { environment: 'process', config_overrides: {} });
    expect(parseYaml(back.config)).toMatchObject({ environment: 'process' });
    expect(parseYaml(back.config).docker).toBeUndefined();

    // The same config.yml as a file.
    const file = await request(`${panel.adminUrl}/admin/api/nodes/${docker.id}/config`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(file.statusCode).toBe(200);
    expect(file.headers['content-type']).toMatch(/^application\/yaml/);
    expect(await file.body.text()).toBe(back.config);
    const missing = await request(`${panel.adminUrl}/admin/api/nodes/999/config`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(missing.statusCode).toBe(404);
    await missing.body.dump();

    const bad = await panel.admin.raw('POST', '/admin/api/nodes', { name: 'x', url: 'http://127.0.0.1:4', environment: 'podman' });
    expect(bad.status).toBe(422);
    expect((bad.body as { error: string }).error).toMatch(/^environment: .*"process"\|"docker"/);
    const noUrl = await panel.admin.raw('POST', '/admin/api/nodes', { name: 'x' });
    expect(noUrl).toEqual({ status: 422, body: { error: 'url is missing' } });
  });

  it('persists its state and reloads it after a restart', async () => {
    const before = JSON.parse(JSON.stringify(panel.state));
    await panel.close();
    const cfgPath = path.join(dir, 'panel.yml');
    await writeFile(
      cfgPath,
      `listen: {host: 127.0.0.1, port: 0}\nadmin: {port: 0, token: ${ADMIN_TOKEN}}\npublic_url: http://panel.test\ndata_directory: .\n`,
    );
    panel = await startPanelLiteFromFile(cfgPath);
    expect(panel.publicUrl).toBe('http://panel.test');
    expect(panel.state.nodes).toEqual(before.nodes);
    expect(panel.state.servers).toEqual(before.servers);
    expect(panel.state.transfers).toEqual(before.transfers);
    const r = await remote(panel, 'GET', '/servers?page=1&per_page=10', bearer(nodeA));
    expect(r.status).toBe(200);
    expect(r.body.meta.path).toBe('http://panel.test/api/remote/servers');
    const again = await panel.admin.createNode({ name: 'c', url: 'http://127.0.0.1:2' });
    expect(again.id).toBe(before.next_node_id);
    expect(ConfigSchema.parse(parseYaml(again.config)).remote).toBe('http://panel.test');
  });
});
