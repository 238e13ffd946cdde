/**
 * Errors are values with a code, mapped to HTTP in one place (src/http/errors.ts).
 * `status` and `body` give the exact answer when the error reaches an HTTP client.
 */
export type ErrorCode =
  | 'AUTH_MISSING'
  | 'AUTH_INVALID'
  | 'AUTH_SCOPE'
  | 'BAD_SUBJECT'
  | 'TRANSFER_IN_PROGRESS'
  | 'SERVER_EXISTS'
  | 'PANEL'
  | 'BAD_REQUEST'
  | 'CHECKSUM_MISMATCH'
  | 'BAD_ARCHIVE'
  | 'DISK_FULL'
  | 'CANCELLED'
  | 'IDLE_TIMEOUT'
  | 'STOP_TIMEOUT'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'INTERNAL';

export class WingsError extends Error {
  readonly code: ErrorCode;
  /** HTTP status when this error answers a request. */
  readonly status: number;

  constructor(code: ErrorCode, message: string, status = defaultStatus(code), options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'WingsError';
    this.code = code;
    this.status = status;
  }
}

export function defaultStatus(code: ErrorCode): number {
  switch (code) {
    case 'AUTH_MISSING':
    case 'AUTH_INVALID':
      return 401;
    case 'AUTH_SCOPE':
      return 403;
    case 'BAD_SUBJECT':
    case 'BAD_REQUEST':
    case 'CHECKSUM_MISMATCH':
    case 'BAD_ARCHIVE':
      return 400;
    case 'NOT_FOUND':
      return 404;
    case 'TRANSFER_IN_PROGRESS':
    case 'SERVER_EXISTS':
    case 'CANCELLED':
    case 'CONFLICT':
      return 409;
    case 'PANEL':
      return 502;
    case 'DISK_FULL':
      return 507;
    case 'IDLE_TIMEOUT':
      return 408;
    case 'STOP_TIMEOUT':
    case 'INTERNAL':
      return 500;
  }
}

export function isWingsError(err: unknown, code?: ErrorCode): err is WingsError {
  return err instanceof WingsError && (code === undefined || err.code === code);
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
