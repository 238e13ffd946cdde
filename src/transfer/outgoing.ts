import { createHash, randomBytes } from 'node:crypto';
import http, { type ClientRequest, type IncomingMessage } from 'node:http';
import https from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import { ArchiveProducer } from '../archive/index.js';
import { gzipLevel, transferCompressionLevel } from '../config/schema.js';
import { WingsError, errorMessage, isWingsError } from '../errors.js';
import type { Server } from '../server/server.js';
import type { TransferManager } from './manager.js';
import { IdleWatchdog, MiB, Pace } from './meter.js';
import { Transfer } from './transfer.js';

export interface OutgoingRequest {
  url: string;
  /** The Authorization header for the destination, verbatim (`Bearer <jwt>` from the Panel). */
  token: string;
}

/** What POST /api/servers/:server/transfer answers; `undefined` = 202. */
export type InitiateResult =
  | { status: 202 }
  | { status: 409 | 500; body: { error: string } };

const ALREADY = 'A transfer is already in progress for this server.';

/**
 * The source side (issue 4, D1, D3, D7): lock, graceful stop, then the streamed push in the
 * background. Resolves with the answer for the initiating POST.
 */
export async function initiateOutgoing(
  manager: TransferManager,
  server: Server,
  req: OutgoingRequest,
): Promise<InitiateResult> {
  if (server.transferring || manager.outgoing(server.uuid) || manager.incoming(server.uuid)) {
    return { status: 409, body: { error: ALREADY } };
  }
  const cfg = manager.deps.config();
  const transfer = new Transfer(server.uuid, 'outgoing');
  server.transferring = true;
  manager.register(transfer);
  manager.attachBus(transfer, server.events);

  // Graceful stop, bounded by stop_timeout, never a kill (D7).
  if (server.state !== 'offline') {
    try {
      await server.environment.waitForStop(cfg.system.transfers.stop_timeout * 1000, false, transfer.signal);
    } catch (err) {
      if (transfer.signal.aborted && transfer.state === 'cancelling') {
        void finishOutgoing(manager, server, transfer, 'cancelled');
        return { status: 409, body: { error: 'The transfer was cancelled.' } };
      }
      manager.logger.warn({ server: server.uuid, err: errorMessage(err) }, 'failed to stop the server before the transfer');
      transfer.error = 'Failed to stop the server before initiating transfer.';
      transfer.transition('failed');
      server.transferring = false;
      manager.unregister(transfer);
      transfer.settle();
      return { status: 500, body: { error: 'Failed to stop the server before initiating transfer.' } };
    }
  }
  if (transfer.state === 'cancelling') {
    void finishOutgoing(manager, server, transfer, 'cancelled');
    return { status: 409, body: { error: 'The transfer was cancelled.' } };
  }
  void push(manager, server, transfer, req);
  return { status: 202 };
}

