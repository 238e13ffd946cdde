import type { Readable } from 'node:stream';

/**
 * The parts the destination reads as small bounded fields (the checksum,
 * docs/protocol.md D4.1, D5.2); every other part is a file part handed over as a stream.
 */
export const FIELD_PARTS: readonly string[] = ['checksum', 'checksum_archive'];

/** What the destination does with each part of the body, in the order they arrive. */
export interface PartHandlers {
  /** A file part: the handler consumes or drains `stream`. Throwing ends the reading with that error. */
  file(name: string, stream: Readable): void;
  /** A field part of FIELD_PARTS, read with a bound (`truncated` when it was longer). Throwing ends the reading. */
  field(name: string, value: string, truncated: boolean): void;
  /** Bytes of the body arrived (the idle timer of docs/protocol.md D7.6). */
  activity(): void;
}

/**
 * The request body of POST /api/transfers as the destination reads it, whatever frames it (the
 * HTTP side parses the multipart body). `read()` hands each part to the handlers and resolves at
 * the end of the body; it rejects with a BAD_REQUEST WingsError when the body is malformed, with
 * the error of a handler that threw, or with `signal.reason` once `signal` aborts. Every stream it
 * hands out has its errors handled: a part that breaks off is reported by the rejection.
 */
export interface IncomingBody {
  read(handlers: PartHandlers, signal: AbortSignal): Promise<void>;
}
