import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { snapshotTree, type TreeEntry } from '../../tools/demo/tree.js';

export type EntrySnapshot = TreeEntry;

/**
 * Every entry below root (names as latin1 of the raw bytes, so any byte survives), with metadata:
 * the demo's snapshot as a plain object, which reads better in a failed `toEqual`.
 */
export async function snapshot(root: string): Promise<Record<string, EntrySnapshot>> {
  return Object.fromEntries(await snapshotTree(root));
}

/** A tree that exercises every fidelity rule of docs/protocol.md D5.3. */
export function makeFidelityTree(root: string, opts: { bigBytes?: number } = {}): void {
  const p = (...parts: string[]) => path.join(root, ...parts);
  fs.mkdirSync(p('world/region'), { recursive: true });
  fs.mkdirSync(p('empty-dir'));
  fs.mkdirSync(p('deep/a/b/c/d'), { recursive: true });
  fs.writeFileSync(p('server.properties'), 'server-port=25565\nmotd=hello\n');
  fs.writeFileSync(p('world/region/r.0.0.mca'), randomBytes(opts.bigBytes ?? 3 * 1024 * 1024));
  fs.writeFileSync(p('deep/a/b/c/d/leaf.txt'), 'leaf\n'.repeat(1000));
  fs.writeFileSync(p('empty.txt'), '');
  fs.writeFileSync(p('secret.key'), 'k');
  fs.chmodSync(p('secret.key'), 0o600);
  fs.writeFileSync(p('start.sh'), '#!/bin/sh\necho hi\n');
  fs.chmodSync(p('start.sh'), 0o755);
  fs.writeFileSync(p('setuid-bin'), 'x');
  fs.chmodSync(p('setuid-bin'), 0o4755);
  fs.writeFileSync(p('denied.jar'), 'jar bytes'); // the egg denylist must not apply to transfers
  fs.writeFileSync(p('name with spaces & ünïcödé.txt'), 'u');
  fs.writeFileSync(p('new\nline'), 'n');
  fs.writeFileSync(Buffer.from(p('raw-') + '\xff\xfe', 'latin1'), 'not utf8');
  fs.writeFileSync(p(`${'long-name-'.repeat(20)}.txt`), 'long');
  fs.mkdirSync(p('x'.repeat(100), 'y'.repeat(100), 'z'.repeat(60)), { recursive: true });
  fs.writeFileSync(p('x'.repeat(100), 'y'.repeat(100), 'z'.repeat(60), 'deep-long.txt'), 'deep');
  fs.symlinkSync('server.properties', p('link-relative'));
  fs.symlinkSync('/etc/hostname', p('link-absolute'));
  fs.symlinkSync('does/not/exist', p('link-dangling'));
  fs.symlinkSync('world', p('link-dir'));
  fs.writeFileSync(p('hard-a'), 'hard link content');
  fs.linkSync(p('hard-a'), p('hard-b'));
  const old = new Date('2001-02-03T04:05:06Z');
  fs.utimesSync(p('server.properties'), old, old);
  const future = new Date('2100-01-01T00:00:00Z');
  fs.utimesSync(p('empty.txt'), future, future);
  fs.utimesSync(p('world/region'), old, old);
  fs.utimesSync(p('empty-dir'), old, old);
  fs.utimesSync(p('world'), old, old);
}

/** The snapshot as the destination must hold it: setuid/setgid/sticky bits dropped. */
export function expectedAfterTransfer(snap: Record<string, EntrySnapshot>): Record<string, EntrySnapshot> {
  const out: Record<string, EntrySnapshot> = {};
  for (const [k, v] of Object.entries(snap)) out[k] = { ...v, mode: v.mode & 0o777 };
  return out;
}
