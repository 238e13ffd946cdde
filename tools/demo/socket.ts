import { WebSocket } from 'ws';

export interface SocketEvent {
  event: string;
  args: string[];
}

/**
 * A client of a server's console websocket (`GET /api/servers/:uuid/ws`): sends the `auth` event
 * with the Panel-signed JWT and hands every event to `onEvent`.
 */
export class ServerSocket {
  private ws: WebSocket | undefined;
  authenticated = false;
  closed = false;

  constructor(
    private readonly url: string,
    private readonly origin: string,
    private readonly token: () => string,
    private readonly onEvent: (e: SocketEvent) => void,
    private readonly onClose: () => void = () => {},
  ) {}

  /** Resolves once `auth success` arrived; rejects on a refused handshake, a `jwt error` or a timeout. */
  connect(timeoutMs = 5000): Promise<void> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url, { headers: { Origin: this.origin }, handshakeTimeout: timeoutMs });
      this.ws = ws;
      let settled = false;
      const done = (err?: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) {
          ws.terminate();
          reject(err);
        } else resolve();
      };
      const timer = setTimeout(() => done(new Error('websocket authentication timed out')), timeoutMs);
      ws.on('open', () => ws.send(JSON.stringify({ event: 'auth', args: [this.token()] })));
      ws.on('unexpected-response', (_req, res) => done(new Error(`websocket handshake refused: HTTP ${res.statusCode}`)));
      ws.on('error', (err) => done(err));
      ws.on('close', () => {
        this.closed = true;
        this.authenticated = false;
        done(new Error('websocket closed before authentication'));
        this.onClose();
      });
      ws.on('message', (data) => {
        let msg: { event?: unknown; args?: unknown };
        try {
          msg = JSON.parse((Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer)).toString('utf8')) as typeof msg;
        } catch {
          return;
        }
        if (typeof msg.event !== 'string') return;
        const args = Array.isArray(msg.args) ? msg.args.map((a) => String(a)) : [];
        if (msg.event === 'auth success') {
          this.authenticated = true;
          done();
        } else if (msg.event === 'jwt error' && !this.authenticated) {
          done(new Error(`websocket token refused: ${args[0] ?? ''}`));
          return;
        } else if (msg.event === 'token expiring') {
          this.send('auth', [this.token()]);
        }
        this.onEvent({ event: msg.event, args });
      });
    });
  }

  send(event: string, args: string[] = []): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ event, args }));
  }

  close(): void {
    if (!this.ws) return;
    this.closed = true;
    try {
      this.ws.close(1000);
    } catch {}
    const ws = this.ws;
    setTimeout(() => ws.terminate(), 500).unref();
  }
}
