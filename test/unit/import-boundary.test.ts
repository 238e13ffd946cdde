import path from 'node:path';
import { ESLint } from 'eslint';
import tseslint from 'typescript-eslint';
import { beforeAll, describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../../src/package-root.js';

/**
 * The lint rule that keeps the tools (tools/: panel-lite, the demo), the bench and the tests out of
 * the daemon's import graph, run through ESLint's Node API with the repository's own config on
 * source text that is linted as if it were a file of src/ (nothing is written there). Type-aware
 * linting is switched off for it: the project service only knows files that exist on disk, and
 * the boundary rules do not need types.
 */
let eslint: ESLint;

beforeAll(() => {
  eslint = new ESLint({ cwd: PACKAGE_ROOT, overrideConfig: tseslint.configs.disableTypeChecked });
});

async function boundaryErrors(code: string, file: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: path.join(PACKAGE_ROOT, file) });
  expect(result.messages.filter((m) => m.fatal)).toEqual([]);
  return result.messages.filter((m) => m.ruleId === 'no-restricted-imports' || m.ruleId === 'no-restricted-syntax').map((m) => m.message);
}

describe('the daemon never imports the tools, the bench or the tests (eslint)', () => {
  it('fails a daemon module that imports panel-lite, the demo, the bench or a test helper', async () => {
    const code = [
      "import { startPanelLite } from '../tools/panel-lite/index.js';",
      "export { runDemo } from '../../tools/demo/index.js';",
      "import type { TestNode } from '../../test/helpers/harness.js';",
      "import '../bench/archive.js';",
      'export type Node = TestNode;',
      'export const start = startPanelLite;',
      '',
    ].join('\n');
    const errors = await boundaryErrors(code, 'src/panel/boundary-probe.ts');
    expect(errors).toHaveLength(4);
    for (const e of errors) expect(e).toContain('must not import tools/, bench/ or test/');
  });

  it('fails import() of a tool, and import() of a computed path', async () => {
    const code = [
      "export const demo = () => import('../../tools/demo/index.js');",
      "const where = '../../tools/demo/index.js';",
      'export const hidden = () => import(where);',
      '',
    ].join('\n');
    const errors = await boundaryErrors(code, 'src/cli/boundary-probe.ts');
    expect(errors).toEqual([
      expect.stringContaining('must not import tools/, bench/ or test/'),
      expect.stringContaining('import() in the daemon takes a string literal'),
    ]);
  });

  it('lets the daemon import itself and its packages, and the tools import the daemon', async () => {
    const daemon = "import { loadConfig } from '../config/load.js';\nimport { z } from 'zod';\nexport const x = [loadConfig, z];\n";
    expect(await boundaryErrors(daemon, 'src/cli/boundary-probe.ts')).toEqual([]);
    const tool = "import { loadConfig } from '../../src/config/load.js';\nexport const x = loadConfig;\n";
    expect(await boundaryErrors(tool, 'tools/demo/boundary-probe.ts')).toEqual([]);
  });
});
