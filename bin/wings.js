#!/usr/bin/env node
// Entry point of the `wings` command: runs the compiled CLI (npm install builds dist/ via `prepare`).
import('../dist/cli/index.js').catch((err) => {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/cli')) {
    console.error('wings-ts is not built: run `npm install` (or `npm run build`) first.');
  } else {
    console.error(err);
  }
  process.exit(1);
});
