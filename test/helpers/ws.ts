import { afterEach } from 'vitest';
import WebSocket from 'ws';
import { waitFor, type TestNode } from './harness.js';

export interface WsEvent {
  event: string;
  args?: string[];
}

/** The Origin that the websocket tests' daemons list in `allowed_origins`. */
export const TEST_ORIGIN = 'http://allowed.test';

const openSockets = new Set<WebSocket>();

/**
 * Registers a client socket so that it is closed after the current test even when the test fails:
 * a socket left open past a failed test counts against the daemon's 30-socket cap (and keeps its
 * server's output flowing) in every later test of the file.
 */
export function trackSocket(ws: WebSocket): WebSocket {
  openSockets.add(ws);
  ws.once('close', () => openSockets.delete(ws));
  return ws;
}

/** Terminates every tracked socket that is still open and resolves once each has emitted `close`. */
export async function closeTrackedSockets(): Promise<void> {
  const closing = [...openSockets].map(
    (ws) =>
      new Promise<void>((resolve) => {
        if (ws.readyState === WebSocket.CLOSED) return resolve();
        ws.once('close', () => resolve());
        // terminating a socket that is still connecting emits `error` before `close`
        ws.on('error', () => {});
        ws.terminate();
      }),
  );
  openSockets.clear();
  await Promise.all(closing);
}

// A hook of the importing file's root suite (registered while the file is collected): it runs after
// each test, after the test's own afterEach hooks. Sockets are opened per test; none outlives one.
if (process.env.VITEST) afterEach(closeTrackedSockets);

/** Console sockets a daemon holds open (its `wings_websocket_connections` gauge). */
export async function daemonSockets(n: TestNode): Promise<number> {
  const r = await n.api('GET', '/metrics');
  const m = /^wings_websocket_connections (\d+)$/m.exec(r.text);
  if (r.status !== 200 || !m) throw new Error(`no websocket gauge in /metrics (${r.status})`);
  return Number(m[1]);
}

/**
 * For an afterEach: closes what the test opened, then waits until the daemons have let go of it
 * too, so that the next test starts with no socket open anywhere.
 */
export async function closeSocketsOf(nodes: Iterable<TestNode>): Promise<void> {
  await closeTrackedSockets();
  const list = [...nodes];
  await waitFor(async () => (await Promise.all(list.map(daemonSockets))).every((n) => n === 0), {
    what: 'the daemons to close every socket of the test',
  });
}

export class HandshakeError extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
    readonly headers: Record<string, string | string[] | undefined>,
  ) {
    super(`handshake answered ${status}: ${body}`);
  }
}

/** A test client of the console websocket: records every message; helpers wait for events after a mark. */
export class WsClient {
  readonly messages: WsEvent[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  upgradeHeaders: Record<string, string | string[] | undefined> = {};

  constructor(readonly ws: WebSocket) {
    trackSocket(ws);
    ws.on('message', (data, isBinary) => {
      if (isBinary) {
        this.messages.push({ event: '<binary>' });
        return;
      }
      this.messages.push(JSON.parse((data as Buffer).toString('utf8')) as WsEvent);
    });
    this.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    ws.on('error', () => {});
  }

  /** Opens the socket; a refused handshake rejects with a HandshakeError. */
  static open(url: string, headers: Record<string, string> = { Origin: TEST_ORIGIN }, { perMessageDeflate = true } = {}): Promise<WsClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { headers, perMessageDeflate });
      const client = new WsClient(ws);
      ws.once('upgrade', (res) => (client.upgradeHeaders = res.headers));
      ws.once('open', () => resolve(client));
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => reject(new HandshakeError(res.statusCode ?? 0, body, res.headers)));
      });
      ws.once('error', reject);
    });
  }

  send(event: string, ...args: (string | null)[]): void {
    this.ws.send(JSON.stringify(args.length ? { event, args } : { event }));
  }

  mark(): number {
    return this.messages.length;
  }

  find(event: string, from = 0, pred: (m: WsEvent) => boolean = () => true): WsEvent | undefined {
    return this.messages.slice(from).find((m) => m.event === event && pred(m));
  }

  async expectEvent(event: string, opts: { from?: number; timeoutMs?: number; pred?: (m: WsEvent) => boolean } = {}): Promise<WsEvent> {
    try {
      return await waitFor(() => this.find(event, opts.from ?? 0, opts.pred), {
        timeoutMs: opts.timeoutMs ?? 10_000,
        what: `event ${event}`,
      });
    } catch (err) {
      throw new Error(`${String(err)}; got ${JSON.stringify(this.messages.slice(opts.from ?? 0).slice(-8))}`);
    }
  }

  events(from = 0): string[] {
    return this.messages.slice(from).map((m) => m.event);
  }

  close(): void {
    this.ws.close();
  }
}

/** A console-websocket client that records every event it receives. */
export class EventRecorder {
  readonly events: WsEvent[] = [];
  closed = false;

  private constructor(readonly ws: WebSocket) {
    trackSocket(ws);
    ws.on('message', (data) => {
      try {
        this.events.push(JSON.parse((data as Buffer).toString()) as WsEvent);
      } catch {}
    });
    ws.on('close', () => (this.closed = true));
  }

  /** Connects with the Panel's origin and authenticates with `token`; resolves after `auth success`. */
  static async connect(nodeUrl: string, uuid: string, token: string, origin: string): Promise<EventRecorder> {
    const ws = new WebSocket(`${nodeUrl.replace(/^http/, 'ws')}/api/servers/${uuid}/ws`, { headers: { Origin: origin } });
    const rec = new EventRecorder(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    ws.send(JSON.stringify({ event: 'auth', args: [token] }));
    await rec.waitFor((e) => e.event === 'auth success', 'auth success');
    return rec;
  }

  named(name: string): string[] {
    return this.events.filter((e) => e.event === name).map((e) => e.args?.[0] ?? '');
  }

  async waitFor(pred: (e: WsEvent) => boolean, what: string, timeoutMs = 15_000): Promise<WsEvent> {
    return waitFor(() => this.events.find(pred), { what, timeoutMs, intervalMs: 10 });
  }

  close(): void {
    this.ws.close();
  }
}
