import { z } from 'zod';
import { ConfigSchema } from './schema.js';

/**
 * Keys of config.yml that the schema does not know. The Go daemon ignores them silently, so a typo
 * (`api.prot: 18130`) boots on the default port without a word; we keep them on save as Go does
 * (load.ts) but name them at boot and in `wings diagnostics`, with the nearest known key.
 * docs/configuration.md, "Unknown keys".
 */
export interface UnknownKey {
  /** Dotted path in the file, e.g. `api.prot`. */
  key: string;
  /** The nearest known key at the same level, when one is close enough to be a likely typo. */
  suggestion: string | null;
  /** Set when the key belongs to another daemon's config (Pelican, newer Go Wings): read by them, not by us. */
  foreign: string | null;
}

/**
 * Keys other daemons define that wings-ts does not read: accepted quietly (diagnostics lists them),
 * since an operator moving a node between daemons keeps one config.yml.
 */
const FOREIGN: Record<string, string> = {
  'api.remote_download': 'Pelican',
  'system.quotas': 'Pelican',
  'system.passwd': 'Pelican and newer Go Wings',
  'system.machine_id': 'Pelican and newer Go Wings',
  'docker.network.IPv6': 'Pelican',
  'docker.system_ips': 'Pelican',
  token_id_file: 'newer Go Wings',
};

/** The object shape under defaults/optionals, or null when the node is a leaf or a free-form record. */
function objectShape(schema: z.ZodType): Record<string, z.ZodType> | null {
  let node: z.ZodType = schema;
  while (
    node instanceof z.ZodDefault ||
    node instanceof z.ZodPrefault ||
    node instanceof z.ZodOptional ||
    node instanceof z.ZodNullable
  ) {
    node = node.unwrap() as z.ZodType;
  }
  return node instanceof z.ZodObject ? (node.shape) : null;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Levenshtein distance, small strings only (config keys). */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length];
}

function nearest(key: string, known: string[]): string | null {
  let best: string | null = null;
  let bestDistance = Infinity;
  for (const k of known) {
    const d = distance(key.toLowerCase(), k.toLowerCase());
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  // A typo is a couple of edits away; anything further is a different word.
  return best !== null && bestDistance <= Math.max(2, Math.floor(key.length / 3)) ? best : null;
}

export function findUnknownKeys(raw: Record<string, unknown>, schema: z.ZodType = ConfigSchema): UnknownKey[] {
  const out: UnknownKey[] = [];
  const walk = (doc: Record<string, unknown>, shape: Record<string, z.ZodType>, prefix: string): void => {
    const known = Object.keys(shape);
    for (const [k, v] of Object.entries(doc)) {
      const key = prefix + k;
      const sub = shape[k];
      if (sub === undefined) {
        const foreign = FOREIGN[key] ?? null;
        out.push({ key, suggestion: foreign ? null : nearest(k, known), foreign });
        continue;
      }
      const subShape = objectShape(sub);
      if (subShape && isPlainObject(v)) walk(v, subShape, `${key}.`);
    }
  };
  const top = objectShape(schema);
  if (top) walk(raw, top, '');
  return out;
}

/** One line per key, for the boot warning and diagnostics. */
export function describeUnknownKey(u: UnknownKey): string {
  if (u.foreign) return `${u.key}: read by ${u.foreign}, not by wings-ts (kept in the file, ignored)`;
  const hint = u.suggestion ? ` (did you mean "${u.key.slice(0, u.key.lastIndexOf('.') + 1)}${u.suggestion}"?)` : '';
  return `${u.key}: unknown key, ignored${hint}`;
}
