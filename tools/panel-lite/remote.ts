import { timingSafeEqual } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { PanelCore } from './core.js';
import { serverConfiguration } from './render.js';
import type { NodeRecord, ServerRecord } from './state.js';

/** The node-facing "remote" API of the Panel (docs/protocol.md W22, W23), under /api/remote. */

const ERROR_CODES: Record<number, string> = {
  400: 'BadRequestHttpException',
  401: 'HttpException',
  403: 'AccessDeniedHttpException',
  404: 'NotFoundHttpException',
  405: 'MethodNotAllowedHttpException',
  409: 'ConflictHttpException',
  422: 'ValidationException',
  429: 'TooManyRequestsHttpException',
  500: 'HttpException',
  501: 'HttpException',
  502: 'HttpException',
  503: 'ServiceUnavailableHttpException',
};

export function errorEnvelope(status: number, detail: string, code = ERROR_CODES[status] ?? 'HttpException') {
  return { errors: [{ code, status: String(status), detail }] };
}

const NOT_FOUND_DETAIL = 'The requested resource could not be found on the server.';

function sendError(reply: FastifyReply, status: number, detail: string, code?: string): FastifyReply {
  return reply.code(status).type('application/json').send(errorEnvelope(status, detail, code));
}

function validationError(reply: FastifyReply, field: string, rule: string, detail: string): FastifyReply {
  return reply
    .code(422)
    .type('application/json')
    .send({ errors: [{ code: 'ValidationException', status: '422', detail, meta: { source_field: field, rule } }] });
}

function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  if (ab.length !== bb.length) {
    timingSafeEqual(ab, ab);
    return false;
  }
  return timingSafeEqual(ab, bb);
}

/** PHP's empty() on a string: '' and '0' are empty. */
function phpEmpty(s: string | undefined): boolean {
  return s === undefined || s === '' || s === '0';
}

/** Laravel's Request::bearerToken(): text after the last `Bearer `, cut at the first comma; null when absent. */
function bearerToken(header: string | undefined): string | null {
  if (!header) return null;
  const pos = header.lastIndexOf('Bearer ');
  if (pos === -1) return null;
  const rest = header.slice(pos + 7);
  const comma = rest.indexOf(',');
  return comma === -1 ? rest : rest.slice(0, comma);
}

type AuthResult = { node: NodeRecord } | { status: number; detail: string; headers?: Record<string, string> };

export function daemonAuthenticate(core: PanelCore, authorization: string | undefined): AuthResult {
  const bearer = bearerToken(authorization);
  if (bearer === null) {
    return {
      status: 401,
      detail: 'Access to this endpoint must include an Authorization header.',
      headers: { 'www-authenticate': 'Bearer' },
    };
  }
  const parts = bearer.split('.');
  if (parts.length !== 2 || phpEmpty(parts[0]) || phpEmpty(parts[1])) {
    return { status: 400, detail: 'The Authorization header provided was not in a valid format.' };
  }
  const node = core.store.nodeByTokenId(parts[0]);
  if (node && safeEqual(node.token, parts[1])) return { node };
  return { status: 403, detail: 'You are not authorized to access this resource.' };
}

/** Laravel's current page: a valid integer ≥ 1, else 1. */
function laravelPage(raw: unknown): number {
  if (typeof raw !== 'string' || !/^[+-]?\d+$/.test(raw.trim())) return 1;
  const n = Number.parseInt(raw, 10);
  return n >= 1 ? n : 1;
}

function perPageOf(raw: unknown): number {
  if (raw === undefined) return 50;
  const n = typeof raw === 'string' ? Number.parseInt(raw, 10) : NaN;
  return Number.isFinite(n) && n > 0 ? n : 15;
}

function pageLinks(path: string, current: number, last: number) {
  const url = (p: number) => `${path}?page=${p}`;
  const pages: (number | '...')[] = [];
  if (last <= 12) for (let p = 1; p <= last; p++) pages.push(p);
  else {
    const set = new Set<number>([1, 2, last - 1, last]);
    for (let p = current - 3; p <= current + 3; p++) if (p >= 1 && p <= last) set.add(p);
    const sorted = [...set].sort((a, b) => a - b);
    sorted.forEach((p, i) => {
      if (i > 0 && p - sorted[i - 1] > 1) pages.push('...');
      pages.push(p);
    });
  }
  return [
    { url: current > 1 ? url(current - 1) : null, label: '&laquo; Previous', active: false },
    ...pages.map((p) =>
      p === '...' ? { url: null, label: '...', active: false } : { url: url(p), label: String(p), active: p === current },
    ),
    { url: current < last ? url(current + 1) : null, label: 'Next &raquo;', active: false },
  ];
}

