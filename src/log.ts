import fs from 'node:fs';
import path from 'node:path';
import { pino, type Logger, type DestinationStream } from 'pino';

/** Paths that may carry secrets; pino replaces their values with "[redacted]". */
const REDACT = [
  'token',
  'token_id',
  'authorization',
  'Authorization',
  'headers.authorization',
  'headers.Authorization',
  'req.headers.authorization',
  'config.token',
  'jwt',
  '*.token',
  '*.authorization',
];

const JWT_LIKE = /eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g;

/** Removes anything that looks like a JWT or a bearer secret from free text before it is logged. */
export function scrubSecrets(text: string, secrets: string[] = []): string {
  let out = text.replace(JWT_LIKE, '[redacted-jwt]').replace(/Bearer\s+\S+/g, 'Bearer [redacted]');
  for (const s of secrets) if (s && s.length >= 8) out = out.split(s).join('[redacted]');
  return out;
}

export interface LoggerOptions {
  debug?: boolean;
  /** Directory for wings.log; omitted = stdout only. */
  logDirectory?: string;
  /** Also log to stdout (default true). */
  stdout?: boolean;
  name?: string;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const streams: { stream: DestinationStream; level: string }[] = [];
  const level = opts.debug ? 'debug' : 'info';
  if (opts.stdout !== false) streams.push({ stream: pino.destination({ dest: 1, sync: false }), level });
  if (opts.logDirectory) {
    fs.mkdirSync(opts.logDirectory, { recursive: true, mode: 0o700 });
    // Opened here, synchronously: a destination that opens its file asynchronously has no descriptor
    // yet when a boot fails at once, and pino's flush at exit then throws "sonic boom is not ready
    // yet" onto stderr and loses the fatal line. Appending keeps logrotate's copytruncate safe.
    const fd = fs.openSync(path.join(opts.logDirectory, 'wings.log'), 'a', 0o640);
    streams.push({ stream: pino.destination({ dest: fd, sync: false }), level });
  }
  return pino(
    {
      level,
      name: opts.name,
      redact: { paths: REDACT, censor: '[redacted]' },
      serializers: { err: pino.stdSerializers.err },
    },
    streams.length === 1 ? streams[0].stream : pino.multistream(streams),
  );
}
