import { z } from 'zod';

/** A lowercase canonical version-4 UUID: what the Panel generates for servers. */
export const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

export const uuidV4Schema = z.string().regex(UUID_V4);

export function isUuidV4(value: string): boolean {
  return UUID_V4.test(value);
}
