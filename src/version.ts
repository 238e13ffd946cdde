import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
/** The daemon version: package.json's, without a leading `v` (as /api/system reports it). */
export const VERSION: string = (require('../package.json') as { version: string }).version;
