import { createRequire } from 'node:module';
import path from 'node:path';
import { PACKAGE_ROOT } from './package-root.js';

const require = createRequire(import.meta.url);
/** The daemon version: package.json's, without a leading `v` (as /api/system reports it). */
export const VERSION: string = (require(path.join(PACKAGE_ROOT, 'package.json')) as { version: string }).version;
