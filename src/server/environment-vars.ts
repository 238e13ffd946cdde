import type { ServerSettings } from './configuration.js';

function render(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  // Go decodes JSON numbers as floats and prints them with six decimals (docs/protocol.md W14).
  if (typeof value === 'number') return value.toFixed(6);
  return '';
}

/** The environment variables of docs/protocol.md W14, in order. */
export function environmentVariables(settings: ServerSettings, timezone: string): string[] {
  const out = [
    `TZ=${timezone}`,
    `STARTUP=${settings.invocation}`,
    `SERVER_MEMORY=${settings.build.memory_limit}`,
    `SERVER_IP=${settings.allocations.default.ip}`,
    `SERVER_PORT=${settings.allocations.default.port}`,
  ];
  const seen = new Set(out.map((v) => v.slice(0, v.indexOf('='))));
  for (const [key, value] of Object.entries(settings.environment ?? {})) {
    const name = key.toUpperCase();
    if (seen.has(name)) continue;
    seen.add(name);
    out.push(`${name}=${render(value)}`);
  }
  return out;
}
