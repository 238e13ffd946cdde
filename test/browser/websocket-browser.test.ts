import fs from 'node:fs';
import { createServer, type Server as HttpServer } from 'node:http';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ECHO_SERVER, freePort, startNode, startPanel, type TestNode, type TestPanel } from '../helpers/harness.js';

const CHROMIUM = '/usr/bin/chromium';
const haveChromium = fs.existsSync(CHROMIUM);
if (!haveChromium && process.env.CI) {
  throw new Error(`${CHROMIUM} is missing: the browser websocket test cannot run in CI without it`);
}
if (!haveChromium) console.warn(`skipping the browser websocket test: ${CHROMIUM} is not installed (set CI to make this fatal)`);

/** The page: opens the socket the way the Panel's frontend does (auth on open, JSON envelopes). */
const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>wings-ts console</title></head>
<body><pre id="log"></pre>
<script>
  window.received = [];
  window.socketClosed = null;
  window.connect = (url, token) => new Promise((resolve, reject) => {
    const socket = new WebSocket(url);
    window.socket = socket;
    socket.onopen = () => { socket.send(JSON.stringify({ event: 'auth', args: [token] })); resolve(true); };
    socket.onerror = () => reject(new Error('websocket error'));
    socket.onclose = (e) => { window.socketClosed = { code: e.code, reason: e.reason }; };
    socket.onmessage = (e) => {
      const msg = JSON.parse(e.data);
      window.received.push(msg);
      document.getElementById('log').textContent += msg.event + ' ' + JSON.stringify(msg.args || []) + '\\n';
    };
  });
  window.emit = (event, args) => window.socket.send(JSON.stringify({ event, args }));
</script></body></html>`;

interface Msg {
  event: string;
  args?: string[];
}

describe.skipIf(!haveChromium)('console websocket from headless Chromium', () => {
  let tp: TestPanel;
  let a: TestNode;
  let b: TestNode;
  let site: HttpServer;
  let origin: string;
  let browser: Browser;
  let page: Page;
  let uuid: string;

  beforeAll(async () => {
    const port = await freePort();
    origin = `http://127.0.0.1:${port}`;
    site = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(PAGE);
    });
    await new Promise<void>((resolve) => site.listen(port, '127.0.0.1', resolve));
    tp = await startPanel();
    [a, b] = await Promise.all([
      startNode(tp, { name: 'browser-a', config: { allowed_origins: [origin] } }),
      startNode(tp, { name: 'browser-b', config: { allowed_origins: [origin] } }),
    ]);
    const s = await tp.panel.admin.createServer({
      node_id: a.id,
      ...ECHO_SERVER,
      stop: { type: 'command', value: 'stop' },
      skip_egg_scripts: true,
    });
    uuid = s.uuid;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  });
  // A page per test, closed even when the test fails: closing it closes the sockets it opened.
  beforeEach(async () => {
    page = await browser.newPage();
  });
  afterEach(async () => {
    await page?.close();
  });
  afterAll(async () => {
    await browser?.close();
    await Promise.all([a?.stop(), b?.stop()]);
    await tp?.close();
    await new Promise((resolve) => site?.close(resolve));
  });

  const received = (): Promise<Msg[]> => page.evaluate(() => (globalThis as unknown as { received: Msg[] }).received);
  async function waitForMessage(event: string, arg?: string, timeout = 20_000): Promise<void> {
    await page.waitForFunction(
      ([e, v]) =>
        (globalThis as unknown as { received: Msg[] }).received.some((m) => m.event === e && (v === null || m.args?.[0] === v)),
      [event, arg ?? null] as const,
      { timeout, polling: 50 },
    );
  }

  it('authenticates, sends a command, sees its console output and the transfer status', async () => {
    const power = await a.api('POST', `/api/servers/${uuid}/power`, { action: 'start' });
    expect(power.status).toBe(202);
    await a.waitForState(uuid, 'running');

    await page.goto(`${origin}/console.html`);
    const { data } = await tp.panel.admin.websocketToken(uuid, {});
    expect(data.socket).toBe(`${a.url.replace(/^http/, 'ws')}/api/servers/${uuid}/ws`);
    await page.evaluate(([url, token]) => (globalThis as unknown as { connect: (u: string, t: string) => Promise<boolean> }).connect(url, token), [
      data.socket,
      data.token,
    ] as const);
    await waitForMessage('auth success');
    await waitForMessage('status', 'running');

    await page.evaluate(() => (globalThis as unknown as { emit: (e: string, a: string[]) => void }).emit('send command', ['hello browser']));
    await waitForMessage('console output', 'got hello browser');

    await tp.panel.admin.startTransfer(uuid, { node_id: b.id });
    await waitForMessage('transfer.status');
    await waitForMessage('transfer status', 'processing');
    const events = (await received()).map((m) => m.event);
    expect(events.slice(0, 2)).toEqual(['auth success', 'status']);
    expect(events).toContain('transfer logs');
    // after the Panel deleted the server on the source: `deleted`, then the close frame
    await page.waitForFunction(() => (globalThis as unknown as { socketClosed: unknown }).socketClosed !== null, undefined, { timeout: 30_000 });
    const closed = await page.evaluate(() => (globalThis as unknown as { socketClosed: { code: number; reason: string } }).socketClosed);
    expect(closed).toEqual({ code: 1001, reason: 'server deleted' });
    expect((await received()).at(-1)).toEqual({ event: 'deleted', args: ['null'] });
  });
});
