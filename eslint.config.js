import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// The daemon (src/) never imports the tools (tools/: panel-lite, the demo), the bench or the tests:
// they import the daemon, never the other way round. A relative specifier that climbs out of src/
// into one of them; `\x2F` is '/', which esquery's /regex/ selectors below cannot hold literally.
const OUTSIDE_THE_DAEMON = String.raw`^(\.\.\x2F)+(tools|bench|test)(\x2F|$)`;
const BOUNDARY_MESSAGE = 'The daemon (src/) must not import tools/, bench/ or test/: they depend on it, not the other way round.';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'bin/**', 'eslint.config.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/restrict-template-expressions': 'off',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
      '@typescript-eslint/only-throw-error': 'off',
      '@typescript-eslint/prefer-promise-reject-errors': 'off',
      'no-empty': ['error', { allowEmptyCatch: true }],
      'no-control-regex': 'off',
    },
  },
  // Plain JavaScript (scripts/*.mjs, run by npm before the dev dependencies may exist) is outside
  // the TypeScript project: linted without type information.
  {
    files: ['**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      ...tseslint.configs.disableTypeChecked.languageOptions,
      globals: { process: 'readonly', console: 'readonly' },
    },
  },
  {
    files: ['src/**/*.ts'],
    rules: {
      // The daemon is held to the full type-checked rules; tests, tools and the bench keep the
      // relaxed set above (they poke at JSON answers and library internals on purpose).
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unsafe-assignment': 'error',
      '@typescript-eslint/no-unsafe-member-access': 'error',
      '@typescript-eslint/no-unsafe-argument': 'error',
      '@typescript-eslint/no-unsafe-call': 'error',
      '@typescript-eslint/no-unsafe-return': 'error',
      'no-restricted-imports': ['error', { patterns: [{ regex: OUTSIDE_THE_DAEMON, message: BOUNDARY_MESSAGE }] }],
      // no-restricted-imports sees static imports and re-exports only: the same check for import()
      // and require(), and import() takes a literal so that no computed path slips past it.
      'no-restricted-syntax': [
        'error',
        { selector: `ImportExpression[source.value=/${OUTSIDE_THE_DAEMON}/]`, message: BOUNDARY_MESSAGE },
        { selector: `CallExpression[callee.name='require'][arguments.0.value=/${OUTSIDE_THE_DAEMON}/]`, message: BOUNDARY_MESSAGE },
        { selector: "ImportExpression[source.type!='Literal']", message: 'import() in the daemon takes a string literal, so that the import boundary check can see where it leads.' },
      ],
    },
  },
);
