import { webcrypto } from 'node:crypto';
import { jwtVerify, errors as joseErrors, decodeProtectedHeader, type JWTPayload } from 'jose';

/** Verifies Panel-signed HS256 tokens with the node token as key; the key is imported once per token value. */
export class JwtVerifier {
  private keyFor = '';
  private key: Promise<webcrypto.CryptoKey> | undefined;

  constructor(private readonly getSecret: () => string) {}

  private cryptoKey(): Promise<webcrypto.CryptoKey> {
    const secret = this.getSecret();
    if (!this.key || this.keyFor !== secret) {
      this.keyFor = secret;
      this.key = webcrypto.subtle.importKey(
        'raw',
        new TextEncoder().encode(secret),
        { name: 'HMAC', hash: 'SHA-256' },
        false,
        ['verify'],
      );
    }
    return this.key;
  }

  /**
   * HS256 only; `exp` required and strict (expired once the current second is past it); `nbf`
   * honoured with `leewaySeconds`. Throws JwtError with a
   * reason: 'malformed' | 'signature' | 'expired' | 'nbf' | 'alg' | 'claims'.
   */
  async verify(token: string, opts: { leewaySeconds?: number; requireExp?: boolean } = {}): Promise<JWTPayload> {
    if (!this.getSecret()) throw new JwtError('signature', 'jwt: no node token configured');
    try {
      const header = decodeProtectedHeader(token);
      if (header.alg !== 'HS256') throw new JwtError('alg', `jwt: algorithm ${String(header.alg)} is not allowed`);
    } catch (err) {
      if (err instanceof JwtError) throw err;
      throw new JwtError('malformed', 'jwt: malformed token');
    }
    try {
      const { payload } = await jwtVerify(token, await this.cryptoKey(), {
        algorithms: ['HS256'],
        requiredClaims: opts.requireExp === false ? [] : ['exp'],
        clockTolerance: opts.leewaySeconds ?? 0,
      });
      if (typeof payload.exp === 'number' && Math.floor(Date.now() / 1000) > payload.exp) {
        throw new JwtError('expired', 'jwt: exp claim is invalid');
      }
      return payload;
    } catch (err) {
      if (err instanceof JwtError) throw err;
      if (err instanceof joseErrors.JWTExpired) throw new JwtError('expired', 'jwt: exp claim is invalid');
      if (err instanceof joseErrors.JWTClaimValidationFailed) {
        if (err.claim === 'nbf') throw new JwtError('nbf', 'jwt: nbf claim is invalid');
        if (err.claim === 'exp') throw new JwtError('expired', 'jwt: exp claim is invalid');
        throw new JwtError('claims', `jwt: ${err.claim} claim is invalid`);
      }
      if (err instanceof joseErrors.JWSSignatureVerificationFailed) {
        throw new JwtError('signature', 'jwt: HMAC verification failed');
      }
      if (err instanceof joseErrors.JOSEAlgNotAllowed) throw new JwtError('alg', 'jwt: algorithm is not allowed');
      throw new JwtError('malformed', 'jwt: malformed token');
    }
  }
}

export class JwtError extends Error {
  constructor(
    readonly reason: 'malformed' | 'signature' | 'expired' | 'nbf' | 'alg' | 'claims',
    message: string,
  ) {
    super(message);
    this.name = 'JwtError';
  }
}
