import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import pino from 'pino';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/load.js';
import { Daemon } from '../../src/daemon.js';
import { WingsError } from '../../src/errors.js';
import { answerFor } from '../../src/http/error-map.js';
import { buildApp } from '../../src/http/app.js';
import type { WingsApp } from '../../src/http/types.js';
import { tmpDir } from '../helpers/tmp.js';

const TOKEN = 'unit-test-node-token';
const GENERIC = 'An unexpected error was encountered while processing this request';

describe('answerFor: the one table from code to answer', () => {
  it('answers contract codes with {error, code}, Go answers with a plain {error}', () => {
    expect(answerFor(new WingsError('DISK_FULL', 'no room'))).toMatchObject({ status: 507, body: { error: 'no room', code: 'DISK_FULL' } });
    expect(answerFor(new WingsError('PANEL_REFUSED', 'said 404'))).toMatchObject({ status: 502, body: { error: 'said 404', code: 'PANEL' } });
    expect(answerFor(new WingsError('TOKEN_MISSING', 'm'))).toEqual({
      status: 401,
      body: { error: 'm' },
      headers: { 'WWW-Authenticate': 'Bearer' },
      opaque: false,
      text: false,
    });
  });

  it('never shows the message of an opaque answer: the fixed text and the request id instead', () => {
    const a = answerFor(new WingsError('NOT_ON_PANEL', 'server does not exist on remote system'), 'req-1');
    expect(a).toMatchObject({ status: 500, body: { error: GENERIC, request_id: 'req-1' }, opaque: true });
    expect(JSON.stringify(a.body)).not.toContain('remote system');
  });
});

/**
 * Fastify's own errors and the Panel's, through a real app (buildApp of a Daemon's object graph,
 * not started) and a fake Panel on loopback.
 */
describe('error answers of the HTTP layer', () => {
  let panel: http.Server;
  let app: WingsApp;
  const logLines: Record<string, any>[] = [];
  /** The Panel's answer to GET /api/remote/servers/:uuid, by uuid. */
  const panelAnswers = new Map<string, { status: number; body: unknown } | 'hang'>();

  beforeAll(async () => {
    panel = http.createServer((req, res) => {
      const answer = panelAnswers.get(req.url?.split('/').pop() ?? '');
      if (answer === 'hang') return;
      const { status, body } = answer ?? { status: 404, body: { errors: [{ code: 'NotFoundHttpException', status: '404', detail: 'nope' }] } };
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    });
    await new Promise<void>((resolve) => panel.listen(0, '127.0.0.1', resolve));
    const root = tmpDir('wings-unit-http-');
    const config = {
      token_id: 'id',
      token: TOKEN,
      remote: `http://127.0.0.1:${(panel.address() as AddressInfo).port}`,
      remote_query: { timeout: 0.3 },
      environment: 'process',
      system: { root_directory: root, data: `${root}/volumes`, log_directory: `${root}/log` },
    };
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) logLines.push(JSON.parse(line));
        done();
      },
    });
    const logger = pino({ serializers: { err: pino.stdSerializers.err } }, sink);
    const daemon = new Daemon({
      loaded: parseConfigText(stringify(config), `${root}/config.yml`),
      logger,
      panelRetry: { initialMs: 5, multiplier: 1, maxIntervalMs: 5, maxElapsedMs: 40 },
    });
    app = await buildApp(daemon.ctx);
    await app.ready();
  });
  afterAll(async () => {
    await app?.close();
    panel?.closeAllConnections();
    await new Promise((resolve) => panel?.close(resolve));
  });

  const post = (url: string, payload: string | Buffer) =>
    app.inject({ method: 'POST', url, payload, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' } });
  const create = (uuid: string) => post('/api/servers', JSON.stringify({ uuid, start_on_completion: false }));

  it('takes a route with or without a trailing slash, and guards both with the node token', async () => {
    for (const url of ['/api/system', '/api/system/']) {
      expect((await app.inject({ url, headers: { authorization: `Bearer ${TOKEN}` } })).statusCode, url).toBe(200);
      expect((await app.inject({ url })).statusCode, url).toBe(401);
    }
  });

  it('answers bodies the way the Go daemon does: empty, not JSON, refused by a 422 route, too large', async () => {
    const empty = await post('/api/deauthorize-user', '');
    expect([empty.statusCode, empty.json()]).toEqual([400, { error: 'The data passed in the request was not in a parsable format. Please try again.' }]);
    const notJson = await post('/api/deauthorize-user', '{nope');
    expect([notJson.statusCode, notJson.json()]).toEqual([400, { error: GENERIC, request_id: notJson.headers['x-request-id'] }]);
    const refused = await post('/api/deauthorize-user', '{"servers":[]}');
    expect([refused.statusCode, refused.json()]).toEqual([422, { error: 'The data provided in the request could not be validated.' }]);
    const large = await post('/api/deauthorize-user', Buffer.alloc(9 * 1024 * 1024, 0x20));
    expect([large.statusCode, large.json()]).toEqual([413, { error: 'The request body is too large.', request_id: large.headers['x-request-id'] }]);
  });

  it('says what the Panel answered when it refuses or fails a server\'s configuration', async () => {
    const refused = await create(randomUUID());
    expect(refused.statusCode).toBe(502);
    expect(refused.json()).toEqual({
      error: 'The Panel did not provide the server\'s configuration: Error response from Panel: NotFoundHttpException: nope (HTTP/404)',
      code: 'PANEL',
    });
    const failing = randomUUID();
    panelAnswers.set(failing, { status: 500, body: { errors: [{ code: 'HttpException', status: '500', detail: 'boom' }] } });
    const failed = await create(failing);
    expect(failed.statusCode).toBe(502);
    expect(failed.json().code).toBe('PANEL');
    // after its retries the client reports that it gave up (its last answer was the 500)
    expect(failed.json().error).toContain(`gave up on /servers/${failing}`);
  });

  it('answers 504 when the Panel does not answer within remote_query.timeout', async () => {
    const silent = randomUUID();
    panelAnswers.set(silent, 'hang');
    const r = await create(silent);
    expect(r.statusCode).toBe(504);
    expect(r.json()).toEqual({ error: 'The server could not process this request in time, please try again.', request_id: r.headers['x-request-id'] });
  });

  it('answers anything uncoded with the generic 500 and logs it as { err } with its stack', async () => {
    const odd = randomUUID();
    panelAnswers.set(odd, { status: 200, body: { settings: 'not an object' } });
    const r = await create(odd);
    expect(r.statusCode).toBe(500);
    expect(r.json()).toEqual({ error: GENERIC, request_id: r.headers['x-request-id'] });
    const line = logLines.find((l) => l.msg === 'unexpected error while handling request' && l.reqId === r.headers['x-request-id']);
    expect(line?.err?.stack).toEqual(expect.any(String));
    expect(JSON.stringify(logLines)).not.toContain(TOKEN);
  });
});
