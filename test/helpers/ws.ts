import { afterEach } from 'vitest';
import WebSocket from 'ws';
import { waitFor } from './harness.js';

export interface WsEvent {
  event: string;
  args?: string[];
}

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
