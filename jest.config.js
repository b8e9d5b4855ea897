// One jest run over the whole workspace. swc strips types (tsc --noEmit type-checks separately).
// jose is ESM-only, so it is transformed like our own sources.
/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/packages', '<rootDir>/services', '<rootDir>/deploy'],
  testMatch: ['**/src/**/*.test.ts', '**/test/**/*.test.ts'],
  transform: {
    '^.+\\.(t|j)s$': [
      '@swc/jest',
      { jsc: { target: 'es2022', parser: { syntax: 'typescript' } }, module: { type: 'commonjs' } },
    ],
  },
  transformIgnorePatterns: ['/node_modules/(?!\\.pnpm|jose/)', '/node_modules/\\.pnpm/(?!jose@)'],
  setupFiles: ['<rootDir>/packages/testkit/src/jest-setup.ts'],
  testTimeout: 30000,
};
