import type { JWTPayload } from 'jose';
import { JwtError, type JwtVerifier } from '../auth/jwt.js';
import { WingsError } from '../errors.js';
import { isUuidV4 } from '../uuid.js';

const FOREIGN_CLAIMS = ['server_uuid', 'user_uuid', 'permissions', 'file_path', 'backup_uuid'];
const NO_AUTH = 'The required authorization heads were not present in the request.';

/** Parses a UUID the way Go's uuid.Parse does (canonical, `urn:uuid:`, braces, 32 hex) → lowercase canonical. */
export function canonicalUuid(input: unknown): string | null {
  if (typeof input !== 'string') return null;
  let s = input.trim();
  if (s.toLowerCase().startsWith('urn:uuid:')) s = s.slice(9);
  if (s.startsWith('{') && s.endsWith('}')) s = s.slice(1, -1);
  if (/^[0-9a-fA-F]{32}$/.test(s)) s = `${s.slice(0, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}-${s.slice(16, 20)}-${s.slice(20)}`;
  if (!/^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/.test(s)) return null;
  return s.toLowerCase();
}

/**
 * The checks of docs/protocol.md D4 that create nothing: the Authorization header, the token's
 * signature and times, its purpose, its subject. Returns the server UUID; throws a coded WingsError.
 */
export async function authenticateTransfer(jwt: JwtVerifier, header: string | undefined): Promise<string> {
  if (!header) throw new WingsError('AUTH_MISSING', NO_AUTH);
  const i = header.indexOf(' ');
  if (i === -1 || header.slice(0, i) !== 'Bearer' || header.slice(i + 1) === '') throw new WingsError('AUTH_MISSING', NO_AUTH);
  let claims: JWTPayload;
  try {
    claims = await jwt.verify(header.slice(i + 1), { leewaySeconds: 60 });
  } catch (err) {
    throw new WingsError('AUTH_INVALID', err instanceof JwtError ? `Invalid transfer token: ${err.message}` : 'Invalid transfer token.');
  }
  if (claims.scope !== undefined) {
    const scopes = typeof claims.scope === 'string' ? claims.scope.split(/\s+/) : [];
    if (!scopes.includes('transfer')) throw new WingsError('AUTH_SCOPE', 'The token is not a transfer token (scope).');
  }
  for (const c of FOREIGN_CLAIMS) {
    if (c in claims) throw new WingsError('AUTH_SCOPE', `The token is not a transfer token (it carries "${c}").`);
  }
  if (claims.sub === undefined) throw new WingsError('AUTH_SCOPE', 'The token is not a transfer token (no subject).');
  const uuid = canonicalUuid(claims.sub);
  if (!uuid || !isUuidV4(uuid)) throw new WingsError('BAD_SUBJECT', 'The token subject is not a server UUID (version 4).');
  return uuid;
}
