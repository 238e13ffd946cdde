import { PassThrough, type Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { isWingsError } from '../../src/errors.js';
import { MultipartBody } from '../../src/http/transfer-receive.js';
import type { PartHandlers } from '../../src/transfer/incoming-body.js';
import { multipart } from '../helpers/wire.js';

const BOUNDARY = 'b'.repeat(40);

/** Every call the reader makes, in order; file parts are read to their end. */
function recorder() {
  const calls: string[] = [];
  const files = new Map<string, Promise<Buffer>>();
  let activity = 0;
  const handlers: PartHandlers = {
    file: (name, stream) => {
      calls.push(`file ${name}`);
      const chunks: Buffer[] = [];
      files.set(
        name,
        new Promise((resolve) => {
          stream.on('data', (c: Buffer) => chunks.push(c));
          stream.on('end', () => resolve(Buffer.concat(chunks)));
        }),
      );
    },
    field: (name, value, truncated) => void calls.push(`field ${name}=${value.length}${truncated ? ' truncated' : ''}`),
    activity: () => void activity++,
  };
  return { calls, files, handlers, activity: () => activity };
}

/** A request body stream that delivers `body` in chunks of `chunk` bytes, then ends (unless `end` is false). */
function streamOf(body: Buffer, chunk = 1000, end = true): Readable {
  const s = new PassThrough();
  for (let o = 0; o < body.length; o += chunk) s.write(body.subarray(o, o + chunk));
  if (end) s.end();
  return s;
}

const headers = (contentType = `multipart/form-data; boundary=${BOUNDARY}`) => ({ 'content-type': contentType });

describe('the multipart body of POST /api/transfers (HTTP side)', () => {
  it('hands over every part in order and resolves at the end of the body', async () => {
    const archive = Buffer.alloc(50_000, 7);
    const { body } = multipart(
      [
        { name: 'archive', filename: 'archive.tar.gz', data: archive },
        { name: 'install_logs', filename: 'install.log', data: 'log' },
        { name: 'checksum', data: 'c'.repeat(64) },
        { name: 'checksum_archive', data: 'c'.repeat(64) },
      ],
      BOUNDARY,
    );
    const r = recorder();
    await new MultipartBody(streamOf(body), headers()).read(r.handlers, new AbortController().signal);
    expect(r.calls).toEqual(['file archive', 'file install_logs', 'field checksum=64', 'field checksum_archive=64']);
    expect(await r.files.get('archive')).toEqual(archive);
    expect(r.activity()).toBeGreaterThanOrEqual(Math.ceil(body.length / 1000));
  });

  it('reads the checksum with a bound of 128 bytes', async () => {
    const { body } = multipart([{ name: 'archive', filename: 'a', data: 'x' }, { name: 'checksum', data: 'a'.repeat(4096) }], BOUNDARY);
    const r = recorder();
    await new MultipartBody(streamOf(body), headers()).read(r.handlers, new AbortController().signal);
    expect(r.calls).toEqual(['file archive', 'field checksum=128 truncated']);
  });

  it('a body that ends inside a file part rejects with BAD_REQUEST; the part errors without crashing anything', async () => {
    const head = Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="archive"; filename="a"\r\n\r\n`);
    const handedOver: { errorListeners: number; ended: Promise<void> }[] = [];
    const handlers: PartHandlers = {
      // a consumer that takes the data and nothing else: the part's 'error' (busboy's "Part
      // terminated early") must find the reader's own listener, or the process would crash
      file: (_name, stream) =>
        void handedOver.push({ errorListeners: stream.listenerCount('error'), ended: new Promise((r) => stream.on('data', () => {}).on('end', r)) }),
      field: () => {},
      activity: () => {},
    };
    const err = await new MultipartBody(streamOf(Buffer.concat([head, Buffer.alloc(100, 1)])), headers())
      .read(handlers, new AbortController().signal)
      .catch((e: unknown) => e);
    expect(isWingsError(err, 'BAD_REQUEST')).toBe(true);
    expect((err as Error).message).toBe('Malformed multipart body: Unexpected end of multipart data');
    expect(handedOver.map((h) => h.errorListeners)).toEqual([1]);
    await handedOver[0].ended;
  });

  it('a handler that throws ends the reading with its error; later parts are not handed over', async () => {
    const { body } = multipart([{ name: 'checksum', data: 'c'.repeat(64) }, { name: 'archive', filename: 'a', data: 'x' }], BOUNDARY);
    const calls: string[] = [];
    const boom = new Error('checksum first');
    const handlers: PartHandlers = {
      file: (name) => void calls.push(name),
      field: () => {
        throw boom;
      },
      activity: () => {},
    };
    await expect(new MultipartBody(streamOf(body), headers()).read(handlers, new AbortController().signal)).rejects.toBe(boom);
    expect(calls).toEqual([]);
  });

  it('an abort ends the reading with its reason and leaves the request readable (for an early answer)', async () => {
    const { body } = multipart([{ name: 'archive', filename: 'a', data: Buffer.alloc(10_000) }], BOUNDARY);
    const stream = streamOf(body.subarray(0, 5000), 1000, false);
    const ctl = new AbortController();
    const r = recorder();
    const reading = new MultipartBody(stream, headers()).read(r.handlers, ctl.signal);
    await new Promise((res) => setImmediate(res));
    const reason = new Error('cancelled');
    ctl.abort(reason);
    await expect(reading).rejects.toBe(reason);
    expect(stream.listenerCount('data')).toBe(0);
    expect(stream.destroyed).toBe(false);
  });

  it('an already aborted signal rejects at once', async () => {
    const ctl = new AbortController();
    ctl.abort(new Error('gone'));
    await expect(new MultipartBody(streamOf(Buffer.alloc(0)), headers()).read(recorder().handlers, ctl.signal)).rejects.toThrow('gone');
  });

  it('BAD_REQUEST for a content type the parser cannot use, and for too many parts', async () => {
    const noBoundary = await new MultipartBody(streamOf(Buffer.alloc(0)), headers('multipart/form-data'))
      .read(recorder().handlers, new AbortController().signal)
      .catch((e: unknown) => e);
    expect(isWingsError(noBoundary, 'BAD_REQUEST')).toBe(true);

    const many = multipart(Array.from({ length: 60 }, (_, i) => ({ name: `p${i}`, filename: 'x', data: 'x' })), BOUNDARY);
    const tooMany = await new MultipartBody(streamOf(many.body), headers())
      .read({ file: (_n, s) => void s.resume(), field: () => {}, activity: () => {} }, new AbortController().signal)
      .catch((e: unknown) => e);
    expect(isWingsError(tooMany, 'BAD_REQUEST')).toBe(true);
    expect((tooMany as Error).message).toMatch(/Too many/);
  });
});
