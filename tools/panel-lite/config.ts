import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { findUnknownKeys } from '../../src/config/unknown-keys.js';

/**
 * panel-lite's own settings: its YAML file (docs/panel-lite.md, "Configuration"), the temporary
 * set-up of `wings panel-lite` without `--config`, and the log level variable. Every mistake an
 * operator can make here is a PanelLiteConfigError: one line naming the file and the key, which the
 * CLI prints as is (no stack: the stack is ours, the mistake is theirs).
 */

export class PanelLiteConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PanelLiteConfigError';
  }
}

const Port = z.number().int().min(0).max(65535);
const HttpUrl = z.string().refine((v) => /^https?:\/\/[^/]/.test(v) && URL.canParse(v), 'expected an http:// or https:// URL');

export const FileConfig = z.object({
  listen: z.object({ host: z.string().min(1).default('127.0.0.1'), port: Port.default(0) }).prefault({}),
  admin: z.object({ host: z.string().min(1).optional(), port: Port.default(0), token: z.string().min(1) }),
  public_url: HttpUrl.optional(),
  data_directory: z.string().min(1),
});

/** What a required key is for, said where its absence is reported. */
const REQUIRED: Record<string, string> = {
  'admin.token': 'the Bearer token the admin API asks for',
  data_directory: 'where panel-lite keeps state.json, relative to this file',
};

function valueAt(doc: unknown, keys: PropertyKey[]): unknown {
  let v = doc;
  for (const k of keys) {
    if (typeof v !== 'object' || v === null) return undefined;
    v = (v as Record<PropertyKey, unknown>)[k];
  }
  return v;
}

/**
 * One short phrase per zod issue, naming the key: `admin.token is missing (…)` or `admin.port: <what
 * was expected>`. The value itself is never repeated (it may be a token). Also the admin API's 422s.
 */
export function describeIssues(issues: readonly z.core.$ZodIssue[], doc: unknown, purposes: Record<string, string> = {}): string[] {
  return issues.map((issue) => {
    const key = issue.path.map(String).join('.') || '(body)';
    if (issue.path.length > 0 && valueAt(doc, issue.path) === undefined) {
      return `${key} is missing${purposes[key] ? ` (${purposes[key]})` : ''}`;
    }
    return `${key}: ${issue.message}`;
  });
}

/** Every problem of a parsed document, one short phrase each; empty when it is valid. */
function problemsOf(doc: Record<string, unknown>): string[] {
  const problems = findUnknownKeys(doc, FileConfig).map(
    (u) => `${u.key}: unknown key${u.suggestion ? ` (did you mean "${u.key.slice(0, u.key.lastIndexOf('.') + 1)}${u.suggestion}"?)` : ''}`,
  );
  const parsed = FileConfig.safeParse(doc);
  if (!parsed.success) problems.push(...describeIssues(parsed.error.issues, doc, REQUIRED));
  return problems;
}

export interface FilePanelOptions {
  host: string;
  port: number;
  adminHost?: string;
  adminPort: number;
  publicUrl?: string;
  dataDirectory: string;
  adminToken: string;
}

/** Reads and checks a panel-lite config file; throws a PanelLiteConfigError naming the file and the key. */
export async function loadPanelLiteConfig(configPath: string): Promise<FilePanelOptions> {
  const file = path.resolve(configPath);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new PanelLiteConfigError(`${file}: no such file (docs/panel-lite.md shows one; without --config panel-lite runs with temporary settings)`);
    }
    throw new PanelLiteConfigError(`${file}: cannot read it: ${(err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new PanelLiteConfigError(`${file}: not valid YAML: ${(err as Error).message.split('\n')[0].replace(/:$/, '')}`);
  }
  raw ??= {};
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new PanelLiteConfigError(`${file}: the top level must be a mapping (listen, admin, public_url, data_directory)`);
  }
  // An absent `admin` section is reported as its one required key.
  const doc = { ...(raw as Record<string, unknown>) };
  doc.admin ??= {};
  const problems = problemsOf(doc);
  if (problems.length > 0) throw new PanelLiteConfigError(`${file}: ${problems.join('; ')}`);
  const c = FileConfig.parse(doc);
  return {
    host: c.listen.host,
    port: c.listen.port,
    adminHost: c.admin.host,
    adminPort: c.admin.port,
    publicUrl: c.public_url,
    dataDirectory: path.resolve(path.dirname(file), c.data_directory),
    adminToken: c.admin.token,
  };
}

export interface TemporaryPanelOptions {
  dataDirectory: string;
  adminToken: string;
  /** `<dataDirectory>/admin-token`: the generated token, readable by its owner only. */
  adminTokenFile: string;
}

/**
 * The settings of `wings panel-lite` without `--config`: a fresh directory under the OS temp dir and
 * a random admin token, written to a file there rather than printed, so that it stays out of logs
 * that capture the output. Ports are left to the caller's defaults (free ports on 127.0.0.1).
 */
export function temporaryPanelOptions(): TemporaryPanelOptions {
  const dataDirectory = mkdtempSync(path.join(os.tmpdir(), 'panel-lite-'));
  const adminToken = randomBytes(24).toString('hex');
  const adminTokenFile = path.join(dataDirectory, 'admin-token');
  writeFileSync(adminTokenFile, `${adminToken}\n`, { mode: 0o600 });
  return { dataDirectory, adminToken, adminTokenFile };
}

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** PANEL_LITE_LOG_LEVEL, default `silent`. */
export function logLevelFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  const level = env.PANEL_LITE_LOG_LEVEL?.trim() || 'silent';
  if (!LEVELS.includes(level)) {
    throw new PanelLiteConfigError(`PANEL_LITE_LOG_LEVEL: "${level}" is not a level (${LEVELS.join(', ')})`);
  }
  return level;
}
