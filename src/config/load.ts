import fs from 'node:fs';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { ConfigSchema, type Config } from './schema.js';
import { findUnknownKeys, type UnknownKey } from './unknown-keys.js';

export class ConfigError extends Error {
  constructor(
    message: string,
    readonly file: string,
  ) {
    super(message);
    this.name = 'ConfigError';
  }
}

export interface LoadedConfig {
  config: Config;
  /** The document as read, unknown keys included: saving merges onto it so nothing is lost. */
  raw: Record<string, unknown>;
  path: string;
  /** Keys of the file the schema does not know (typos, other daemons' keys): warned at boot. */
  unknown: UnknownKey[];
}

export function parseConfigText(text: string, file: string): LoadedConfig {
  let raw: unknown;
  try {
    raw = parse(text) ?? {};
  } catch (err) {
    throw new ConfigError(`${file}: not valid YAML: ${(err as Error).message}`, file);
  }
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(`${file}: the top level must be a mapping`, file);
  }
  const result = ConfigSchema.safeParse(raw);
  if (!result.success) {
    const issues = result.error.issues
      .map((i) => `  key "${i.path.join('.')}": ${i.message}`)
      .join('\n');
    throw new ConfigError(`${file}: invalid configuration:\n${issues}`, file);
  }
  const doc = raw as Record<string, unknown>;
  return { config: result.data, raw: doc, path: file, unknown: findUnknownKeys(doc) };
}

export function loadConfig(file: string): LoadedConfig {
  const abs = path.resolve(file);
  let text: string;
  try {
    text = fs.readFileSync(abs, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ConfigError(`Configuration File Not Found: ${abs}`, abs);
    throw new ConfigError(`${abs}: cannot read: ${(err as Error).message}`, abs);
  }
  return parseConfigText(text, abs);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Deep merge: values of `over` win; keys only in `base` (unknown to us) are kept. */
export function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    out[k] = isPlainObject(v) && isPlainObject(base[k]) ? deepMerge(base[k], v) : v;
  }
  return out;
}

/** Writes the whole configuration (all defaults written out, unknown keys kept), mode 0600, atomically. */
export function saveConfig(loaded: LoadedConfig, config: Config): LoadedConfig {
  const doc = deepMerge(loaded.raw, config);
  const tmp = `${loaded.path}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, stringify(doc), { mode: 0o600 });
  fs.renameSync(tmp, loaded.path);
  return { config, raw: doc, path: loaded.path, unknown: loaded.unknown };
}

/**
 * POST /api/update (docs/protocol.md W4.2): the JSON body is decoded on top of a copy of the
 * current configuration. `allowed_mounts` is ignored; Let's Encrypt default SSL paths keep the old
 * files.
 */
export function applyPanelUpdate(current: Config, body: Record<string, unknown>): Config {
  const patch: Record<string, unknown> = { ...body };
  delete patch.allowed_mounts;
  const merged = deepMerge(current, patch);
  const next = ConfigSchema.parse(merged);
  if (next.api.ssl.key.startsWith('/etc/letsencrypt/live/')) {
    next.api.ssl.cert = current.api.ssl.cert;
    next.api.ssl.key = current.api.ssl.key;
  }
  return next;
}