/** Laravel's boolean rule: true, false, 1, 0, "1", "0". */
function laravelBoolean(v: unknown): boolean | undefined {
  if (v === true || v === 1 || v === '1') return true;
  if (v === false || v === 0 || v === '0') return false;
  return undefined;
}

export function buildRemoteApp(core: PanelCore): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: 16 * 1024 * 1024 });
  const authed = new WeakMap<FastifyRequest, NodeRecord>();
  const faulted = new WeakMap<FastifyRequest, number>();
  const started = new WeakMap<FastifyRequest, number>();

  // Laravel never refuses a request for its body: unparsable JSON is just empty input.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => {
    const text = String(body);
    if (text.trim() === '') return done(null, null);
    try {
      done(null, JSON.parse(text));
    } catch {
      done(null, null);
    }
  });

  app.addHook('onRequest', async (req, reply) => {
    started.set(req, performance.now());
    if (!req.url.startsWith('/api/remote/')) return;
    const auth = daemonAuthenticate(core, req.headers.authorization);
    if (!('node' in auth)) {
      if (auth.headers) void reply.headers(auth.headers);
      return sendError(reply, auth.status, auth.detail);
    }
    authed.set(req, auth.node);
    const p = req.url.split('?')[0];
    const fault = core.takeFault(req.method, p);
    if (fault) {
      faulted.set(req, fault.id);
      if (fault.delay_ms > 0) await sleep(fault.delay_ms);
      if (fault.status !== null) {
        const body = fault.body !== undefined ? fault.body : errorEnvelope(fault.status, 'Injected fault.');
        return reply.code(fault.status).type('application/json').send(body);
      }
    }
  });

  app.addHook('onResponse', async (req, reply) => {
    if (!req.url.startsWith('/api/remote/')) return;
    const [p, q] = req.url.split('?') as [string, string | undefined];
    core.log.debug({ method: req.method, path: p, node: authed.get(req)?.id ?? null, status: reply.statusCode }, 'remote call');
    core.recordCall({
      method: req.method,
      path: p,
      query: q ?? '',
      node_id: authed.get(req)?.id ?? null,
      status: reply.statusCode,
      body: req.body ?? null,
      at: new Date().toISOString(),
      duration_ms: Math.round((performance.now() - (started.get(req) ?? performance.now())) * 10) / 10,
      fault: faulted.get(req) ?? null,
    });
  });

  app.setNotFoundHandler((_req, reply) => sendError(reply, 404, NOT_FOUND_DETAIL));
  app.setErrorHandler((err, _req, reply) => {
    core.log.error({ err }, 'remote API error');
    return sendError(
      reply,
      500,
      'An unexpected error was encountered while processing this request, please try again.',
      'HttpException',
    );
  });

  const nodeOf = (req: FastifyRequest): NodeRecord => authed.get(req)!;
  const serverOr404 = (uuid: string, reply: FastifyReply): ServerRecord | undefined => {
    const s = core.store.server(uuid);
    if (!s) void sendError(reply, 404, NOT_FOUND_DETAIL);
    return s;
  };

  app.get('/api/remote/servers', async (req, reply) => {
    const node = nodeOf(req);
    const q = req.query as Record<string, unknown>;
    const page = laravelPage(q.page);
    const perPage = perPageOf(q.per_page);
    const all = core.state.servers.filter((s) => s.node_id === node.id).sort((a, b) => a.id - b.id);
    const total = all.length;
    const lastPage = Math.max(1, Math.ceil(total / perPage));
    const slice = all.slice((page - 1) * perPage, page * perPage);
    const from = slice.length ? (page - 1) * perPage + 1 : null;
    const to = slice.length ? (page - 1) * perPage + slice.length : null;
    const path = `${core.publicUrl}/api/remote/servers`;
    return reply.send({
      data: slice.map((s) => ({ uuid: s.uuid, ...serverConfiguration(s, core.store.node(s.node_id)) })),
      links: {
        first: `${path}?page=1`,
        last: `${path}?page=${lastPage}`,
        prev: page > 1 ? `${path}?page=${page - 1}` : null,
        next: page < lastPage ? `${path}?page=${page + 1}` : null,
      },
      meta: {
        current_page: page,
        from,
        last_page: lastPage,
        links: pageLinks(path, page, lastPage),
        path,
        per_page: perPage,
        to,
        total,
      },
    });
  });

  app.post('/api/remote/servers/reset', async (req, reply) => {
    const node = nodeOf(req);
    let changed = false;
    for (const s of core.state.servers) {
      if (s.node_id === node.id && (s.status === 'installing' || s.status === 'restoring_backup')) {
        s.status = null;
        changed = true;
      }
    }
    if (changed) core.store.save();
    return reply.code(204).send();
  });

  app.get<{ Params: { uuid: string } }>('/api/remote/servers/:uuid', async (req, reply) => {
    const s = serverOr404(req.params.uuid, reply);
    if (!s) return reply;
    return reply.send(serverConfiguration(s, core.store.node(s.node_id)));
  });

  app.get<{ Params: { uuid: string } }>('/api/remote/servers/:uuid/install', async (req, reply) => {
    const s = serverOr404(req.params.uuid, reply);
    if (!s) return reply;
    return reply.send({ ...s.install });
  });

  app.post<{ Params: { uuid: string } }>('/api/remote/servers/:uuid/install', async (req, reply) => {
    const s = serverOr404(req.params.uuid, reply);
    if (!s) return reply;
    const body = (req.body ?? {}) as Record<string, unknown>;
    const raw = typeof body === 'object' && body !== null ? body : {};
    if (raw.successful === undefined || raw.successful === null) {
      return validationError(reply, 'successful', 'required', 'The successful field is required.');
    }
    const successful = laravelBoolean(raw.successful);
    if (successful === undefined) {
      return validationError(reply, 'successful', 'boolean', 'The successful field must be true or false.');
    }
    let reinstall = false;
    if (raw.reinstall !== undefined && raw.reinstall !== null) {
      const r = laravelBoolean(raw.reinstall);
      if (r === undefined) return validationError(reply, 'reinstall', 'boolean', 'The reinstall field must be true or false.');
      reinstall = r;
    }
    const at = new Date().toISOString();
    s.status = successful ? null : reinstall ? 'reinstall_failed' : 'install_failed';
    s.installed_at = at;
    s.install_reports.push({ successful, reinstall, at });
    core.store.save();
    return reply.code(204).send();
  });

  const outcome = (kind: 'success' | 'failure') => async (req: FastifyRequest<{ Params: { uuid: string } }>, reply: FastifyReply) => {
    const result = kind === 'success' ? await core.transferSuccess(req.params.uuid) : core.transferFailure(req.params.uuid);
    if (result === 'not_found') return sendError(reply, 404, NOT_FOUND_DETAIL);
    if (result === 'conflict') return sendError(reply, 409, 'Server is not being transferred.', 'ConflictHttpException');
    return reply.code(204).send();
  };
  app.route({ method: ['GET', 'POST'], url: '/api/remote/servers/:uuid/transfer/success', handler: outcome('success') });
  app.route({ method: ['GET', 'POST'], url: '/api/remote/servers/:uuid/transfer/failure', handler: outcome('failure') });

  app.post('/api/remote/activity', async (req, reply) => {
    const node = nodeOf(req);
    const body = req.body as { data?: unknown } | null;
    if (!body || !Array.isArray(body.data)) {
      return validationError(reply, 'data', 'required', 'The data field is required.');
    }
    const at = new Date().toISOString();
    for (const entry of body.data as unknown[]) {
      const e = entry as { server?: unknown; event?: unknown };
      if (typeof e?.event !== 'string' || !e.event.startsWith('server:')) continue;
      const s = typeof e.server === 'string' ? core.store.server(e.server) : undefined;
      if (!s || s.node_id !== node.id) continue;
      core.activity.push({ node_id: node.id, at, entry });
    }
    return reply.code(200).send();
  });

  app.post('/api/remote/sftp/auth', async (_req, reply) =>
    sendError(reply, 403, 'Authorization credentials were not correct, please try again.'),
  );

  return app;
}
