import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simpleRequest } from '../../src/panel/http.js';

describe('simpleRequest (the daemon\'s Panel client transport)', () => {
  let server: http.Server;
  let base = '';
  const seen: Array<{ method?: string; auth?: string; body: string; length?: string }> = [];
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        seen.push({ method: req.method, auth: req.headers.authorization, body, length: req.headers['content-length'] });
        if (req.url === '/hang') return; // never answers
        if (req.url === '/big') return res.end('x'.repeat(1000));
        res.writeHead(req.url === '/missing' ? 404 : 200, { 'content-type': 'application/json' }).end('{"ok":true}');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => {
    server.closeAllConnections();
    server.close();
  });

  it('sends method, headers and body and returns status and text', async () => {
    const res = await simpleRequest(`${base}/x`, { method: 'POST', headers: { authorization: 'Bearer a.b' }, body: '{"n":1}', signal: AbortSignal.timeout(5000) });
    expect(res).toEqual({ statusCode: 200, text: '{"ok":true}' });
    expect(seen.at(-1)).toEqual({ method: 'POST', auth: 'Bearer a.b', body: '{"n":1}', length: '7' });
    expect((await simpleRequest(`${base}/missing`, { method: 'GET', headers: {}, signal: AbortSignal.timeout(5000) })).statusCode).toBe(404);
  });

  it('rejects with the signal\'s reason (TimeoutError) when the answer does not come in time', async () => {
    const err = await simpleRequest(`${base}/hang`, { method: 'GET', headers: {}, signal: AbortSignal.timeout(200) }).catch((e: unknown) => e);
    expect((err as Error).name).toBe('TimeoutError');
  });

  it('cuts the body at maxBytes and rejects on a refused connection', async () => {
    expect((await simpleRequest(`${base}/big`, { method: 'GET', headers: {}, signal: AbortSignal.timeout(5000), maxBytes: 10 })).text).toBe('x'.repeat(10));
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    await expect(simpleRequest(`http://127.0.0.1:${port}/`, { method: 'GET', headers: {}, signal: AbortSignal.timeout(5000) })).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });
});
