import { timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { z } from 'zod';
import { describeIssues } from './config.js';
import { PanelLiteError, nodeView, type PanelCore } from './core.js';
import { nodeConfigYaml, serverConfiguration } from './render.js';
import type { ServerRecord } from './state.js';

/** The admin JSON API (`/admin/api/...`, `Authorization: Bearer <adminToken>`). */

const Allocation = z.object({ ip: z.string().optional(), port: z.number().int().min(1).max(65535).optional() });
const Build = z
  .object({
    memory_limit: z.number().int(),
    swap: z.number().int(),
    io_weight: z.number().int(),
    cpu_limit: z.number().int(),
    threads: z.string().nullable(),
    disk_space: z.number().int(),
    oom_disabled: z.boolean(),
  })
  .partial();
const Stop = z.object({ type: z.enum(['command', 'signal', 'stop']), value: z.string() });
const Install = z.object({ container_image: z.string(), entrypoint: z.string(), script: z.string() }).partial();
const EnvValue = z.union([z.string(), z.number(), z.boolean(), z.null()]);
const ConfigFile = z.object({
  file: z.string(),
  parser: z.string(),
  replace: z.array(z.object({ match: z.string(), if_value: z.string().optional(), replace_with: z.unknown() })),
});
const Mount = z.object({ source: z.string(), target: z.string(), read_only: z.boolean().default(false) });

const ServerFields = {
  name: z.string().min(1).optional(),
  description: z.string().optional(),
  invocation: z.string(),
  image: z.string().optional(),
  environment: z.record(z.string(), EnvValue).optional(),
  build: Build.optional(),
  allocation: Allocation.optional(),
  additional_ports: z.array(z.number().int()).optional(),
  startup_done: z.array(z.string()).optional(),
  user_interaction: z.array(z.string()).optional(),
  strip_ansi: z.boolean().optional(),
  stop: Stop.optional(),
  configs: z.array(ConfigFile).optional(),
  mounts: z.array(Mount).optional(),
  file_denylist: z.array(z.string()).optional(),
  install: Install.optional(),
  skip_egg_scripts: z.boolean().optional(),
  suspended: z.boolean().optional(),
};

export const CreateNodeBody = z.object({
  name: z.string().min(1),
  url: z.string().min(1),
  data_root: z.string().nullable().optional(),
  location: z.string().optional(),
  environment: z.enum(['process', 'docker']).optional(),
  config_overrides: z.record(z.string(), z.unknown()).optional(),
});

export const CreateServerBody = z.object({
  node_id: z.number().int(),
  uuid: z.string().optional(),
  ...ServerFields,
  create_on_node: z.boolean().optional(),
  start_on_completion: z.boolean().optional(),
});

export const UpdateServerBody = z.object({
  ...ServerFields,
  invocation: z.string().optional(),
  status: z.enum(['installing', 'install_failed', 'reinstall_failed', 'restoring_backup']).nullable().optional(),
  sync_node: z.boolean().optional(),
});

const TransferBody = z.object({ node_id: z.number().int(), allocation: Allocation.optional(), scope: z.string().optional() });
const WebsocketBody = z.object({
  permissions: z.array(z.string()).optional(),
  user_uuid: z.string().optional(),
  user_id: z.number().int().optional(),
  expires_in: z.number().int().optional(),
  scope: z.string().optional(),
});
const TransferTokenBody = z
  .object({
    server_uuid: z.string(),
    node_id: z.number().int(),
    scope: z.string().optional(),
    header: z.record(z.string(), z.unknown()).optional(),
    secret: z.string().optional(),
  })
  .catchall(z.unknown());
const FaultBody = z.object({
  path: z.string().min(1),
  method: z.string().optional(),
  status: z.number().int().min(100).max(599).optional(),
  body: z.unknown().optional(),
  delay_ms: z.number().int().min(0).optional(),
  count: z.number().int().min(1).optional(),
});

function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  return ab.length === bb.length && timingSafeEqual(ab, bb);
}

function parse<T extends z.ZodType>(schema: T, body: unknown): z.infer<T> {
  const r = schema.safeParse(body ?? {});
  if (!r.success) throw new PanelLiteError(422, describeIssues(r.error.issues, body ?? {}).join('; '));
  return r.data;
}

export function serverView(core: PanelCore, s: ServerRecord): Record<string, unknown> {
  const pending = core.store.pendingTransfer(s.uuid);
  return {
    ...s,
    transferring: pending !== undefined,
    configuration: serverConfiguration(s, core.store.node(s.node_id)),
  };
}

