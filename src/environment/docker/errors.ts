/** Helpers for the errors docker-modem produces (`statusCode`, `json.message`). */

export function statusCode(err: unknown): number | undefined {
  const code = (err as { statusCode?: unknown } | null)?.statusCode;
  return typeof code === 'number' ? code : undefined;
}

export function isNotFound(err: unknown): boolean {
  return statusCode(err) === 404;
}

/** The engine's own message when there is one ("No such container: …"), else the error text. */
export function engineMessage(err: unknown): string {
  const json = (err as { json?: unknown } | null)?.json;
  if (json && typeof json === 'object' && typeof (json as { message?: unknown }).message === 'string') {
    return (json as { message: string }).message;
  }
  if (typeof json === 'string' && json.trim() !== '') return json.trim();
  const text = err instanceof Error ? err.message : String(err);
  // docker-modem: "(HTTP code 500) server error - <engine message> "
  const m = /^\(HTTP code \d+\) [^-]*- ([\s\S]*)$/.exec(text);
  return (m ? m[1] : text).trim();
}
