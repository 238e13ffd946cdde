import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ECHO_SERVER, http, startNode, startPanel, type TestNode, type TestPanel } from '../helpers/harness.js';

const UNKNOWN = '00000000-0000-4000-8000-000000000000';

/** The answers each route gives in the tests (http-api, daemon-core, transfer-errors, websocket …). */
const OBSERVED: [method: string, path: string, statuses: number[]][] = [
  ['get', '/api/system', [200, 401, 403]],
  ['post', '/api/update', [200, 400, 401, 403]],
  ['post', '/api/deauthorize-user', [204, 400, 401, 403, 422]],
  ['get', '/api/transfers', [200, 401, 403]],
  ['post', '/api/transfers', [200, 400, 401, 403, 409, 502]],
  ['get', '/api/transfers/{server}', [200, 404]],
  ['delete', '/api/transfers/{server}', [202, 409]],
  ['get', '/api/servers', [200, 401, 403]],
  ['post', '/api/servers', [202, 400, 409, 422, 502]],
  ['get', '/api/servers/{server}', [200, 401, 403, 404]],
  ['delete', '/api/servers/{server}', [204, 404]],
  ['get', '/api/servers/{server}/logs', [200, 404]],
  ['post', '/api/servers/{server}/power', [202, 400, 401, 404, 409, 422]],
  ['post', '/api/servers/{server}/commands', [204, 404, 409, 502]],
  ['post', '/api/servers/{server}/install', [202, 404, 409]],
  ['post', '/api/servers/{server}/reinstall', [202, 404, 409]],
  ['post', '/api/servers/{server}/sync', [204, 404]],
  ['post', '/api/servers/{server}/transfer', [202, 400, 404, 409, 500]],
  ['get', '/api/servers/{server}/transfer', [200, 404]],
  ['delete', '/api/servers/{server}/transfer', [202, 404, 409]],
  ['post', '/api/servers/{server}/ws/deny', [204, 400, 404]],
  ['get', '/api/servers/{server}/ws', [101, 400, 403, 404]],
];

/** /openapi.json declares, for every route, the statuses it really answers. */
describe('OpenAPI document: declared answers', () => {
  let tp: TestPanel;
  let node: TestNode;
  let uuid: string;
  let doc: any;

  beforeAll(async () => {
    tp = await startPanel();
    node = await startNode(tp);
    uuid = (await tp.panel.admin.createServer({ node_id: node.id, ...ECHO_SERVER, skip_egg_scripts: true })).uuid;
    doc = (await node.api('GET', '/openapi.json')).body;
  });
  afterAll(async () => {
    await node?.stop();
    await tp?.close();
  });

  const declared = (method: string, path: string): string[] => Object.keys(doc.paths[path]?.[method]?.responses ?? {});

  it('declares each status the tests observe, on its route', () => {
    for (const [method, path, statuses] of OBSERVED) {
      const have = declared(method, path);
      for (const status of statuses) expect(have, `${method} ${path}`).toContain(String(status));
    }
  });

  it('declares at least one answer other than the default on every route, error bodies with a schema', () => {
    const routes = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops as object).map((m) => [m, path] as const));
    expect(routes.length).toBe(OBSERVED.length);
    for (const [method, path] of routes) {
      const responses = doc.paths[path][method].responses as Record<string, { content?: unknown }>;
      expect(Object.keys(responses).filter((s) => s !== 'default'), `${method} ${path}`).not.toEqual([]);
      for (const [status, r] of Object.entries(responses)) {
        if (Number(status) >= 400 && !(path.endsWith('/ws') && status === '403')) {
          expect(r.content, `${method} ${path} ${status}`).toBeDefined();
        }
      }
    }
    for (const status of ['202', '204']) {
      for (const [method, path] of routes) expect(doc.paths[path][method].responses[status]?.content).toBeUndefined();
    }
  });

  it('names the power actions, and describes the multipart body and token of POST /api/transfers', () => {
    const power = doc.paths['/api/servers/{server}/power'].post.requestBody.content['application/json'].schema;
    expect(power.properties.action.enum).toEqual(['start', 'stop', 'restart', 'kill']);
    const receive = doc.paths['/api/transfers'].post;
    expect(receive.security).toEqual([{ transferToken: [] }]);
    const multipart = receive.requestBody.content['multipart/form-data'].schema;
    expect(Object.keys(multipart.properties)).toEqual(['archive', 'checksum']);
    expect(multipart.properties.archive.format).toBe('binary');
    expect(multipart.properties.checksum.pattern).toBe('^[0-9a-f]{64}$');
  });

  it('declares the statuses real requests answer', async () => {
    const s = `/api/servers/${uuid}`;
    const requests: [method: string, url: string, docPath: string, token: string | undefined, body?: unknown][] = [
      ['GET', '/api/system', '/api/system', node.token],
      ['GET', '/api/servers', '/api/servers', undefined],
      ['GET', '/api/servers', '/api/servers', 'nope'],
      ['GET', `/api/servers/${UNKNOWN}`, '/api/servers/{server}', node.token],
      ['GET', s, '/api/servers/{server}', node.token],
      ['GET', `${s}/logs`, '/api/servers/{server}/logs', node.token],
      ['POST', `${s}/power`, '/api/servers/{server}/power', node.token, { action: 'explode' }],
      ['GET', `${s}/transfer`, '/api/servers/{server}/transfer', node.token],
      ['DELETE', `${s}/transfer`, '/api/servers/{server}/transfer', node.token],
      ['GET', `/api/transfers/${UNKNOWN}`, '/api/transfers/{server}', node.token],
      ['DELETE', `/api/transfers/${UNKNOWN}`, '/api/transfers/{server}', node.token],
      ['POST', '/api/deauthorize-user', '/api/deauthorize-user', node.token, {}],
      ['POST', '/api/deauthorize-user', '/api/deauthorize-user', node.token, { user: 'u' }],
      ['POST', `${s}/ws/deny`, '/api/servers/{server}/ws/deny', node.token, { jtis: [] }],
      ['POST', '/api/servers', '/api/servers', node.token, { uuid: 'not-a-uuid' }],
      ['POST', '/api/update', '/api/update', node.token, ['not', 'an', 'object']],
    ];
    for (const [method, url, docPath, token, body] of requests) {
      const r = await http(method, `${node.url}${url}`, { token, body });
      expect(declared(method.toLowerCase(), docPath), `${method} ${url} → ${r.status}`).toContain(String(r.status));
    }
  });
});
