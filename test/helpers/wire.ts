import { createHash, randomBytes } from 'node:crypto';
import zlib from 'node:zlib';
import tar from 'tar-stream';
import { request } from 'undici';
import { signNodeJwt } from '../../tools/panel-lite/index.js';

export interface TarEntry {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link' | 'character-device' | 'fifo';
  content?: Buffer | string;
  linkname?: string;
  mode?: number;
}

/** A gzip-compressed tar built entry by entry (for crafted and Go-shaped archives). */
export async function tarGz(entries: TarEntry[]): Promise<Buffer> {
  return zlib.gzipSync(await tarBytes(entries));
}

/** An uncompressed tar built entry by entry. */
export async function tarBytes(entries: TarEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => chunks.push(c as Buffer));
  const done = new Promise<void>((r) => pack.on('end', () => r()));
  for (const e of entries) {
    const content = e.content === undefined ? undefined : Buffer.from(e.content);
    await new Promise<void>((resolve, reject) => {
      pack.entry(
        { name: e.name, type: e.type ?? 'file', linkname: e.linkname, mode: e.mode ?? 0o644, size: content?.length ?? 0, mtime: new Date(1_700_000_000_000) },
        content ?? Buffer.alloc(0),
        (err) => (err ? reject(err) : resolve()),
      );
    });
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

export interface Part {
  name: string;
  filename?: string;
  data: Buffer | string;
}

/** A multipart/form-data body laid out exactly as Go's mime/multipart writes it (docs/protocol.md W26.1). */
export function multipart(parts: Part[], boundary = randomBytes(30).toString('hex')): { body: Buffer; contentType: string } {
  const out: Buffer[] = [];
  parts.forEach((p, i) => {
    const head =
      `${i === 0 ? '' : '\r\n'}--${boundary}\r\n` +
      (p.filename !== undefined
        ? `Content-Disposition: form-data; name="${p.name}"; filename="${p.filename}"\r\nContent-Type: application/octet-stream\r\n\r\n`
        : `Content-Disposition: form-data; name="${p.name}"\r\n\r\n`);
    out.push(Buffer.from(head), Buffer.from(p.data));
  });
  out.push(Buffer.from(`\r\n--${boundary}--\r\n`));
  return { body: Buffer.concat(out), contentType: `multipart/form-data; boundary=${boundary}` };
}

export const sha256hex = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A transfer JWT as the Panel signs it (docs/protocol.md W24.3), signed with `nodeToken`; claims may be overridden. */
export function transferJwt(nodeToken: string, sub: string, overrides: Record<string, unknown> = {}, header: Record<string, unknown> = {}): string {
  const now = Math.floor(Date.now() / 1000);
  const claims: Record<string, unknown> = {
    iss: 'http://panel.test',
    aud: ['http://127.0.0.1:1'],
    jti: createHash('sha256').update(sub).digest('hex'),
    iat: now,
    nbf: now - 300,
    exp: now + 900,
    sub,
    unique_id: 'abcdefghijklmnop',
    ...overrides,
  };
  for (const [k, v] of Object.entries(claims)) if (v === null) delete claims[k];
  return signNodeJwt(nodeToken, claims, { jti: claims.jti, sub, ...header });
}

export async function postTransfer(
  url: string,
  opts: { authorization?: string; body?: Buffer; contentType?: string; headers?: Record<string, string> },
): Promise<{ status: number; body: any; headers: Record<string, unknown> }> {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  if (opts.authorization !== undefined) headers.authorization = opts.authorization;
  if (opts.contentType) headers['content-type'] = opts.contentType;
  const res = await request(`${url}/api/transfers`, { method: 'POST', headers, body: opts.body ?? '' });
  const text = await res.body.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {}
  return { status: res.statusCode, body, headers: res.headers };
}
