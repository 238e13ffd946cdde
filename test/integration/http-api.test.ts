import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ECHO_SERVER, http, startNode, startPanel, type TestNode, type TestPanel } from '../helpers/harness.js';

const TOKEN_MISSING = '{"error":"The required authorization heads were not present in the request."}';
const TOKEN_FORBIDDEN = '{"error":"You are not authorized to access this endpoint."}';
const NOT_FOUND = { error: 'The requested resource does not exist on this instance.' };
const GENERIC = 'An unexpected error was encountered while processing this request';

/** The HTTP layer's scopes, server lookup and error answers, on a real daemon process + panel-lite. */
describe('HTTP API: auth scopes, server lookup, error answers', () => {
  let tp: TestPanel;
  let node: TestNode;
  let uuid: string;

  beforeAll(async () => {
    tp = await startPanel();
    node = await startNode(tp);
    uuid = (await tp.panel.admin.createServer({ node_id: node.id, ...ECHO_SERVER, skip_egg_scripts: true })).uuid;
  });
  afterAll(async () => {
    await node?.stop();
    await tp?.close();
  });

  it('keeps a Panel refusal\'s meaning: POST /api/servers for a server the Panel does not know answers 502 PANEL with what the Panel said', async () => {
    const unknown = randomUUID();
    const r = await node.api('POST', '/api/servers', { uuid: unknown, start_on_completion: false });
    expect(r.status).toBe(502);
    expect(r.body.code).toBe('PANEL');
    expect(r.body.error).toContain('HTTP/404');
    expect(r.body.error).toContain('The requested resource could not be found on the server.');
    expect(r.body.request_id).toBeUndefined();
    // nothing was registered
    expect((await node.api('GET', `/api/servers/${unknown}`)).status).toBe(404);
  });

  it('guards unknown routes with the node token, like the Go daemon\'s engine-wide middleware', async () => {
    for (const path of ['/api/nope', '/download/file', '/upload/file', '/']) {
      const none = await http('GET', `${node.url}${path}`);
      expect(none.status, path).toBe(401);
      expect(none.headers['www-authenticate']).toBe('Bearer');
      expect(none.text).toBe(TOKEN_MISSING);
      const wrong = await http('GET', `${node.url}${path}`, { token: 'nope' });
      expect(wrong.status, path).toBe(403);
      expect(wrong.text).toBe(TOKEN_FORBIDDEN);
      const ok = await node.api('GET', path);
      expect(ok.status, path).toBe(404);
      expect(ok.text).toBe('404 page not found');
    }
  });

  it('answers auth refusals with the request id and CORS headers', async () => {
    const r = await http('POST', `${node.url}/api/servers/${uuid}/power`, { body: { action: 'start' } });
    expect(r.status).toBe(401);
    expect(r.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(r.headers['access-control-allow-origin']).toBe(tp.panel.publicUrl);
    expect(r.headers['access-control-max-age']).toBe('7200');
  });

  it('does not open POST /api/transfers to the node token: the transfer code answers with its contract codes', async () => {
    const none = await http('POST', `${node.url}/api/transfers`, { rawBody: 'x', headers: { 'content-type': 'text/plain' } });
    expect(none.status).toBe(401);
    expect(none.body.code).toBe('AUTH_MISSING');
    const nodeToken = await http('POST', `${node.url}/api/transfers`, {
      token: node.token,
      rawBody: 'x',
      headers: { 'content-type': 'text/plain' },
    });
    expect(nodeToken.status).toBe(401);
    expect(nodeToken.body.code).toBe('AUTH_INVALID');
  });

  it('puts /metrics and /openapi.json behind the node token', async () => {
    for (const path of ['/metrics', '/openapi.json']) {
      expect((await http('GET', `${node.url}${path}`)).status, path).toBe(401);
      expect((await node.api('GET', path)).status, path).toBe(200);
    }
  });

  it('resolves :server before reading the body: an unknown server is 404 whatever the body', async () => {
    const r = await http('POST', `${node.url}/api/servers/${randomUUID()}/power`, {
      token: node.token,
      rawBody: '{nope',
      headers: { 'content-type': 'application/json' },
    });
    expect(r.status).toBe(404);
    expect(r.body).toEqual(NOT_FOUND);
    // a known server with the same body: the body's answer
    const known = await http('POST', `${node.url}/api/servers/${uuid}/power`, {
      token: node.token,
      rawBody: '{nope',
      headers: { 'content-type': 'application/json' },
    });
    expect(known.status).toBe(400);
    expect(known.body).toEqual({ error: GENERIC, request_id: known.headers['x-request-id'] });
  });

  it('answers a configuration update that is not a JSON object with the generic 400', async () => {
    const r = await node.api('POST', '/api/update', ['not', 'an', 'object']);
    expect(r.status).toBe(400);
    expect(r.body).toEqual({ error: GENERIC, request_id: r.headers['x-request-id'] });
  });

  it('documents each route with the scheme of its scope and the :server parameter of its scope', async () => {
    const doc = (await node.api('GET', '/openapi.json')).body;
    expect(doc.security).toEqual([{ nodeToken: [] }]);
    expect(Object.keys(doc.components.securitySchemes).sort()).toEqual(['nodeToken', 'signedUrl', 'transferToken']);
    expect(doc.paths['/api/transfers'].post.security).toEqual([{ transferToken: [] }]);
    expect(doc.paths['/api/transfers'].get.security).toBeUndefined();
    expect(doc.paths['/api/servers/{server}/ws'].get.security).toEqual([]);
    expect(doc.paths['/api/system'].get.security).toBeUndefined();
    const power = doc.paths['/api/servers/{server}/power'].post;
    expect(power.parameters).toEqual([expect.objectContaining({ in: 'path', name: 'server', required: true })]);
    expect(power.requestBody.content['application/json'].schema.required).toEqual(['action']);
  });
});
