import type { JWTPayload } from 'jose';

/** The claims of a websocket token that the daemon uses (docs/protocol.md W17.1). */
export interface WsClaims {
  exp: number;
  iat: number | undefined;
  jti: string | undefined;
  serverUuid: string | undefined;
  userUuid: string | undefined;
  permissions: string[];
  scope: string | undefined;
}

/** Error texts the Panel UI matches on (docs/protocol.md W17.3, W20). */
export const JWT_NO_TOKEN = 'jwt: no jwt present';
export const JWT_EXPIRED = 'jwt: exp claim is invalid';
export const JWT_DENIED = 'jwt: created too far in past (denylist)';
export const JWT_NO_CONNECT = 'jwt: missing connect permission';
export const JWT_UUID_MISMATCH = 'jwt: server uuid mismatch';

export const JWT_CLASS_ERRORS: ReadonlySet<string> = new Set([
  JWT_NO_TOKEN,
  JWT_EXPIRED,
  JWT_DENIED,
  JWT_NO_CONNECT,
  JWT_UUID_MISMATCH,
]);

export function claimsFromPayload(p: JWTPayload): WsClaims {
  const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
  const perms = Array.isArray(p.permissions) ? p.permissions.filter((x): x is string => typeof x === 'string') : [];
  return {
    exp: typeof p.exp === 'number' ? p.exp : 0,
    iat: typeof p.iat === 'number' ? p.iat : undefined,
    jti: str(p.jti),
    serverUuid: str(p.server_uuid),
    userUuid: str(p.user_uuid),
    permissions: perms,
    scope: typeof p.scope === 'string' ? p.scope : undefined,
  };
}

/** The deny-list view the token checks need (implemented by the hub). */
export interface DenyList {
  isDenied(claims: WsClaims): boolean;
}

/**
 * `HasPermission` (docs/protocol.md W17.4): exact match, or `*` for anything not starting with
 * `admin`; a deny-listed token has no permissions.
 */
export function hasPermission(claims: WsClaims, permission: string, deny: DenyList): boolean {
  if (deny.isDenied(claims)) return false;
  if (claims.permissions.includes(permission)) return true;
  return claims.permissions.includes('*') && !permission.startsWith('admin');
}

/** `scope`, when present (newer Panels), must list `websocket`. */
function scopeAllows(claims: WsClaims): boolean {
  if (claims.scope === undefined) return true;
  return claims.scope.split(/\s+/).includes('websocket');
}

/**
 * "Token currently valid" (docs/protocol.md W17.3): the first failing check's text, or undefined.
 * `nowSeconds` is whole seconds; a token is valid up to and including its `exp` second.
 */
export function tokenProblem(
  claims: WsClaims | undefined,
  server: string,
  deny: DenyList,
  nowSeconds = Math.floor(Date.now() / 1000),
): string | undefined {
  if (!claims) return JWT_NO_TOKEN;
  if (nowSeconds > claims.exp) return JWT_EXPIRED;
  if (deny.isDenied(claims)) return JWT_DENIED;
  if (!hasPermission(claims, 'websocket.connect', deny) || !scopeAllows(claims)) return JWT_NO_CONNECT;
  if (claims.serverUuid !== server) return JWT_UUID_MISMATCH;
  return undefined;
}

/** The permission an outbound event needs besides a valid token (docs/protocol.md W19.1, D2.4, D8.3). */
export function outboundPermission(event: string): string | undefined {
  if (event === 'install output') return 'admin.websocket.install';
  if (event.startsWith('backup completed')) return 'backup.read';
  if (event === 'transfer logs' || event === 'transfer.logs' || event === 'transfer.progress') {
    return 'admin.websocket.transfer';
  }
  return undefined;
}

/** The permission a `set state` action needs; undefined for an unknown action (not checked). */
export function powerPermission(action: string): string | undefined {
  switch (action) {
    case 'start':
      return 'control.start';
    case 'stop':
    case 'kill':
      return 'control.stop';
    case 'restart':
      return 'control.restart';
    default:
      return undefined;
  }
}
