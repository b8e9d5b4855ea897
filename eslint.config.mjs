import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';

// Packages are used through their public entry point only, never through another package's src/.
const PACKAGE_BOUNDARIES = [
  { group: ['@sealpost/*/src/**', '@sealpost/*/src'], message: 'Import the package entry point.' },
  {
    group: ['../../packages/**', '../../../packages/**', '../../services/**'],
    message: 'Import through @sealpost/<pkg>.',
  },
];
// A service never depends on another service (that would couple their deployments and images); what two services
// share lives in a package (the audit log's formats: @sealpost/audit-format). Tests may still start a real peer.
const NO_OTHER_SERVICES = [
  {
    group: ['@sealpost/audit', '@sealpost/contact-vault', '@sealpost/runner'],
    message: 'A service imports no other service: move what both need into a package under packages/.',
  },
];
const NO_IO = {
  group: ['mongodb', 'better-sqlite3', '@nats-io/*', '@grpc/*', 'node:fs', 'fs', 'node:net', 'net'],
  message: 'Domain code does no I/O.',
};

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
      'no-restricted-imports': ['error', { patterns: PACKAGE_BOUNDARIES }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['services/*/src/**/*.ts'],
    ignores: ['services/runner/src/**'],
    rules: { 'no-restricted-imports': ['error', { patterns: [...PACKAGE_BOUNDARIES, ...NO_OTHER_SERVICES] }] },
  },
  {
    // Domain code is pure: no I/O, no adapters.
    files: ['services/*/src/domain/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            ...PACKAGE_BOUNDARIES,
            ...NO_OTHER_SERVICES,
            { group: ['**/adapters/**', '**/app/**'], message: 'Domain code imports no adapters or use cases.' },
            NO_IO,
          ],
        },
      ],
    },
  },
  {
    // The audit log's formats are pure too (the vault, the CLI and outside verifiers use them): no I/O, and no
    // Sealpost package but the generated messages.
    files: ['packages/audit-format/src/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            ...PACKAGE_BOUNDARIES,
            NO_IO,
            {
              group: ['@sealpost/*', '!@sealpost/proto'],
              message: '@sealpost/audit-format depends on @sealpost/proto only.',
            },
          ],
        },
      ],
    },
  },
);
