// Over 400 lines: one console socket's life (auth, permission checks per event, the outbound
// queue with its write deadline, throttles and event fan-out) shares the socket's state; split
// it, and each part would reach into the others' fields. docs/architecture.md, websocket/.
import { randomUUID } from 'node:crypto';
import { decodeJwt, type JWTPayload } from 'jose';
import type { Logger } from 'pino';
import type { RawData, WebSocket } from 'ws';
import { JwtError } from '../auth/jwt.js';
import type { DaemonContext } from '../context.js';
import { WingsError, errorMessage, isWingsError } from '../errors.js';
import type { BusEvent } from '../server/events.js';
import { POWER_ACTIONS, type PowerAction, type Server } from '../server/server.js';
import type { HubConnection, WebsocketHub } from './hub.js';
import { ConnectionLimiter } from './limiter.js';
import {
  JWT_CLASS_ERRORS,
  JWT_EXPIRED,
  claimsFromPayload,
  hasPermission,
  outboundPermission,
  powerPermission,
  tokenProblem,
  type DenyList,
  type WsClaims,
} from './token.js';

export interface ConnectionOptions {
  /** Expiry watcher period (docs/protocol.md W18.3), 30 s. */
  expiryCheckMs: number;
  /** A socket that has not authenticated by then is closed, 30 s. */
  authTimeoutMs: number;
  /** A socket whose writes make no progress for this long is closed, 10 s. */
  writeDeadlineMs: number;
}

/** Text frames larger than this (after decompression) are dropped (docs/protocol.md W16.2). */
const MAX_TEXT_BYTES = 32 * 1024;
/** Lossy output (console / install lines) is queued once this much is waiting to be written. */
const HIGH_WATER_BYTES = 64 * 1024;
const MAX_PENDING_WRITES = 64;
const QUEUE_CAP = { console: 8, install: 4 } as const;
type LossyKind = keyof typeof QUEUE_CAP;

const GENERIC_ERROR = 'an unexpected error was encountered while handling this request';

interface Envelope {
  event: string;
  args?: string[];
}

/** Parses an inbound frame (docs/protocol.md W18.1); undefined means "drop silently". */
function parseEnvelope(text: string): { event: string; args: string[] } | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return undefined;
  const { event, args } = raw as { event?: unknown; args?: unknown };
  if (typeof event !== 'string') return undefined;
  if (args === undefined || args === null) return { event, args: [] };
  if (!Array.isArray(args)) return undefined;
  const out: string[] = [];
  for (const a of args) {
    if (a === null) out.push('');
    else if (typeof a === 'string') out.push(a);
    else return undefined;
  }
  return { event, args: out };
}

function rawToBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

/** A bus payload as a websocket argument: strings as is, null → "null", the rest JSON-encoded. */
function busArg(data: unknown): string {
  if (typeof data === 'string') return data;
  if (data === null || data === undefined) return 'null';
  return JSON.stringify(data);
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('timed out')), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (err) => {
        clearTimeout(t);
        reject(err);
      },
    );
  });
}

/** One console socket of one server: authentication, inbound events, outbound forwarding. */
export class WsConnection implements HubConnection {
  readonly id = randomUUID();
  private claims: WsClaims | undefined;
  private unsubscribe: (() => void) | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  private authTimer: NodeJS.Timeout | undefined;
  private pumpTimer: NodeJS.Timeout | undefined;
  private readonly limiter = new ConnectionLimiter();
  private readonly queues: Record<LossyKind, string[]> = { console: [], install: [] };
  private pendingWrites = 0;
  private lastWriteProgress = 0;
  private closed = false;
  private ended = false;
  private readonly deny: DenyList;
  private readonly log: Logger;
  private readonly onServerGone = (): void => this.closeDeleted();

