import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';

export default tseslint.config(
  {
    ignores: [
      '**/node_modules/**',
      'packages/proto/src/gen/**',
      '.sealpost/**',
      '.peers/**',
      '.tmp/**',
      'jest.config.js',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    plugins: { 'import-x': importX },
    settings: { 'import-x/resolver': { typescript: false, node: true } },
    rules: {
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
      // Packages are used through their public entry point only, never through another package's src/.
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['@sealpost/*/src/**', '@sealpost/*/src'], message: 'Import the package entry point.' },
            {
              group: ['../../packages/**', '../../../packages/**', '../../services/**'],
              message: 'Import through @sealpost/<pkg>.',
            },
          ],
        },
      ],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // Domain code is pure: no I/O, no adapters.
    files: ['services/*/src/domain/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['**/adapters/**', '**/app/**'], message: 'Domain code imports no adapters or use cases.' },
            {
              group: ['mongodb', 'better-sqlite3', '@nats-io/*', '@grpc/*', 'node:fs', 'fs', 'node:net', 'net'],
              message: 'Domain code does no I/O.',
            },
          ],
        },
      ],
    },
  },
);
