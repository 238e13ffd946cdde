import type { DenyList, WsClaims } from './token.js';

/** What the hub needs from one open socket. */
export interface HubConnection {
  readonly serverUuid: string;
  /** The `user_uuid` of the stored token, once authenticated. */
  readonly userUuid: string | undefined;
  /** Close frame 1001 `server deleted` (docs/protocol.md W16.3). */
  closeDeleted(): void;
  /** Plain connection close without a close frame (clients see 1006). */
  terminate(): void;
  /** Called about once a second: a socket whose writes are stuck past the deadline is terminated. */
  checkWriteDeadline(now: number): void;
}

/** Sockets per server before new handshakes are refused (newer upstream). */
export const MAX_SOCKETS_PER_SERVER = 30;

/**
 * The registry of open console sockets and the in-memory deny-lists (docs/protocol.md W17.5): jtis
 * from `POST /api/servers/:server/ws/deny` and (server, user) pairs from
 * `POST /api/deauthorize-user`.
 */
export class WebsocketHub implements DenyList {
  /** jti → unix ms of the denial. */
  private readonly deniedJtis = new Map<string, number>();
  /** `<server>:<user>` → unix ms of the denial. */
  private readonly deniedUsers = new Map<string, number>();
  private readonly sockets = new Map<string, Set<HubConnection>>();
  private sweeper: NodeJS.Timeout | undefined;

  constructor(private readonly now: () => number = Date.now) {}

  denyJtis(jtis: string[]): void {
    const t = this.now();
    for (const jti of jtis) if (typeof jti === 'string' && jti !== '') this.deniedJtis.set(jti, t);
  }

  /** Revokes the user's tokens for the server (iat ≤ now) and closes the user's open sockets there. */
  deauthorizeUser(server: string, user: string): void {
    this.deniedUsers.set(`${server}:${user}`, this.now());
    for (const c of [...(this.sockets.get(server) ?? [])]) {
      if (c.userUuid === user) c.terminate();
    }
  }

  /** Closes every socket of the server with 1001 `server deleted` (after `deleted` was published). */
  closeServer(server: string): void {
    for (const c of [...(this.sockets.get(server) ?? [])]) c.closeDeleted();
  }

  /**
   * Deny-listed (docs/protocol.md W17.5): a denied jti or (server, user) pair whose token was
   * issued in or before the second of the denial. Tokens that lack `user_uuid` are refused once any
   * denial exists for their server's users, since they cannot be told apart.
   */
  isDenied(claims: WsClaims): boolean {
    const iat = claims.iat;
    if (iat === undefined) return true;
    if (claims.jti !== undefined) {
      const at = this.deniedJtis.get(claims.jti);
      if (at !== undefined && iat <= Math.floor(at / 1000)) return true;
    }
    if (this.deniedUsers.size > 0 && claims.serverUuid !== undefined) {
      if (claims.userUuid === undefined) {
        for (const key of this.deniedUsers.keys()) if (key.startsWith(`${claims.serverUuid}:`)) return true;
      } else {
        const at = this.deniedUsers.get(`${claims.serverUuid}:${claims.userUuid}`);
        if (at !== undefined && iat <= Math.floor(at / 1000)) return true;
      }
    }
    return false;
  }

  register(c: HubConnection): void {
    let set = this.sockets.get(c.serverUuid);
    if (!set) this.sockets.set(c.serverUuid, (set = new Set()));
    set.add(c);
    if (!this.sweeper) {
      this.sweeper = setInterval(() => {
        const t = Date.now();
        for (const s of this.sockets.values()) for (const conn of [...s]) conn.checkWriteDeadline(t);
      }, 1000);
      this.sweeper.unref();
    }
  }

  unregister(c: HubConnection): void {
    const set = this.sockets.get(c.serverUuid);
    if (!set) return;
    set.delete(c);
    if (set.size === 0) this.sockets.delete(c.serverUuid);
    if (this.sockets.size === 0 && this.sweeper) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }

  /** Open sockets of one server (the handshake cap). */
  count(server: string): number {
    return this.sockets.get(server)?.size ?? 0;
  }

  /** Open sockets of the node (metrics). */
  get openSockets(): number {
    let n = 0;
    for (const s of this.sockets.values()) n += s.size;
    return n;
  }
}