  constructor(
    private readonly ws: WebSocket,
    private readonly server: Server,
    private readonly ctx: DaemonContext,
    private readonly hub: WebsocketHub,
    private readonly opts: ConnectionOptions,
  ) {
    const bootSeconds = Math.floor(ctx.bootTime / 1000);
    this.deny = {
      // docs/protocol.md W17.5: a token issued before this process booted (or without iat) is refused.
      isDenied: (c) => c.iat === undefined || c.iat < bootSeconds || hub.isDenied(c),
    };
    this.log = ctx.logger.child({ component: 'websocket', server: server.uuid, connection: this.id });
  }

  get serverUuid(): string {
    return this.server.uuid;
  }

  // HubConnection
  get userUuid(): string | undefined {
    return this.claims?.userUuid;
  }

  /** Wires the socket up; call right after the upgrade. */
  start(): void {
    this.hub.register(this);
    this.ws.on('message', (data, isBinary) => this.onFrame(data, isBinary));
    this.ws.on('close', (code) => {
      this.log.debug({ code }, 'websocket closed');
      this.cleanup();
    });
    this.ws.on('error', (err) => this.log.debug({ err }, 'websocket error'));
    if (this.server.lifetime.signal.aborted) {
      this.closeDeleted();
      return;
    }
    this.server.lifetime.signal.addEventListener('abort', this.onServerGone, { once: true });
    if (this.server.isSuspended) {
      this.ended = true;
      this.ws.close(4409, 'server is suspended');
      return;
    }
    this.authTimer = setTimeout(() => {
      if (!this.claims) {
        this.log.debug('websocket not authenticated in time');
        this.terminate();
      }
    }, this.opts.authTimeoutMs);
    this.authTimer.unref();
  }

  // ---------------------------------------------------------------- lifecycle

  closeDeleted(): void {
    if (this.closed || this.ended) return;
    this.stopForwarding();
    this.flushQueues();
    this.ended = true;
    try {
      this.ws.close(1001, 'server deleted');
    } catch {
      this.ws.terminate();
    }
  }

  terminate(): void {
    this.ended = true;
    this.stopForwarding();
    this.ws.terminate();
  }

  checkWriteDeadline(now: number): void {
    if (this.pendingWrites > 0 && now - this.lastWriteProgress > this.opts.writeDeadlineMs) {
      this.log.debug('websocket write deadline exceeded');
      this.terminate();
    }
  }

  private stopForwarding(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    if (this.expiryTimer) clearInterval(this.expiryTimer);
    this.expiryTimer = undefined;
  }

  private cleanup(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopForwarding();
    if (this.authTimer) clearTimeout(this.authTimer);
    if (this.pumpTimer) clearTimeout(this.pumpTimer);
    this.queues.console.length = 0;
    this.queues.install.length = 0;
    this.server.lifetime.signal.removeEventListener('abort', this.onServerGone);
    this.hub.unregister(this);
  }

  // ---------------------------------------------------------------- writing

  /** Serialised write of one frame (ws keeps the order); a write error closes the socket. */
  private write(frame: string): void {
    if (this.closed || this.ws.readyState !== this.ws.OPEN) return;
    if (this.pendingWrites === 0) this.lastWriteProgress = Date.now();
    this.pendingWrites++;
    this.ws.send(frame, (err) => {
      this.pendingWrites--;
      this.lastWriteProgress = Date.now();
      if (err) {
        if (!this.closed) this.terminate();
        return;
      }
      if (this.queues.console.length > 0 || this.queues.install.length > 0) this.pump();
    });
  }

  private sendRaw(msg: Envelope): void {
    this.write(JSON.stringify(msg));
  }

  private congested(): boolean {
    return this.ws.bufferedAmount >= HIGH_WATER_BYTES || this.pendingWrites >= MAX_PENDING_WRITES;
  }

  /** Console / install lines: a small bounded queue per socket, oldest dropped when it is full. */
  private enqueue(kind: LossyKind, frame: string): void {
    const q = this.queues[kind];
    if (q.length === 0 && !this.congested()) {
      this.write(frame);
      return;
    }
    q.push(frame);
    if (q.length > QUEUE_CAP[kind]) q.shift();
    this.schedulePump();
  }

