import type { ErrorCode, WingsError } from '../errors.js';

/**
 * The one table that turns an error code into an HTTP answer (docs/protocol.md, "Error codes").
 * Codes of the transfer contract answer `{"error", "code"}`; answers the Go daemon gives with a
 * plain `{"error"}` body keep that body byte for byte (`wire: null`).
 */
interface Answer {
  status: number;
  /** The `code` field of the body; null for a plain `{"error"}` body. Defaults to the error's code. */
  wire?: string | null;
  headers?: Record<string, string>;
}

const BEARER = { 'WWW-Authenticate': 'Bearer' };

export const ERROR_MAP: Record<ErrorCode, Answer> = {
  AUTH_MISSING: { status: 401, headers: BEARER },
  AUTH_INVALID: { status: 401 },
  AUTH_SCOPE: { status: 403 },
  BAD_SUBJECT: { status: 400 },
  TRANSFER_IN_PROGRESS: { status: 409 },
  SERVER_EXISTS: { status: 409 },
  PANEL: { status: 502 },
  PANEL_CONFLICT: { status: 409, wire: 'PANEL' },
  PANEL_REFUSED: { status: 502, wire: 'PANEL' },
  BAD_REQUEST: { status: 400 },
  CHECKSUM_MISMATCH: { status: 400 },
  BAD_ARCHIVE: { status: 400 },
  DISK_FULL: { status: 507 },
  CANCELLED: { status: 409 },
  IDLE_TIMEOUT: { status: 408 },
  STOP_TIMEOUT: { status: 500 },
  CONFLICT: { status: 409 },
  INTERNAL: { status: 500 },
  NOT_FOUND: { status: 404, wire: null },
  SERVER_TRANSFERRING: { status: 409, wire: null },
  SERVER_DUPLICATE: { status: 409, wire: null },
  NOT_TRANSFERRING: { status: 409, wire: null },
  VALIDATION: { status: 422, wire: null },
  SERVER_SUSPENDED: { status: 400, wire: null },
  SERVER_STOPPED: { status: 502, wire: null },
  POWER_BUSY: { status: 409, wire: null },
  UNPARSABLE: { status: 400, wire: null },
  EMPTY_TOKEN: { status: 400, wire: null },
  TOKEN_MISSING: { status: 401, wire: null, headers: BEARER },
  TOKEN_FORBIDDEN: { status: 403, wire: null },
};

export interface HttpAnswer {
  status: number;
  body: { error: string; code?: string };
  headers: Record<string, string>;
}

/** The status, body and headers that answer a coded error. */
export function answerFor(err: WingsError): HttpAnswer {
  const a = ERROR_MAP[err.code];
  const wire = a.wire === undefined ? err.code : a.wire;
  return {
    status: a.status,
    body: wire === null ? { error: err.message } : { error: err.message, code: wire },
    headers: a.headers ?? {},
  };
}
