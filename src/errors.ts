/**
 * Errors are values with a code. Domain modules throw a `WingsError` with a code and a message and
 * know nothing of HTTP; one table in src/http/error-map.ts turns each code into a status and a body
 * (docs/protocol.md W3.3).
 */
export type ErrorCode =
  // Transfer contract codes: answered as {"error", "code"}.
  | 'AUTH_MISSING'
  | 'AUTH_INVALID'
  | 'AUTH_SCOPE'
  | 'BAD_SUBJECT'
  | 'TRANSFER_IN_PROGRESS'
  | 'SERVER_EXISTS'
  | 'PANEL'
  /** The Panel answered 409 to the success report: it recorded a failure (answered as `PANEL`). */
  | 'PANEL_CONFLICT'
  /** The Panel refused a request of ours with a 4xx that is not a 409 (for example 404 for a server it does not know). */
  | 'PANEL_REFUSED'
  | 'BAD_REQUEST'
  | 'CHECKSUM_MISMATCH'
  | 'BAD_ARCHIVE'
  | 'DISK_FULL'
  | 'CANCELLED'
  | 'IDLE_TIMEOUT'
  | 'STOP_TIMEOUT'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'INTERNAL'
  // Answers the Go daemon gives with a plain {"error"} body, kept byte for byte.
  | 'SERVER_TRANSFERRING'
  /** POST /api/servers for a uuid that lives here already (SERVER_EXISTS is the transfer contract's). */
  | 'SERVER_DUPLICATE'
  | 'NOT_TRANSFERRING'
  | 'VALIDATION'
  | 'SERVER_SUSPENDED'
  | 'SERVER_STOPPED'
  | 'POWER_BUSY'
  | 'UNPARSABLE'
  | 'EMPTY_TOKEN'
  /** POST /api/servers/:server/transfer refused: a transfer is under way, or it was cancelled while the server stopped. */
  | 'TRANSFER_REFUSED'
  /** POST /api/servers/:server/transfer: the server did not stop within `system.transfers.stop_timeout`. */
  | 'TRANSFER_STOP_FAILED'
  /** Node token (Authorization: Bearer) missing or malformed / wrong. */
  | 'TOKEN_MISSING'
  | 'TOKEN_FORBIDDEN'
  /** No route for this method and path (the Go router's own text/plain answer). */
  | 'NO_ROUTE'
  // Answered like the Go daemon's unexpected errors: a fixed text and the request id, never the
  // message (which is logged instead).
  /** The body is not valid JSON, has the wrong types or an unsupported content type. */
  | 'BAD_BODY'
  | 'BODY_TOO_LARGE'
  /** A deadline of ours ran out (a TimeoutError). */
  | 'DEADLINE'
  /** Anything that is not a coded error. */
  | 'UNEXPECTED'
  /** The Panel answered 404 for a server of ours (sync). */
  | 'NOT_ON_PANEL'
  /** A power action or install while the install script runs. */
  | 'SERVER_INSTALLING'
  /** `start` for a server that is not offline. */
  | 'SERVER_RUNNING'
  | 'INSTALL_FAILED';

export class WingsError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'WingsError';
    this.code = code;
  }
}

export function isWingsError(err: unknown, code?: ErrorCode): err is WingsError {
  return err instanceof WingsError && (code === undefined || err.code === code);
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
