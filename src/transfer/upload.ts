import { createHash } from 'node:crypto';
import type { ClientRequest, IncomingMessage } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ArchiveProducer } from '../archive/index.js';
import type { IdleWatchdog, Pace } from './meter.js';

/** The head of the archive part, laid out as Go's mime/multipart writes it. */
export function multipartHead(boundary: string): Buffer {
  return Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="archive"; filename="archive.tar.gz"\r\n` +
      `Content-Type: application/octet-stream\r\n\r\n`,
  );
}

/** Archive members written to the socket and not yet flushed: each holds a block of the producer. */
const MAX_UNFLUSHED = 2;

/** Reads a response body as text, keeping at most `max` characters (the rest is drained). */
export async function readText(res: IncomingMessage, max = 64 * 1024): Promise<string> {
  let text = '';
  try {
    for await (const chunk of res as AsyncIterable<Buffer>) if (text.length < max) text += chunk.toString('utf8');
  } catch {}
  return text.slice(0, max);
}

/**
 * The source's failure text for a destination answer that is not a success (docs/protocol.md D4.4:
 * its `error` verbatim).
 */
export function destinationFailure(status: number, text: string): string {
  if (status === 200) return 'destination answered before the whole archive was sent';
  try {
    const parsed = JSON.parse(text) as { error?: string; code?: string };
    if (parsed.error) return `${parsed.error}${parsed.code ? ` (${parsed.code}, HTTP ${status})` : ` (HTTP ${status})`}`;
  } catch {}
  return `unexpected status code from destination: ${status}`;
}

export interface UploadOptions {
  signal: AbortSignal;
  pace: Pace;
  idle: IdleWatchdog;
  /** Called right before the checksum part is written: from then on the destination holds the whole archive. */
  onArchiveSent: () => void;
}

/**
 * Streams the multipart body: the archive part member by member, each handed back to the producer
 * once the socket has written it (its write callback), then the checksum part. Returns early
 * (false) when the destination answers or the connection fails before the whole body was sent.
 */
export async function sendBody(out: ClientRequest, producer: ArchiveProducer, boundary: string, opts: UploadOptions): Promise<boolean> {
  const { idle } = opts;
  const hash = createHash('sha256');
  let unflushed = 0;
  let wake: (() => void) | null = null;
  const poke = (): void => {
    const w = wake;
    wake = null;
    w?.();
  };
  // An answer (early: an error) or a broken connection ends the upload; the caller reads which.
  let ended = false;
  const stopped = (): boolean => ended;
  const onEvent = (): void => {
    ended = true;
    poke();
  };
  out.on('response', onEvent).on('error', onEvent);
  try {
    out.write(multipartHead(boundary));
    idle.touch();
    for (;;) {
      if (stopped()) return false;
      const chunk = await producer.next();
      if (!chunk) break;
      hash.update(chunk);
      const wait = opts.pace.delayFor(chunk.length);
      if (wait > 0) await sleep(wait, undefined, { signal: opts.signal });
      if (stopped()) return false;
      unflushed++;
      out.write(chunk, (err) => {
        unflushed--;
        // After the callback the socket no longer reads the block; on error it is never reused.
        if (!err) {
          producer.release(chunk);
          idle.touch();
        }
        poke();
      });
      while (unflushed >= MAX_UNFLUSHED && !stopped()) await new Promise<void>((resolve) => (wake = resolve));
    }
    const checksum = hash.digest('hex');
    if (stopped()) return false;
    opts.onArchiveSent();
    out.end(`\r\n--${boundary}\r\nContent-Disposition: form-data; name="checksum"\r\n\r\n${checksum}\r\n--${boundary}--\r\n`);
    return true;
  } finally {
    out.off('response', onEvent).off('error', onEvent);
  }
}
