import fs from 'node:fs';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { ConfigSchema, type Config } from './schema.js';
import { ConfigError, keyOfPath, systemErrorText } from './errors.js';
import { findUnknownKeys, type UnknownKey } from './unknown-keys.js';

export { ConfigError } from './errors.js';

/** Where the daemon and every `wings` command look for config.yml unless told otherwise (as Go's Wings). */
export const DEFAULT_CONFIG_PATH = '/etc/pterodactyl/config.yml';

export interface LoadedConfig {
  config: Config;
  /** The document as read, unknown keys included: saving merges onto it so nothing is lost. */
  raw: Record<string, unknown>;
  path: string;
  /** Keys of the file the schema does not know (typos, other daemons' keys): warned at boot. */
  unknown: UnknownKey[];
}

/** zod's "Invalid input: expected number, received string" reads better without its category. */
function issueMessage(message: string): string {
  return message.replace(/^Invalid (input|option): /, '');
}

export function parseConfigText(text: string, file: string): LoadedConfig {
  let raw: unknown;
  try {
    raw = parse(text) ?? {};
  } catch (err) {
    // The parser's message ends with a code frame on the next lines; its first line has the position.
    const first = (err as Error).message.split('\n')[0].replace(/:$/, '');
    throw new ConfigError(file, [{ key: null, message: `not valid YAML: ${first}` }], { cause: err });
  }
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(file, [{ key: null, message: 'the top level must be a mapping' }]);
  }
  const result = ConfigSchema.safeParse(raw);
  if (!result.success) {
    throw new ConfigError(
      file,
      result.error.issues.map((i) => ({ key: keyOfPath(i.path), message: issueMessage(i.message) })),
    );
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
    if (code === 'ENOENT') throw new ConfigError(abs, [{ key: null, message: 'configuration file not found' }], { cause: err });
    throw new ConfigError(abs, [{ key: null, message: `cannot read: ${systemErrorText(err)}` }], { cause: err });
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

