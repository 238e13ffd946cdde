import fs from 'node:fs';
import path from 'node:path';
import type { Direction } from './transfer.js';

export interface Marker {
  server: string;
  direction: Direction;
  started_at: string;
  pid: number;
}

/**
 * Persisted markers of active transfers (docs/protocol.md D7.4):
 * `<root_directory>/transfers/<direction>/<uuid>.json`. A marker left over at boot means the
 * transfer died with the process.
 */
export class MarkerStore {
  constructor(private readonly root: () => string) {}

  private dir(direction: Direction): string {
    return path.join(this.root(), 'transfers', direction);
  }

  write(direction: Direction, server: string): void {
    const dir = this.dir(direction);
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const marker: Marker = { server, direction, started_at: new Date().toISOString(), pid: process.pid };
    const file = path.join(dir, `${server}.json`);
    fs.writeFileSync(`${file}.tmp`, JSON.stringify(marker));
    fs.renameSync(`${file}.tmp`, file);
  }

  remove(direction: Direction, server: string): void {
    fs.rmSync(path.join(this.dir(direction), `${server}.json`), { force: true });
  }

  list(direction: Direction): Marker[] {
    let names: string[];
    try {
      names = fs.readdirSync(this.dir(direction));
    } catch {
      return [];
    }
    const out: Marker[] = [];
    for (const name of names) {
      if (!name.endsWith('.json')) continue;
      const server = name.slice(0, -5);
      try {
        out.push(JSON.parse(fs.readFileSync(path.join(this.dir(direction), name), 'utf8')) as Marker);
      } catch {
        out.push({ server, direction, started_at: '', pid: 0 });
      }
    }
    return out;
  }
}