  private schedulePump(): void {
    if (this.pumpTimer || this.closed) return;
    this.pumpTimer = setTimeout(() => {
      this.pumpTimer = undefined;
      this.pump();
    }, 10);
  }

  private pump(): void {
    while (!this.congested()) {
      const next = this.queues.console.shift() ?? this.queues.install.shift();
      if (next === undefined) return;
      this.write(next);
    }
    if (this.queues.console.length > 0 || this.queues.install.length > 0) this.schedulePump();
  }

  private flushQueues(): void {
    for (const frame of this.queues.console.splice(0)) this.write(frame);
    for (const frame of this.queues.install.splice(0)) this.write(frame);
  }

  /**
   * The outbound path (docs/protocol.md W19.1): the token is re-validated (a `jwt error` goes
   * instead when it fails), then the event's permission gate applies.
   */
  private deliver(event: string, args?: string[], lossy?: LossyKind): void {
    if (this.closed || this.ended) return;
    const problem = tokenProblem(this.claims, this.server.uuid, this.deny);
    if (problem) {
      this.sendRaw({ event: 'jwt error', args: [problem] });
      return;
    }
    const permission = outboundPermission(event);
    if (permission && !hasPermission(this.claims!, permission, this.deny)) return;
    const frame = JSON.stringify(args === undefined ? { event } : { event, args });
    if (lossy) this.enqueue(lossy, frame);
    else this.write(frame);
  }

  private onBusEvent(e: BusEvent): void {
    const colon = e.event.indexOf(':');
    const name = colon >= 0 ? e.event.slice(0, colon) : e.event;
    const lossy = name === 'console output' ? 'console' : name === 'install output' ? 'install' : undefined;
    if (name === 'deleted') {
      // The last event of a server: queued lines first, then `deleted`, then the close frame.
      this.flushQueues();
      this.deliver(name, [busArg(e.data)]);
      this.closeDeleted();
      return;
    }
    this.deliver(name, [busArg(e.data)], lossy);
  }

  /**
   * Error replies (docs/protocol.md W20): JWT-class errors as `jwt error`, the rest as
   * `daemon error` whose text is real only for tokens with `admin.websocket.errors` (or a busy
   * power lock).
   */
  private sendError(err: unknown): void {
    const eventId = randomUUID();
    const message = errorMessage(err);
    if (JWT_CLASS_ERRORS.has(message)) {
      this.log.debug({ eventId, err }, 'websocket token refused');
      this.sendRaw({ event: 'jwt error', args: [`Error Event [${eventId}]: ${message}`] });
      return;
    }
    this.log.warn({ eventId, err }, 'error while handling a websocket message');
    const visible =
      isWingsError(err, 'POWER_BUSY') ||
      (this.claims !== undefined && hasPermission(this.claims, 'admin.websocket.errors', this.deny));
    this.sendRaw({ event: 'daemon error', args: [`Error Event [${eventId}]: ${visible ? message : GENERIC_ERROR}`] });
  }

  // ---------------------------------------------------------------- reading

  private onFrame(data: RawData, isBinary: boolean): void {
    if (this.closed || this.ended) return;
    const admitted = this.limiter.admitFrame();
    if (!admitted.ok) {
      if (admitted.notify) this.sendRaw({ event: 'throttled', args: ['global'] });
      return;
    }
    if (isBinary) return;
    const buf = rawToBuffer(data);
    if (buf.length > MAX_TEXT_BYTES) return;
    const msg = parseEnvelope(buf.toString('utf8'));
    if (!msg) return;
    void this.handle(msg.event, msg.args).catch((err) => this.sendError(err));
  }