export function buildAdminApp(core: PanelCore, adminToken: string): FastifyInstance {
  const app = Fastify({ logger: false });

  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => {
    const text = String(body);
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch {
      done(new PanelLiteError(400, 'body is not valid JSON'), undefined);
    }
  });

  app.addHook('onRequest', async (req, reply) => {
    const h = req.headers.authorization ?? '';
    if (!h.startsWith('Bearer ') || !safeEqual(h.slice(7), adminToken)) {
      return reply.code(401).header('www-authenticate', 'Bearer').send({ error: 'Unauthorized.' });
    }
  });

  app.setErrorHandler((err, _req, reply: FastifyReply) => {
    if (err instanceof PanelLiteError) return reply.code(err.status).send({ error: err.message, ...err.extra });
    const e = err as { statusCode?: number; message?: string };
    if (e.statusCode && e.statusCode < 500) return reply.code(e.statusCode).send({ error: e.message });
    core.log.error({ err }, 'admin API error');
    return reply.code(500).send({ error: e.message ?? 'internal error' });
  });
  app.setNotFoundHandler((_req, reply) => reply.code(404).send({ error: 'Not found.' }));

  type P = { Params: { uuid: string } };
  const id = (raw: string) => {
    const n = Number(raw);
    if (!Number.isInteger(n)) throw new PanelLiteError(404, 'node not found');
    return n;
  };

  // nodes
  app.post('/admin/api/nodes', async (req, reply) => {
    const node = core.createNode(parse(CreateNodeBody, req.body));
    return reply.code(201).send(nodeView(node, core.publicUrl));
  });
  app.get('/admin/api/nodes', async () => core.state.nodes.map((n) => nodeView(n, core.publicUrl)));
  app.get<{ Params: { id: string } }>('/admin/api/nodes/:id', async (req) => {
    const node = core.requireNode(id(req.params.id), 404);
    return nodeView(node, core.publicUrl);
  });
  // The same config.yml as the node's `config` field, as a file: `curl … > config.yml`.
  app.get<{ Params: { id: string } }>('/admin/api/nodes/:id/config', async (req, reply) => {
    const node = core.requireNode(id(req.params.id), 404);
    return reply.type('application/yaml; charset=utf-8').send(nodeConfigYaml(node, core.publicUrl));
  });
  app.patch<{ Params: { id: string } }>('/admin/api/nodes/:id', async (req) => {
    const node = core.updateNode(id(req.params.id), parse(CreateNodeBody.partial(), req.body));
    return nodeView(node, core.publicUrl);
  });

  // servers
  app.post('/admin/api/servers', async (req, reply) => {
    const s = await core.createServer(parse(CreateServerBody, req.body));
    return reply.code(201).send(serverView(core, s));
  });
  app.get('/admin/api/servers', async (req) => {
    const q = req.query as { node_id?: string };
    return core.state.servers
      .filter((s) => q.node_id === undefined || s.node_id === Number(q.node_id))
      .map((s) => serverView(core, s));
  });
  app.get<P>('/admin/api/servers/:uuid', async (req) => serverView(core, core.requireServer(req.params.uuid)));
  app.patch<P>('/admin/api/servers/:uuid', async (req) => {
    const { server, sync } = await core.updateServer(req.params.uuid, parse(UpdateServerBody, req.body));
    return { ...serverView(core, server), node_sync: sync };
  });
  app.delete<P>('/admin/api/servers/:uuid', async (req) => {
    const force = (req.query as { force?: string }).force;
    const res = await core.deleteServer(req.params.uuid, force === '1' || force === 'true');
    return { deleted: true, node_status: res?.status ?? null, node_body: res?.body ?? null };
  });

  // transfers
  app.post<P>('/admin/api/servers/:uuid/transfer', async (req, reply) => {
    const t = await core.startTransfer(req.params.uuid, parse(TransferBody, req.body));
    return reply.code(202).send(t);
  });
  app.get<P>('/admin/api/servers/:uuid/transfer', async (req, reply) => {
    const s = core.requireServer(req.params.uuid);
    const t = core.store.pendingTransfer(s.uuid) ?? core.store.latestTransfer(s.uuid);
    if (!t) return reply.code(404).send({ error: 'This server has no transfer.' });
    return t;
  });
  app.delete<P>('/admin/api/servers/:uuid/transfer', async (req, reply) => {
    const side = (req.query as { side?: string }).side ?? 'source';
    if (side !== 'source' && side !== 'destination') throw new PanelLiteError(422, 'side must be source or destination');
    const res = await core.cancelTransfer(req.params.uuid, side);
    if (res.status === 0) return reply.code(502).send({ error: res.error, node_status: 0, node_body: null });
    if (res.body === null) return reply.code(res.status).send();
    return reply.code(res.status).send(res.body);
  });
  app.get('/admin/api/transfers', async () => core.state.transfers);

  // tokens
  app.post<P>('/admin/api/servers/:uuid/websocket', async (req) => ({
    data: core.websocket(req.params.uuid, parse(WebsocketBody, req.body)),
  }));
  app.post('/admin/api/tokens/transfer', async (req) => {
    const { server_uuid, node_id, scope, header, secret, ...overrides } = parse(TransferTokenBody, req.body);
    return core.signTransferToken({ server_uuid, node_id, scope, header, secret, overrides });
  });

  // observation and faults
  app.get('/admin/api/calls', async (req) => {
    const q = req.query as { path?: string; method?: string; since?: string };
    let re: RegExp | null = null;
    try {
      re = q.path ? new RegExp(q.path) : null;
    } catch {
      throw new PanelLiteError(422, 'path is not a valid regular expression');
    }
    const since = q.since ? Number(q.since) : 0;
    return core.calls.filter(
      (c) => (!re || re.test(c.path)) && (!q.method || c.method === q.method.toUpperCase()) && c.seq > since,
    );
  });
  app.delete('/admin/api/calls', async (_req, reply) => {
    core.calls.length = 0;
    return reply.code(204).send();
  });
  app.get('/admin/api/activity', async () => core.activity);
  app.post('/admin/api/faults', async (req, reply) => {
    const spec = parse(FaultBody, req.body);
    try {
      new RegExp(spec.path);
    } catch {
      throw new PanelLiteError(422, 'path is not a valid regular expression');
    }
    const { regex: _regex, ...f } = core.addFault(spec);
    return reply.code(201).send(f);
  });
  app.get('/admin/api/faults', async () => core.faults.map(({ regex: _regex, ...f }) => f));
  app.delete('/admin/api/faults', async (_req, reply) => {
    core.faults = [];
    return reply.code(204).send();
  });

  return app;
}
