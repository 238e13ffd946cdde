import type { ErrorCode, WingsError } from '../errors.js';

/**
 * The one table that turns an error code into an HTTP answer (docs/protocol.md W3.3).
 * Codes of the transfer contract answer `{"error", "code"}`; answers the Go daemon gives with a
 * plain `{"error"}` body keep that body byte for byte (`wire: null`); its answers to unexpected
 * errors show a fixed text and the request id instead of the message (`opaque`).
 */
interface Answer {
  status: number;
  /** The `code` field of the body; null for a plain `{"error"}` body. Defaults to the error's code. */
  wire?: string | null;
  headers?: Record<string, string>;
  /** The text shown instead of the message, with `request_id` (the message goes to the log). */
  opaque?: string;
  /** The message alone as text/plain, not JSON (the Go router's own answers). */
  text?: true;
}

const BEARER = { 'WWW-Authenticate': 'Bearer' };
export const GENERIC_ERROR = 'An unexpected error was encountered while processing this request';

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
  TRANSFER_REFUSED: { status: 409, wire: null },
  TRANSFER_STOP_FAILED: { status: 500, wire: null },
  TOKEN_MISSING: { status: 401, wire: null, headers: BEARER },
  TOKEN_FORBIDDEN: { status: 403, wire: null },
  NO_ROUTE: { status: 404, wire: null, text: true },
  BAD_BODY: { status: 400, opaque: GENERIC_ERROR },
  BODY_TOO_LARGE: { status: 413, opaque: 'The request body is too large.' },
  DEADLINE: { status: 504, opaque: 'The server could not process this request in time, please try again.' },
  UNEXPECTED: { status: 500, opaque: GENERIC_ERROR },
  NOT_ON_PANEL: { status: 500, opaque: GENERIC_ERROR },
  SERVER_INSTALLING: { status: 500, opaque: GENERIC_ERROR },
  SERVER_RUNNING: { status: 500, opaque: GENERIC_ERROR },
  INSTALL_FAILED: { status: 500, opaque: GENERIC_ERROR },
};

export interface HttpAnswer {
  status: number;
  body: { error: string; code?: string } | { error: string; request_id: string };
  headers: Record<string, string>;
  /** The body hides the message: whoever answers should log the error. */
  opaque: boolean;
  /** Send `body.error` alone as text/plain. */
  text: boolean;
}

/** The status, body and headers that answer a coded error; `requestId` for the opaque answers. */
export function answerFor(err: WingsError, requestId = ''): HttpAnswer {
  const a = ERROR_MAP[err.code];
  const headers = a.headers ?? {};
  const text = a.text === true;
  if (a.opaque !== undefined) {
    return { status: a.status, body: { error: a.opaque, request_id: requestId }, headers, opaque: true, text };
  }
  const wire = a.wire === undefined ? err.code : a.wire;
  return {
    status: a.status,
    body: wire === null ? { error: err.message } : { error: err.message, code: wire },
    headers,
    opaque: false,
    text,
  };
}
