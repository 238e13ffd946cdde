/**
 * Over 400 lines on purpose: the encoder and the decoder of one format, kept side by side so that
 * what one writes the other reads (round-trip tests in test/unit/archive*.test.ts).
 *
 * A minimal POSIX (pax) tar codec that works on raw name bytes.
 *
 * Why not tar-stream for this part: tar-stream 3.2.2 encodes and decodes names and pax records
 * as UTF-8 JS strings (a non-UTF-8 Linux filename is silently replaced by U+FFFD), truncates
 * mtimes to 32 bits, fails on garbage after the end-of-archive marker and does not say whether
 * the marker was there at all. The contract (docs/protocol.md D5.4, D5.5) needs all four, so
 * headers are ours; tar-stream stays in the tests as an independent writer of crafted archives.
 */
export const BLOCK = 512;
export const END_OF_ARCHIVE: Buffer = Buffer.alloc(BLOCK * 2);

/** 8^11 - 1: the largest value of an 11-digit octal field (size, mtime). */
const MAX_OCTAL_11 = 0o77777777777;
/** 2^31 - 1: readers with 32-bit time fields (tar-stream among them) break above this. */
const MAX_INT32 = 0x7fffffff;
const MAX_OCTAL_7 = 0o7777777;

export type EncodeType = 'file' | 'directory' | 'symlink';

export interface EncodeHeader {
  /** Path relative to the archive root, `/`-separated, raw bytes, no trailing slash. */
  name: Buffer;
  type: EncodeType;
  /** Permission bits; only 0o777 is written. */
  mode: number;
  /** Whole seconds since the epoch. */
  mtime: number;
  size: number;
  linkname?: Buffer;
  uid?: number;
  gid?: number;
}

function writeOctal(buf: Buffer, offset: number, width: number, value: number): void {
  // width includes the terminating NUL
  const digits = Math.max(0, Math.trunc(value)).toString(8).padStart(width - 1, '0');
  buf.write(digits, offset, width - 1, 'latin1');
  buf[offset + width - 1] = 0;
}

