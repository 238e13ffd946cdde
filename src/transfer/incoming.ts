import { createHash, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pipeline, type Readable } from 'node:stream';
import { Busboy } from '@fastify/busboy';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { JWTPayload } from 'jose';
import { extractArchive } from '../archive/index.js';
import { JwtError, type JwtVerifier } from '../auth/jwt.js';
import { WingsError, errorMessage, isWingsError, type ErrorCode } from '../errors.js';
import { freeSpace } from '../filesystem/disk-usage.js';
import { parseServerConfiguration } from '../server/configuration.js';
import type { Server } from '../server/server.js';
import { answerEarly } from './early-answer.js';
import { answerFor } from '../http/error-map.js';
import type { TransferManager } from './manager.js';
import { IdleWatchdog, MiB, RateLimiter } from './meter.js';
import { Transfer } from './transfer.js';
import { isUuidV4 } from '../uuid.js';

/** Free space kept on the node's filesystem whatever the archive holds. */
const FREE_SPACE_RESERVE = 64 * MiB;
const FOREIGN_CLAIMS = ['server_uuid', 'user_uuid', 'permissions', 'file_path', 'backup_uuid'];

export interface IncomingDeps {
  manager: TransferManager;
  jwt: JwtVerifier;
}

function fail(code: ErrorCode, message: string): WingsError {
  return new WingsError(code, message);
}

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

/** The checks of D4 that create nothing: auth, purpose, subject. Returns the server UUID. */
async function authenticate(jwt: JwtVerifier, header: string | undefined): Promise<string> {
  if (!header) throw fail('AUTH_MISSING', 'The required authorization heads were not present in the request.');
  const i = header.indexOf(' ');
  if (i === -1 || header.slice(0, i) !== 'Bearer' || header.slice(i + 1) === '') {
    throw fail('AUTH_MISSING', 'The required authorization heads were not present in the request.');
  }
  let claims: JWTPayload;
  try {
    claims = await jwt.verify(header.slice(i + 1), { leewaySeconds: 60 });
  } catch (err) {
    throw fail('AUTH_INVALID', err instanceof JwtError ? `Invalid transfer token: ${err.message}` : 'Invalid transfer token.');
  }
  if (claims.scope !== undefined) {
    const scopes = typeof claims.scope === 'string' ? claims.scope.split(/\s+/) : [];
    if (!scopes.includes('transfer')) throw fail('AUTH_SCOPE', 'The token is not a transfer token (scope).');
  }
  for (const c of FOREIGN_CLAIMS) {
    if (c in claims) throw fail('AUTH_SCOPE', `The token is not a transfer token (it carries "${c}").`);
  }
  if (claims.sub === undefined) throw fail('AUTH_SCOPE', 'The token is not a transfer token (no subject).');
  const uuid = canonicalUuid(claims.sub);
  if (!uuid || !isUuidV4(uuid)) {
    throw fail('BAD_SUBJECT', 'The token subject is not a server UUID (version 4).');
  }
  return uuid;
}

