import { createHash, createHmac } from 'node:crypto';
import { randomAlnum } from './state.js';

/**
 * Node JWTs as the Panel signs them (docs/protocol.md W24):
 * HS256 with the target node's daemon token, integer dates, `aud` as an array.
 */

export type JwtClaims = Record<string, unknown>;
export type JwtHeader = Record<string, unknown>;

function b64url(data: string | Buffer): string {
  return Buffer.from(data).toString('base64url');
}

/**
 * Signs `claims` with HS256 using `token` as the key. The header is `{"typ":"JWT","alg":"HS256"}`
 * followed by `header` (which may override both). Claims are serialised in the given order; a claim
 * whose value is `undefined` is left out.
 */
export function signNodeJwt(token: string, claims: JwtClaims, header: JwtHeader = {}): string {
  const h = b64url(JSON.stringify({ typ: 'JWT', alg: 'HS256', ...header }));
  const p = b64url(JSON.stringify(claims));
  const sig = createHmac('sha256', token).update(`${h}.${p}`).digest('base64url');
  return `${h}.${p}.${sig}`;
}

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** `<scheme>://<host>:<port>` of a node URL, with the port always explicit (the Panel's connection address). */
export function connectionAddress(url: string): string {
  const u = new URL(url);
  const port = u.port || (u.protocol === 'https:' ? '443' : '80');
  return `${u.protocol}//${u.hostname}:${port}`;
}

export interface BuildNodeTokenOptions {
  issuer: string;
  nodeUrl: string;
  identifier: string;
  /** seconds from now */
  expiresIn: number;
  subject?: string;
  custom?: JwtClaims;
  user?: { id: number; uuid: string };
  scope?: string;
  now?: number;
}

/** The Panel's NodeJWTService: claim order iss, aud, jti, iat, nbf, exp, sub, custom, user, unique_id. */
export function buildNodeTokenClaims(o: BuildNodeTokenOptions): { header: JwtHeader; claims: JwtClaims } {
  const now = o.now ?? nowSeconds();
  const claims: JwtClaims = {
    iss: o.issuer,
    aud: [connectionAddress(o.nodeUrl)],
    jti: o.identifier,
    iat: now,
    nbf: now - 300,
    exp: now + o.expiresIn,
  };
  if (o.subject !== undefined) claims.sub = o.subject;
  Object.assign(claims, o.custom ?? {});
  if (o.user) {
    claims.user_uuid = o.user.uuid;
    claims.user_id = o.user.id;
  }
  if (o.scope !== undefined) claims.scope = o.scope;
  claims.unique_id = randomAlnum(16);
  const header: JwtHeader = { jti: o.identifier };
  if (o.subject !== undefined) header.sub = o.subject;
  return { header, claims };
}

export function sha256Hex(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

export function md5Hex(s: string): string {
  return createHash('md5').update(s).digest('hex');
}

/** The transfer token (docs/protocol.md W24.3): key = destination token, jti = sha256(uuid), sub = uuid, 15 min. */
export function transferToken(opts: {
  issuer: string;
  destinationUrl: string;
  destinationToken: string;
  serverUuid: string;
  scope?: string;
  /** claim overrides; a `null` value removes the claim */
  overrides?: JwtClaims;
  headerOverrides?: JwtHeader;
  /** sign with this key instead of the destination token (bad-signature tests) */
  secret?: string;
}): string {
  const { header, claims } = buildNodeTokenClaims({
    issuer: opts.issuer,
    nodeUrl: opts.destinationUrl,
    identifier: sha256Hex(opts.serverUuid),
    expiresIn: 900,
    subject: opts.serverUuid,
    scope: opts.scope,
  });
  applyOverrides(claims, opts.overrides);
  const h = { ...header };
  applyOverrides(h, opts.headerOverrides);
  return signNodeJwt(opts.secret ?? opts.destinationToken, claims, h);
}

export const ROOT_ADMIN_PERMISSIONS = ['*', 'admin.websocket.errors', 'admin.websocket.install', 'admin.websocket.transfer'];

/** The websocket token (docs/protocol.md W24.2): jti = md5(user id ‖ server uuid), 10 min by default. */
export function websocketToken(opts: {
  issuer: string;
  nodeUrl: string;
  nodeToken: string;
  serverUuid: string;
  user: { id: number; uuid: string };
  permissions: string[];
  expiresIn?: number;
  scope?: string;
  overrides?: JwtClaims;
}): string {
  const { header, claims } = buildNodeTokenClaims({
    issuer: opts.issuer,
    nodeUrl: opts.nodeUrl,
    identifier: md5Hex(`${opts.user.id}${opts.serverUuid}`),
    expiresIn: opts.expiresIn ?? 600,
    custom: { server_uuid: opts.serverUuid, permissions: opts.permissions },
    user: opts.user,
    scope: opts.scope,
  });
  applyOverrides(claims, opts.overrides);
  return signNodeJwt(opts.nodeToken, claims, header);
}

function applyOverrides(target: Record<string, unknown>, overrides?: Record<string, unknown>): void {
  if (!overrides) return;
  for (const [k, v] of Object.entries(overrides)) {
    if (v === null) delete target[k];
    else target[k] = v;
  }
}