  private async handle(event: string, args: string[]): Promise<void> {
    if (this.server.isSuspended) {
      this.terminate();
      return;
    }
    const admitted = this.limiter.admitEvent(event);
    if (!admitted.ok) {
      if (admitted.notify) this.sendRaw({ event: 'throttled', args: [event] });
      return;
    }
    if (event === 'auth') return this.authenticate(args.join(''));
    const problem = tokenProblem(this.claims, this.server.uuid, this.deny);
    if (problem) {
      this.sendRaw({ event: 'jwt error', args: [problem] });
      return;
    }
    const claims = this.claims!;
    switch (event) {
      case 'set state':
        return this.setState(claims, args.join(''));
      case 'send command':
        return this.sendCommand(claims, args.join(''));
      case 'send logs':
        return this.sendLogs();
      case 'send stats':
        this.deliver('stats', [JSON.stringify(this.server.utilization())]);
        return;
      default:
        return;
    }
  }

  private async authenticate(token: string): Promise<void> {
    let payload: JWTPayload;
    try {
      payload = await this.ctx.jwt.verify(token, { requireExp: true, leewaySeconds: 1 });
    } catch (err) {
      if (err instanceof JwtError && err.reason === 'expired') throw new Error(JWT_EXPIRED);
      // Wings does not check nbf; jose reports it only after the signature was verified.
      if (err instanceof JwtError && err.reason === 'nbf') payload = decodeJwt(token);
      else throw err;
    }
    if (this.closed || this.ended) return;
    const claims = claimsFromPayload(payload);
    const problem = tokenProblem(claims, this.server.uuid, this.deny);
    if (problem) throw new Error(problem);
    const first = this.claims === undefined;
    this.claims = claims;
    this.sendRaw({ event: 'auth success' });
    if (!first) return;
    if (this.authTimer) clearTimeout(this.authTimer);
    this.authTimer = undefined;
    this.unsubscribe = this.server.events.subscribe((e) => this.onBusEvent(e));
    this.expiryTimer = setInterval(() => this.checkExpiry(), this.opts.expiryCheckMs);
    this.expiryTimer.unref();
    this.deliver('status', [this.server.state]);
    // docs/protocol.md D2.5: a socket that authenticates during a transfer learns its state first.
    const transfer = this.ctx.transfers.outgoing(this.server.uuid) ?? this.ctx.transfers.incoming(this.server.uuid);
    if (transfer) this.deliver('transfer.status', [transfer.state]);
    if (this.server.state === 'offline' && !this.server.installing && !this.server.transferring) {
      await withTimeout(this.server.disk.refresh(), 5000).catch(() => {});
      this.deliver('stats', [JSON.stringify(this.server.utilization())]);
    }
  }

  private checkExpiry(): void {
    const claims = this.claims;
    if (!claims) return;
    const left = claims.exp - Math.floor(Date.now() / 1000);
    if (left > 0 && left <= 60) this.deliver('token expiring');
    else if (left <= 0) this.deliver('token expired');
  }

  private async setState(claims: WsClaims, action: string): Promise<void> {
    const permission = powerPermission(action);
    if (permission && !hasPermission(claims, permission, this.deny)) return;
    if (!(POWER_ACTIONS as readonly string[]).includes(action)) {
      throw new Error('attempting to handle unknown power action');
    }
    await this.server.handlePowerAction(action as PowerAction, 0, claims.userUuid ? `websocket user ${claims.userUuid}` : 'websocket');
    this.log.info({ event: `server:power.${action}`, user: claims.userUuid }, 'power action via websocket');
  }

  private async sendCommand(claims: WsClaims, command: string): Promise<void> {
    if (!hasPermission(claims, 'control.console', this.deny)) return;
    const state = this.server.state;
    if (state === 'offline') return;
    if (state === 'starting' && !this.server.environment.isAttached) return;
    if (this.server.transferring) throw new WingsError('SERVER_TRANSFERRING', 'server is currently being transferred');
    await this.server.sendCommand(command);
    this.log.info({ event: 'server:console.command', user: claims.userUuid, command }, 'console command via websocket');
  }

  private async sendLogs(): Promise<void> {
    let running: boolean;
    try {
      running = await withTimeout(this.server.environment.isRunning(), 5000);
    } catch {
      return;
    }
    if (!running) return;
    const lines = await this.server.environment.readLog(this.ctx.config().system.websocket_log_count);
    for (const line of lines) this.deliver('console output', [line]);
  }
}
