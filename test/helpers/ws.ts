import WebSocket from 'ws';
import { waitFor } from './harness.js';

export interface WsEvent {
  event: string;
  args?: string[];
}

/** A console-websocket client that records every event it receives. */
export class EventRecorder {
  readonly events: WsEvent[] = [];
  closed = false;

  private constructor(readonly ws: WebSocket) {
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