function multipartHead(boundary: string): Buffer {
  return Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="archive"; filename="archive.tar.gz"\r\n` +
      `Content-Type: application/octet-stream\r\n\r\n`,
  );
}

/** Archive members written to the socket and not yet flushed: each holds a block of the producer. */
const MAX_UNFLUSHED = 2;

/** Reads a response body as text, keeping at most `max` characters (the rest is drained). */
async function readText(res: IncomingMessage, max = 64 * 1024): Promise<string> {
  let text = '';
  try {
    for await (const chunk of res as AsyncIterable<Buffer>) if (text.length < max) text += chunk.toString('utf8');
  } catch {}
  return text.slice(0, max);
}

/**
 * Streams the multipart body: the archive part member by member, each handed back to the producer
 * once the socket has written it (its write callback), then the checksum part. Returns early
 * (false) when the destination answers or the connection fails before the whole body was sent.
 */
async function sendBody(
  out: ClientRequest,
  producer: ArchiveProducer,
  boundary: string,
  transfer: Transfer,
  pace: Pace,
  idle: IdleWatchdog,
): Promise<boolean> {
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
      const wait = pace.delayFor(chunk.length);
      if (wait > 0) await sleep(wait, undefined, { signal: transfer.signal });
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
    // Past this point the destination holds the whole archive: no more cancelling (D3).
    transfer.pointOfNoReturn = true;
    idle.stop();
    out.end(`\r\n--${boundary}\r\nContent-Disposition: form-data; name="checksum"\r\n\r\n${checksum}\r\n--${boundary}--\r\n`);
    return true;
  } finally {
    out.off('response', onEvent).off('error', onEvent);
  }
}

async function push(manager: TransferManager, server: Server, transfer: Transfer, req: OutgoingRequest): Promise<void> {
  const cfg = manager.deps.config();
  const tcfg = cfg.system.transfers;
  let stopProgress = () => {};
  const idle = new IdleWatchdog(tcfg.idle_timeout * 1000, () => {
    transfer.fail(new WingsError('IDLE_TIMEOUT', `No data moved for ${tcfg.idle_timeout} seconds.`));
  });
  let producer: ArchiveProducer | null = null;
  let out: ClientRequest | null = null;
  try {
    manager.log(transfer, 'Preparing to stream server data to destination...');
    transfer.transition('processing');
    // bytes_total is the server's disk usage (D8): the cached value when fresh, else a quick scan.
    transfer.bytesTotal = server.disk.cached > 0 ? server.disk.cached : await server.disk.refresh();
    manager.log(transfer, 'Streaming archive to destination...');
    stopProgress = manager.startProgress(transfer, 'Uploading');

    const boundary = randomBytes(30).toString('hex');
    producer = new ArchiveProducer({
      root: server.dataDirectory,
      level: gzipLevel(transferCompressionLevel(cfg)),
      signal: transfer.signal,
      onFileBytes: (n) => transfer.addBytes(n),
      onFileDone: () => transfer.filesDone++,
      onSkipped: (rel, kind) => manager.log(transfer, `Skipped ${kind} ${JSON.stringify(rel)}: not a regular file, directory or symlink.`),
    });

    const headers: Record<string, string> = {
      authorization: req.token,
      'content-type': `multipart/form-data; boundary=${boundary}`,
    };
    if (transfer.bytesTotal !== null) headers['x-transfer-size'] = String(transfer.bytesTotal);
    const url = new URL(req.url);
    // node:http rather than a pooled client: the write callback says when a block may be reused.
    const request = (url.protocol === 'https:' ? https : http).request(url, { method: 'POST', headers, agent: false, signal: transfer.signal });
    out = request;
    const response = new Promise<IncomingMessage>((resolve, reject) => {
      request.once('response', resolve);
      request.once('error', reject);
    });
    response.catch(() => {});
    const deleted = new Promise<'deleted'>((resolve) => transfer.once('deleted-after-send', () => resolve('deleted')));

    const complete = await sendBody(request, producer, boundary, transfer, new Pace(tcfg.upload_limit * MiB), idle);
    if (complete) {
      stopProgress();
      manager.log(transfer, 'Finished streaming archive to destination.');
    } else {
      producer.destroy();
    }
    const first = await Promise.race([response, deleted]);
    if (first === 'deleted') {
      // The Panel deletes the server from inside its success handler (D7): completed.
      transfer.controller.abort(new Error('server deleted after the archive was sent'));
      await finishOutgoing(manager, server, transfer, 'completed');
      return;
    }
    const res = first;
    const text = await readText(res);
    const status = res.statusCode ?? 0;
    if (status === 200 && transfer.pointOfNoReturn) {
      await finishOutgoing(manager, server, transfer, 'completed');
      return;
    }
    let message = `unexpected status code from destination: ${status}`;
    try {
      const parsed = JSON.parse(text) as { error?: string; code?: string };
      if (parsed.error) message = `${parsed.error}${parsed.code ? ` (${parsed.code}, HTTP ${status})` : ` (HTTP ${status})`}`;
    } catch {}
    if (status === 200) message = 'destination answered before the whole archive was sent';
    throw new WingsError('INTERNAL', message);
  } catch (err) {
    idle.stop();
    stopProgress();
    producer?.destroy();
    out?.destroy();
    if (transfer.state === 'cancelling') {
      await finishOutgoing(manager, server, transfer, 'cancelled');
      return;
    }
    const reason = transfer.signal.aborted && isWingsError(transfer.signal.reason) ? transfer.signal.reason : err;
    transfer.error ??= errorMessage(reason);
    manager.log(transfer, `Transfer failed: ${transfer.error}`);
    await finishOutgoing(manager, server, transfer, 'failed');
  } finally {
    idle.stop();
    stopProgress();
    producer?.destroy();
  }
}

/**
 * The end of a source transfer, in the order of D3: abort, unlock (not after success: the source
 * stays locked until the Panel deletes it), terminal state, off the active list, Panel report,
 * `Canceled.` line.
 */
async function finishOutgoing(
  manager: TransferManager,
  server: Server,
  transfer: Transfer,
  outcome: 'completed' | 'cancelled' | 'failed',
): Promise<void> {
  if (transfer.isTerminal) return;
  if (!transfer.signal.aborted) transfer.controller.abort(new Error(`transfer ${outcome}`));
  if (outcome !== 'completed') server.transferring = false;
  transfer.transition(outcome);
  manager.unregister(transfer);
  transfer.settle();
  if (outcome === 'completed') return;
  await manager.report(server.uuid, false);
  if (outcome === 'cancelled') manager.log(transfer, 'Canceled.');
}
