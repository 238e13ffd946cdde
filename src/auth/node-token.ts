import { timingSafeEqual, createHash } from 'node:crypto';

export type NodeTokenResult = 'ok' | 'missing' | 'forbidden';

/**
 * The node-token check of docs/protocol.md W2.1: split the Authorization header on the first space;
 * the first part must be exactly `Bearer`; the rest is compared in constant time with the node
 * token. An empty configured token never matches.
 */
export function checkNodeToken(header: string | undefined, token: string): NodeTokenResult {
  if (!header) return 'missing';
  const i = header.indexOf(' ');
  if (i === -1 || header.slice(0, i) !== 'Bearer') return 'missing';
  const presented = header.slice(i + 1);
  if (!token) return 'forbidden';
  // Hash both sides so the comparison is constant-time whatever the lengths.
  const a = createHash('sha256').update(presented).digest();
  const b = createHash('sha256').update(token).digest();
  return timingSafeEqual(a, b) && presented.length === token.length ? 'ok' : 'forbidden';
}