/** POST /api/transfers: the destination side (D1, D3–D6). */
export async function receiveTransfer(deps: IncomingDeps, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const { manager } = deps;
  const { servers, panel } = manager.deps;
  const answer = (err: WingsError) => {
    const a = answerFor(err);
    answerEarly(request, reply, a.status, a.body, a.headers);
  };

  // Rows of D4 that create nothing, publish nothing, report nothing.
  let uuid: string;
  try {
    uuid = await authenticate(deps.jwt, request.headers.authorization);
  } catch (err) {
    return answer(isWingsError(err) ? err : fail('AUTH_INVALID', 'Invalid transfer token.'));
  }
  if (manager.incoming(uuid)) {
    return answer(fail('TRANSFER_IN_PROGRESS', 'A transfer is already in progress for this server.'));
  }
  if (servers.has(uuid)) {
    return answer(fail('SERVER_EXISTS', 'A server with this identifier already exists on this instance.'));
  }

  // From here on a transfer exists: it ends failed (or cancelled) with a Panel report.
  const transfer = new Transfer(uuid, 'incoming');
  manager.register(transfer);
  const sizeHeader = request.headers['x-transfer-size'];
  const declared = typeof sizeHeader === 'string' && /^\d+$/.test(sizeHeader) ? Number(sizeHeader) : null;
  transfer.bytesTotal = declared;
  let server: Server | undefined;
  let extraction: Promise<unknown> | undefined;
  let answered = false;
  const cfg = manager.deps.config();
  const tcfg = cfg.system.transfers;
  let stopProgress = () => {};

  const idle = new IdleWatchdog(tcfg.idle_timeout * 1000, () =>
    transfer.fail(fail('IDLE_TIMEOUT', `No data received for ${tcfg.idle_timeout} seconds.`)),
  );
  const onData = () => idle.touch();
  const onClose = () => {
    if (!request.raw.complete && !transfer.isTerminal) {
      transfer.fail(fail('BAD_REQUEST', 'The source closed the connection before the whole body was received.'));
    }
  };

  const cleanupAndFinish = async (outcome: 'cancelled' | 'failed', err: WingsError): Promise<void> => {
    idle.stop();
    stopProgress();
    request.raw.off('data', onData);
    if (!transfer.signal.aborted) transfer.controller.abort(err);
    if (!answered) {
      answered = true;
      answer(err);
    }
    await extraction?.catch(() => {});
    transfer.error ??= err.message;
    // Cleanup of everything the transfer created (D3): data, container, registration.
    await fs.promises.rm(path.join(cfg.system.data, uuid), { recursive: true, force: true }).catch((e) =>
      manager.logger.error({ server: uuid, err: errorMessage(e) }, 'failed to remove partial transfer data'),
    );
    if (server) {
      await server.environment.destroy().catch((e) => manager.logger.warn({ err: errorMessage(e) }, 'destroy failed'));
      server.transferring = false;
    }
    manager.log(transfer, outcome === 'cancelled' ? 'Canceled.' : `Transfer failed: ${transfer.error}`);
    transfer.transition(outcome);
    manager.unregister(transfer);
    if (server) {
      if (servers.get(uuid) === server) servers.remove(uuid);
      await server.destroy({ keepFiles: true }).catch(() => {});
      manager.deps.closeSockets(uuid);
    }
    transfer.settle();
    await manager.report(uuid, false);
  };

  try {
    // Server configuration from the Panel.
    let raw: unknown;
    try {
      raw = await panel.getServerConfiguration(uuid, transfer.signal);
    } catch (err) {
      if (transfer.signal.aborted) throw transfer.signal.reason;
      throw fail('PANEL', `The Panel did not provide the server's configuration: ${errorMessage(err)}`);
    }
    let data;
    try {
      data = parseServerConfiguration(raw, cfg.system.crash_detection.enabled);
    } catch (err) {
      throw fail('PANEL', `The Panel's server configuration is invalid: ${errorMessage(err)}`);
    }
    if (data.settings.uuid !== uuid) throw fail('PANEL', 'The Panel answered with another server.');
    server = servers.instantiate(data);
    server.transferring = true;
    servers.add(server);
    manager.attachBus(transfer, server.events);
    manager.log(transfer, 'Receiving server data from the source node...');

    const contentType = request.headers['content-type'] ?? '';
    if (!/^multipart\//i.test(contentType) || !/boundary=/i.test(contentType)) {
      throw fail('BAD_REQUEST', `Invalid content type "${contentType}", expected "multipart/form-data".`);
    }

    // Space: the server's disk limit and the node's free space (D4 DISK_FULL).
    await fs.promises.mkdir(server.dataDirectory, { recursive: true, mode: 0o755 });
    const free = (await freeSpace(server.dataDirectory)) - FREE_SPACE_RESERVE;
    const limit = server.diskLimitBytes > 0 ? Math.min(server.diskLimitBytes, free) : free;
    if (declared !== null && declared > limit) {
      throw fail('DISK_FULL', `Not enough disk space: the server needs ${declared} bytes, ${Math.max(0, limit)} are available.`);
    }
    if (transfer.signal.aborted) throw transfer.signal.reason;

    request.raw.on('data', onData);
    request.raw.once('close', onClose);
    idle.touch();

    const hash = createHash('sha256');
    let archiveSeen = false;
    let archiveDone = false;
    let checksum: string | undefined;

    await new Promise<void>((resolve, reject) => {
      const bb = Busboy({
        headers: request.raw.headers as never,
        limits: { fieldSize: 128, fieldNameSize: 200, fields: 20, parts: 50, files: 20, headerPairs: 20 },
        isPartAFile: (name) => name !== 'checksum' && name !== 'checksum_archive',
      });
      let settled = false;
      const stop = (err?: unknown) => {
        if (settled) return;
        settled = true;
        request.raw.unpipe(bb);
        transfer.signal.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve();
      };
      const onAbort = () => {
        bb.destroy();
        stop(transfer.signal.reason);
      };
      transfer.signal.addEventListener('abort', onAbort, { once: true });

      bb.on('file', (name: string, stream: Readable) => {
        // A part stream errors when the body ends inside it; the parser reports that as its own
        // 'error' (answered below), so a drained part only needs a listener to not crash the daemon.
        if (name !== 'archive') {
          stream.on('error', () => {}).resume(); // unknown parts are drained, never buffered
          return;
        }
        if (archiveSeen) {
          stream.on('error', () => {}).resume();
          return stop(fail('BAD_REQUEST', 'More than one archive part.'));
        }
        archiveSeen = true;
        transfer.transition('processing');
        manager.log(transfer, 'Extracting archive...');
        stopProgress = manager.startProgress(transfer, 'Downloading');
        const limiter = new RateLimiter(tcfg.download_limit * MiB);
        stream.on('data', (chunk: Buffer) => hash.update(chunk));
        // pipeline() handles the errors of both streams from now on: the extraction attaches its
        // own listeners to the limiter only after a few awaits, and a part that errors before
        // that (the body ended inside it) used to emit an unhandled 'error' there.
        pipeline(stream, limiter, () => {});
        extraction = extractArchive(limiter, {
          root: server!.dataDirectory,
          signal: transfer.signal,
          maxBytes: Math.max(0, limit),
          onFileBytes: (n) => transfer.addBytes(n),
          onFileDone: () => transfer.filesDone++,
          onSkipped: (entry, type) => manager.log(transfer, `Skipped ${type} entry ${JSON.stringify(entry)}.`),
        }).then(
          () => {
            archiveDone = true;
          },
          (e) => {
            stop(e);
            throw e;
          },
        );
        extraction.catch(() => {});
      });
      bb.on('field', (name: string, value: string, _nameTruncated: boolean, valueTruncated: boolean) => {
        if (name !== 'checksum' && name !== 'checksum_archive') return;
        if (!archiveSeen) return stop(fail('BAD_REQUEST', 'The checksum part was sent before the archive part.'));
        if (valueTruncated) return stop(fail('BAD_REQUEST', 'The checksum part is too large.'));
        checksum = value.trim();
      });
      bb.on('partsLimit', () => stop(fail('BAD_REQUEST', 'Too many parts in the request.')));
      bb.on('filesLimit', () => stop(fail('BAD_REQUEST', 'Too many file parts in the request.')));
      bb.on('fieldsLimit', () => stop(fail('BAD_REQUEST', 'Too many fields in the request.')));
      bb.on('error', (e: Error) => stop(fail('BAD_REQUEST', `Malformed multipart body: ${e.message}`)));
      bb.on('finish', () => stop());
      request.raw.pipe(bb);
    });

    idle.stop();
    if (!archiveSeen) throw fail('BAD_REQUEST', 'The archive part is missing.');
    await extraction;
    if (!archiveDone) throw fail('BAD_ARCHIVE', 'The archive was not extracted.');
    if (checksum === undefined) throw fail('BAD_REQUEST', 'The checksum part is missing.');
    if (!/^[0-9a-fA-F]{64}$/.test(checksum)) throw fail('BAD_REQUEST', 'The checksum is not 64 hexadecimal characters.');
    const actual = hash.digest();
    if (!timingSafeEqual(actual, Buffer.from(checksum, 'hex'))) {
      throw fail('CHECKSUM_MISMATCH', `Checksum mismatch: the archive hashes to ${actual.toString('hex')}.`);
    }
    stopProgress();
    if (transfer.signal.aborted) throw transfer.signal.reason;

    // Point of no return (D3): the archive is verified; the success report is under way.
    transfer.pointOfNoReturn = true;
    manager.log(transfer, 'Archive verified; creating the server environment...');
    try {
      await server.environment.create();
    } catch (err) {
      transfer.pointOfNoReturn = false;
      throw fail('INTERNAL', `Failed to create the server environment: ${errorMessage(err)}`);
    }
    const outcome = await manager.report(uuid, true);
    if (outcome === 'conflict') {
      transfer.pointOfNoReturn = false;
      throw fail('PANEL_CONFLICT', 'The Panel refused the success report: the server is no longer being transferred.');
    }
    server.transferring = false;
    manager.log(transfer, 'Transfer completed.');
    transfer.transition('completed');
    manager.unregister(transfer);
    transfer.settle();
    answered = true;
    await reply.code(200).send();
  } catch (err) {
    const cancelled = transfer.state === 'cancelling';
    let e: WingsError;
    if (cancelled) e = fail('CANCELLED', 'The transfer was cancelled on the destination.');
    else if (transfer.signal.aborted && isWingsError(transfer.signal.reason)) e = transfer.signal.reason;
    else if (isWingsError(err)) e = err;
    else e = fail('INTERNAL', errorMessage(err));
    await cleanupAndFinish(cancelled ? 'cancelled' : 'failed', e);
  } finally {
    idle.stop();
    stopProgress();
    request.raw.off('data', onData);
    request.raw.off('close', onClose);
  }
}
