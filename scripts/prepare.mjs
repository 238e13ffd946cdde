// npm runs `prepare` after `npm install` / `npm ci` in a checkout and before `npm pack`. The build
// needs TypeScript, a dev dependency: `npm ci --omit=dev` has no compiler, so there the build is
// skipped with a note instead of failing the install with `tsc: not found`. A pack without the
// compiler would ship a package without dist/, so that one fails.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
let hasCompiler = true;
try {
  require.resolve('typescript/package.json');
} catch {
  hasCompiler = false;
}

const packing = ['pack', 'publish'].includes(process.env.npm_command ?? '');
if (!hasCompiler) {
  if (packing) {
    console.error('wings-ts: cannot pack without building dist/: TypeScript is missing (run `npm install` first)');
    process.exit(1);
  }
  console.error(
    'wings-ts: dev dependencies are not installed, so dist/ is not built. For a node, install the packed ' +
      'package (docs/operations.md); to build here, run `npm install`.',
  );
  process.exit(0);
}

// npm_execpath is npm's own entry point when npm runs this script; `npm run build` keeps one
// definition of the build (package.json's "build").
const npm = process.env.npm_execpath;
const result = npm
  ? spawnSync(process.execPath, [npm, 'run', 'build'], { stdio: 'inherit' })
  : spawnSync('npm', ['run', 'build'], { stdio: 'inherit', shell: process.platform === 'win32' });
process.exit(result.status ?? 1);
