import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { ProcessState } from '../environment/environment.js';
import { parseServerConfiguration, type ServerConfigurationData } from './configuration.js';
import { Server, type ServerDeps } from './server.js';

async function pool<T>(items: T[], size: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(size, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++];
      await fn(item);
    }
  });
  await Promise.all(workers);
}

/** The registry of this node's servers, in registration order; boot loading and states.json. */
export class ServerManager {
  private readonly servers = new Map<string, Server>();
  private saveTimer: NodeJS.Timeout | undefined;
  /** After freeze() (daemon shutdown) states.json is no longer rewritten. */
  private frozen = false;
  private readonly logger: Logger;

  constructor(private readonly deps: ServerDeps) {
    this.logger = deps.logger;
    const outer = deps.onStateChange;
    this.deps = {
      ...deps,
      onStateChange: (server, state) => {
        outer?.(server, state);
        this.scheduleSave();
      },
    };
  }

  private get statesPath(): string {
    return path.join(this.deps.config().system.root_directory, 'states.json');
  }

  list(): Server[] {
    return [...this.servers.values()];
  }

  get(uuid: string): Server | undefined {
    return this.servers.get(uuid);
  }

  has(uuid: string): boolean {
    return this.servers.has(uuid);
  }

  /** Builds a server object (no environment calls yet) without registering it. */
  instantiate(data: ServerConfigurationData): Server {
    return new Server(data, this.deps);
  }

  add(server: Server): void {
    this.servers.set(server.uuid, server);
  }

  remove(uuid: string): void {
    this.servers.delete(uuid);
    this.scheduleSave();
  }

  /** Boot step 9: every server the Panel lists for this node; a broken entry is logged and skipped. */
  async loadFromPanel(): Promise<void> {
    const cfg = this.deps.config();
    const entries = await this.deps.panel.getServers(cfg.remote_query.boot_servers_per_page);
    for (const entry of entries) {
      try {
        const data = parseServerConfiguration(entry, cfg.system.crash_detection.enabled);
        if (this.servers.has(data.settings.uuid)) continue;
        const server = this.instantiate(data);
        await fs.promises.mkdir(server.dataDirectory, { recursive: true, mode: 0o755 });
        this.add(server);
        void server.disk.refresh().catch(() => {});
      } catch (err) {
        this.logger.error({ uuid: entry?.uuid, err }, 'skipping server that failed to load');
      }
    }
    this.logger.info({ count: this.servers.size }, 'loaded servers from the panel');
  }

  readStates(): Record<string, ProcessState> {
    try {
      return JSON.parse(fs.readFileSync(this.statesPath, 'utf8')) as Record<string, ProcessState>;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        this.logger.warn({ err }, 'could not read states.json; assuming every server offline');
      }
      return {};
    }
  }

  /** Boot step 14: re-attach running instances, restart those that were running (≤ 4 in parallel). */
  async restoreStates(): Promise<void> {
    const states = this.readStates();
    await pool(this.list(), 4, async (server) => {
      try {
        await fs.promises.mkdir(server.dataDirectory, { recursive: true, mode: 0o755 });
        if (await server.environment.isRunning()) {
          await server.environment.attach();
          return;
        }
        const last = states[server.uuid];
        if (last === 'running' || last === 'starting') {
          this.logger.info({ server: server.uuid }, 'restoring server to its previous running state');
          await server.handlePowerAction('start', 0, 'boot (running before the restart)');
        }
      } catch (err) {
        this.logger.error({ server: server.uuid, err }, 'failed to restore server state');
      }
    });
    this.saveStatesNow();
  }

  /** Writes the states one last time and stops writing (shutdown stops process servers after this). */
  freeze(): void {
    this.saveStatesNow();
    this.frozen = true;
  }

  private scheduleSave(): void {
    if (this.saveTimer || this.frozen) return;
    this.saveTimer = setTimeout(() => {
      this.saveTimer = undefined;
      this.saveStatesNow();
    }, 250);
    this.saveTimer.unref();
  }

  /** Writes `{"<uuid>": "<state>"}` for every server (mode 0644), atomically. */
  saveStatesNow(): void {
    if (this.saveTimer) {
      clearTimeout(this.saveTimer);
      this.saveTimer = undefined;
    }
    if (this.frozen) return;
    const out: Record<string, ProcessState> = {};
    for (const s of this.servers.values()) out[s.uuid] = s.state;
    try {
      fs.mkdirSync(path.dirname(this.statesPath), { recursive: true });
      const tmp = `${this.statesPath}.tmp`;
      fs.writeFileSync(tmp, JSON.stringify(out), { mode: 0o644 });
      fs.renameSync(tmp, this.statesPath);
    } catch (err) {
      this.logger.error({ err }, 'failed to write states.json');
    }
  }
}
