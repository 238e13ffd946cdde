import type { FastifyReply, FastifyRequest } from 'fastify';

const DRAIN_MAX_BYTES = 64 * 1024 * 1024;
const DRAIN_MAX_MS = 5000;

/**
 * Answers before the request body was read (docs/protocol.md D4.4): Node would otherwise close the
 * socket with unread data and the client would see a reset instead of the answer. The answer is
 * written at once (complete, with Content-Length); the rest of the body is read and discarded,
 * bounded in time and bytes, then the connection is closed.
 */
export function answerEarly(
  request: FastifyRequest,
  reply: FastifyReply,
  status: number,
  body: Record<string, unknown>,
  headers: Record<string, string> = {},
): void {
  const req = request.raw;
  const res = reply.raw;
  if (reply.sent || res.headersSent) {
    req.socket.destroy();
    return;
  }
  reply.hijack();
  const payload = Buffer.from(JSON.stringify(body));
  const outHeaders: Record<string, string | number | string[]> = {};
  for (const [k, v] of Object.entries(reply.getHeaders())) if (v !== undefined) outHeaders[k] = v;
  Object.assign(outHeaders, headers, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': payload.length,
    connection: 'close',
  });
  res.writeHead(status, outHeaders);
  res.write(payload);
  if (req.complete || req.destroyed) {
    res.end();
    return;
  }
  let drained = 0;
  let done = false;
  const finish = () => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    req.off('data', onData);
    res.end(() => req.socket?.destroy());
    // If the peer never reads, do not keep the socket forever.
    setTimeout(() => req.socket?.destroy(), 1000).unref();
  };
  const onData = (chunk: Buffer) => {
    drained += chunk.length;
    if (drained > DRAIN_MAX_BYTES) finish();
  };
  const timer = setTimeout(finish, DRAIN_MAX_MS);
  timer.unref();
  req.on('data', onData);
  req.once('end', finish);
  req.once('close', finish);
  req.once('error', finish);
  req.resume();
}