function writeBase256(buf: Buffer, offset: number, width: number, value: number): void {
  let v = BigInt(Math.trunc(value));
  for (let i = offset + width - 1; i > offset; i--) {
    buf[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  buf[offset] = 0x80;
}

function paxRecord(key: string, value: Buffer | string): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`, 'latin1'), Buffer.isBuffer(value) ? value : Buffer.from(value, 'utf8'), Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len), 'latin1'), body]);
}

function isPlainAscii(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] >= 0x80 || b[i] === 0) return false;
  return true;
}

/** An ASCII stand-in (for readers that ignore pax) of at most `max` bytes. */
function placeholder(b: Buffer, max: number): Buffer {
  const out = Buffer.from(b.subarray(Math.max(0, b.length - max)));
  for (let i = 0; i < out.length; i++) if (out[i] >= 0x80 || out[i] === 0) out[i] = 0x5f; // '_'
  return out;
}

function ustarHeader(fields: {
  name: Buffer;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: string;
  linkname?: Buffer;
}): Buffer {
  const h = Buffer.allocUnsafe(BLOCK).fill(0); // from the shared pool: no backing store per header
  fields.name.copy(h, 0, 0, Math.min(100, fields.name.length));
  writeOctal(h, 100, 8, fields.mode & 0o777);
  writeOctal(h, 108, 8, fields.uid <= MAX_OCTAL_7 ? fields.uid : 0);
  writeOctal(h, 116, 8, fields.gid <= MAX_OCTAL_7 ? fields.gid : 0);
  if (fields.size <= MAX_OCTAL_11) writeOctal(h, 124, 12, fields.size);
  else writeBase256(h, 124, 12, fields.size);
  writeOctal(h, 136, 12, Math.min(Math.max(fields.mtime, 0), MAX_INT32));
  h.write(fields.typeflag, 156, 1, 'latin1');
  if (fields.linkname) fields.linkname.copy(h, 157, 0, Math.min(100, fields.linkname.length));
  h.write('ustar\u000000', 257, 8, 'latin1');
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += h[i];
  h.write(sum.toString(8).padStart(6, '0') + '\u0000 ', 148, 8, 'latin1');
  return h;
}

/**
 * Header block(s) for one entry: a pax extended header first when the name or link target is
 * longer than 100 bytes or not plain ASCII, when the size exceeds the octal field, or when the
 * mtime is negative or past 2038 (the ustar field then holds a clamped value).
 */
export function encodeHeader(e: EncodeHeader): Buffer {
  const name = e.type === 'directory' ? Buffer.concat([e.name, Buffer.from('/')]) : e.name;
  const link = e.type === 'symlink' ? (e.linkname ?? Buffer.alloc(0)) : undefined;
  const size = e.type === 'file' ? e.size : 0;
  // Names that are not valid UTF-8 go as raw bytes in the pax records, as GNU tar and Go read
  // them back byte for byte. (No `hdrcharset=BINARY` record: GNU tar 1.34 warns about it.)
  const records: Buffer[] = [];
  if (name.length > 100 || !isPlainAscii(name)) records.push(paxRecord('path', name));
  if (link && (link.length > 100 || !isPlainAscii(link))) records.push(paxRecord('linkpath', link));
  if (size > MAX_OCTAL_11) records.push(paxRecord('size', String(size)));
  if (e.mtime < 0 || e.mtime > MAX_INT32) records.push(paxRecord('mtime', String(e.mtime)));

  const typeflag = e.type === 'file' ? '0' : e.type === 'directory' ? '5' : '2';
  const common = { mode: e.mode, uid: e.uid ?? 0, gid: e.gid ?? 0, mtime: e.mtime };
  const main = ustarHeader({
    ...common,
    name: records.length ? placeholder(name, 100) : name,
    size,
    typeflag,
    linkname: link ? (records.length ? placeholder(link, 100) : link) : undefined,
  });
  if (!records.length) return main;
  const body = Buffer.concat(records);
  const pad = (BLOCK - (body.length % BLOCK)) % BLOCK;
  const paxName = Buffer.concat([Buffer.from('PaxHeaders/'), placeholder(name, 88)]);
  const xh = ustarHeader({ ...common, name: paxName, size: body.length, typeflag: 'x' });
  return Buffer.concat([xh, body, Buffer.alloc(pad), main]);
}

export function paddingFor(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

// ---------------------------------------------------------------------------------------------
// Parsing

export type EntryType = 'file' | 'directory' | 'symlink' | 'link' | 'character-device' | 'block-device' | 'fifo' | 'unknown';

export interface ParsedEntry {
  /** Raw name bytes (pax path / GNU long name / ustar prefix+name). */
  name: Buffer;
  type: EntryType;
  typeflag: string;
  mode: number;
  mtime: number;
  size: number;
  linkname: Buffer;
}

export class TarFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TarFormatError';
  }
}

/**
 * Pull reader over an async iterable of buffers. `ready`, when given, tells how many chunks the
 * source holds that can be pulled without waiting (a Readable's readableLength in object mode):
 * readChunks() gathers those.
 */
export class ByteReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private done = false;
  private readonly it: AsyncIterator<unknown>;

  constructor(
    source: AsyncIterable<unknown>,
    private readonly ready: () => number = () => 0,
  ) {
    this.it = source[Symbol.asyncIterator]();
  }

  get available(): number {
    return this.buffered;
  }

  /** Pull one more chunk; false at end of input. */
  async fill(): Promise<boolean> {
    if (this.done) return false;
    const r = await this.it.next();
    if (r.done) {
      this.done = true;
      return false;
    }
    const b = r.value as Buffer;
    if (b.length) {
      this.chunks.push(b);
      this.buffered += b.length;
    }
    return true;
  }

  /** Exactly n bytes, or null if the input ends first (having consumed what was left). */
  async readExact(n: number): Promise<Buffer | null> {
    while (this.buffered < n) if (!(await this.fill())) return null;
    return this.take(n);
  }

  /** Between 1 and max bytes, or null at end of input. */
  async readUpTo(max: number): Promise<Buffer | null> {
    while (this.buffered === 0) if (!(await this.fill())) return null;
    return this.take(Math.min(max, this.buffered));
  }

  /**
   * Between 1 and max bytes as a list of chunks (no copy), or null at end of input: what is
   * buffered here and in the source now, waiting only when there is nothing.
   */
  async readChunks(max: number): Promise<Buffer[] | null> {
    while (this.buffered === 0) if (!(await this.fill())) return null;
    while (this.buffered < max && this.ready() > 0) if (!(await this.fill())) break;
    const out: Buffer[] = [];
    let want = Math.min(max, this.buffered);
    while (want > 0) {
      const c = this.take(Math.min(want, this.chunks[0].length));
      out.push(c);
      want -= c.length;
    }
    return out;
  }

  /** Discard n bytes; false if the input ended first. */
  async skip(n: number): Promise<boolean> {
    while (n > 0) {
      const b = await this.readUpTo(n);
      if (!b) return false;
      n -= b.length;
    }
    return true;
  }

  /** Consume everything left. Returns the number of bytes drained. */
  async drain(): Promise<number> {
    let n = this.buffered;
    this.chunks = [];
    this.buffered = 0;
    while (await this.fill()) {
      n += this.buffered;
      this.chunks = [];
      this.buffered = 0;
    }
    return n;
  }

  private take(n: number): Buffer {
    const first = this.chunks[0];
    if (first.length === n) {
      this.chunks.shift();
      this.buffered -= n;
      return first;
    }
    if (first.length > n) {
      this.chunks[0] = first.subarray(n);
      this.buffered -= n;
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    while (off < n) {
      const c = this.chunks[0];
      const k = Math.min(c.length, n - off);
      c.copy(out, off, 0, k);
      off += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    this.buffered -= n;
    return out;
  }
}

function cstr(b: Buffer, off: number, len: number): Buffer {
  const s = b.subarray(off, off + len);
  const z = s.indexOf(0);
  return z === -1 ? s : s.subarray(0, z);
}

function parseNumeric(b: Buffer, off: number, len: number, field: string): number {
  const s = b.subarray(off, off + len);
  if (s[0] & 0x80) {
    // base-256, two's complement when the first byte is 0xff
    const negative = s[0] === 0xff;
    let v = 0n;
    for (let i = 0; i < s.length; i++) {
      const byte = i === 0 ? s[i] & 0x7f : s[i];
      v = (v << 8n) | BigInt(negative ? (~byte & 0xff) : byte);
    }
    if (negative) v = -(v + 1n);
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER)) throw new TarFormatError(`tar header: ${field} out of range`);
    return Number(v);
  }
  const text = s.toString('latin1').replace(/[\0 ]+$/, '').replace(/^[ \0]+/, '');
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw new TarFormatError(`tar header: invalid ${field} field`);
  return parseInt(text, 8);
}

function headerChecksumOk(h: Buffer): boolean {
  const stored = parseNumeric(h, 148, 8, 'checksum');
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const v = i >= 148 && i < 156 ? 0x20 : h[i];
    unsigned += v;
    signed += v >= 0x80 ? v - 256 : v;
  }
  return stored === unsigned || stored === signed;
}

function typeOf(flag: string): EntryType {
  switch (flag) {
    case '0':
    case '\0':
    case '7':
      return 'file';
    case '1':
      return 'link';
    case '2':
      return 'symlink';
    case '3':
      return 'character-device';
    case '4':
      return 'block-device';
    case '5':
      return 'directory';
    case '6':
      return 'fifo';
    default:
      return 'unknown';
  }
}

function parsePax(body: Buffer, into: Map<string, Buffer>): void {
  let off = 0;
  while (off < body.length) {
    if (body[off] === 0) break; // NUL padding
    const sp = body.indexOf(0x20, off);
    if (sp === -1) throw new TarFormatError('pax header: malformed record');
    const lenText = body.toString('latin1', off, sp);
    if (!/^[0-9]+$/.test(lenText)) throw new TarFormatError('pax header: malformed record length');
    const len = parseInt(lenText, 10);
    const end = off + len;
    if (len <= sp - off + 1 || end > body.length || body[end - 1] !== 0x0a) throw new TarFormatError('pax header: malformed record');
    const rec = body.subarray(sp + 1, end - 1);
    const eq = rec.indexOf(0x3d);
    if (eq <= 0) throw new TarFormatError('pax header: malformed record');
    into.set(rec.toString('latin1', 0, eq), Buffer.from(rec.subarray(eq + 1)));
    off = end;
  }
}

const MAX_META_SIZE = 1024 * 1024;

/**
 * Read the next entry header, applying pax ('x', 'g') and GNU long name ('L', 'K') records.
 * Returns null at the end-of-archive marker (a zero block); throws TarFormatError on a
 * malformed header and on end of input before the marker.
 */
export async function readEntryHeader(r: ByteReader, globals: Map<string, Buffer>): Promise<ParsedEntry | null> {
  let pax: Map<string, Buffer> | null = null;
  let longName: Buffer | null = null;
  let longLink: Buffer | null = null;
  for (;;) {
    const h = await r.readExact(BLOCK);
    if (!h) throw new TarFormatError('tar archive is truncated (no end-of-archive marker)');
    let zero = true;
    for (let i = 0; i < BLOCK; i++) {
      if (h[i] !== 0) {
        zero = false;
        break;
      }
    }
    if (zero) return null;
    if (!headerChecksumOk(h)) throw new TarFormatError('tar header checksum mismatch (corrupt archive)');
    const typeflag = String.fromCharCode(h[156]);
    const size = parseNumeric(h, 124, 12, 'size');
    if (size < 0) throw new TarFormatError('tar header: negative size');
    if (typeflag === 'x' || typeflag === 'g' || typeflag === 'L' || typeflag === 'K') {
      if (size > MAX_META_SIZE) throw new TarFormatError('tar header: extended header too large');
      const body = await r.readExact(size);
      if (!body || !(await r.skip(paddingFor(size)))) throw new TarFormatError('tar archive is truncated');
      if (typeflag === 'x') parsePax(body, (pax ??= new Map<string, Buffer>()));
      else if (typeflag === 'g') parsePax(body, globals);
      else if (typeflag === 'L') longName = Buffer.from(cstr(body, 0, body.length));
      else longLink = Buffer.from(cstr(body, 0, body.length));
      continue;
    }

    let name: Buffer = cstr(h, 0, 100);
    const magic = h.toString('latin1', 257, 263);
    if (magic === 'ustar\u0000') {
      const prefix = cstr(h, 345, 155);
      if (prefix.length) name = Buffer.concat([prefix, Buffer.from('/'), name]);
    }
    const rec = (k: string): Buffer | undefined => pax?.get(k) ?? globals.get(k);
    name = Buffer.from(rec('path') ?? longName ?? name);
    let linkname = Buffer.from(rec('linkpath') ?? longLink ?? cstr(h, 157, 100));
    let entrySize = size;
    const paxSize = rec('size');
    if (paxSize) {
      const t = paxSize.toString('latin1');
      if (!/^[0-9]+$/.test(t)) throw new TarFormatError('pax header: invalid size');
      entrySize = parseInt(t, 10);
    }
    let mtime = parseNumeric(h, 136, 12, 'mtime');
    const paxMtime = rec('mtime');
    if (paxMtime) {
      const t = paxMtime.toString('latin1');
      if (!/^-?[0-9]+(\.[0-9]*)?$/.test(t)) throw new TarFormatError('pax header: invalid mtime');
      mtime = Math.floor(parseFloat(t));
    }
    let type = typeOf(typeflag);
    // old (v7) archives mark directories with a trailing slash on a regular-file entry
    if (type === 'file' && typeflag !== '7' && name.length && name[name.length - 1] === 0x2f) type = 'directory';
    if (type !== 'symlink' && type !== 'link') linkname = Buffer.alloc(0);
    return { name, type, typeflag, mode: parseNumeric(h, 100, 8, 'mode'), mtime, size: entrySize, linkname };
  }
}
