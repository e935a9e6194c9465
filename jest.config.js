// Jest: unit specs beside the code (libs/**/*.spec.ts), whole-app tests in test/**/*.spec.ts.
// One PostgreSQL server per run (test/support/global-setup.mjs); each test file creates its own
// database on it with createTestDatabase() from test/support/database.ts.
const path = require('node:path');
const ts = require('typescript');

// Compile like tsconfig.json says (and like @swc-node/register, which reads the same file): legacy
// decorators with metadata, and class-field semantics derived from target/useDefineForClassFields.
const tsconfigPath = path.join(__dirname, 'tsconfig.json');
const { config: rawTsconfig, error } = ts.readConfigFile(tsconfigPath, ts.sys.readFile);
if (error)
  throw new Error(`cannot read ${tsconfigPath}: ${ts.flattenDiagnosticMessageText(error.messageText, '\n')}`);
const { options: tsOptions } = ts.parseJsonConfigFileContent(rawTsconfig, ts.sys, __dirname);
const target = tsOptions.target ?? ts.ScriptTarget.ES2022;
const useDefineForClassFields = tsOptions.useDefineForClassFields ?? target >= ts.ScriptTarget.ES2022;

/** @type {import('@swc/core').Options} */
const swcOptions = {
  swcrc: false,
  sourceMaps: 'inline',
  module: { type: 'commonjs' },
  jsc: {
    target: 'es2022',
    keepClassNames: true,
    parser: { syntax: 'typescript', decorators: true, dynamicImport: true },
    transform: {
      legacyDecorator: true,
      decoratorMetadata: true,
      useDefineForClassFields,
    },
  },
};

/** @type {import('jest').Config} */
module.exports = {
  rootDir: __dirname,
  testEnvironment: 'node',
  testMatch: ['<rootDir>/libs/**/*.spec.ts', '<rootDir>/test/**/*.spec.ts'],
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/dist/', '<rootDir>/.data/'],
  modulePathIgnorePatterns: ['<rootDir>/dist/', '<rootDir>/.data/'],
  watchPathIgnorePatterns: ['<rootDir>/.data/'],
  moduleFileExtensions: ['ts', 'js', 'json'],
  transform: { '^.+\\.(t|j)s$': ['@swc/jest', swcOptions] },
  moduleNameMapper: { '^nest-durable(|/.*)$': '<rootDir>/libs/durable/src$1' },
  globalSetup: './test/support/global-setup.mjs',
  globalTeardown: './test/support/global-teardown.mjs',
  setupFilesAfterEnv: ['<rootDir>/test/support/jest-setup.ts'],
  // Generous: on a loaded machine a test that boots and kills processes can take minutes; tests wait for
  // events with generous limits and assert on outcomes, never on how fast something happened.
  testTimeout: 180_000,
  maxWorkers: 2,
  // No forceExit: a leaked handle (an unclosed pool, a timer, a child process) is reported by Jest
  // ("did not exit one second after..."), and test/support/global-teardown.mjs ends the process a
  // few seconds later so that nothing hangs (CI above all). Hunt leaks with --detectOpenHandles.
  collectCoverageFrom: ['libs/**/*.ts', 'apps/**/*.ts', '!**/*.spec.ts', '!**/index.ts'],
  coverageDirectory: '<rootDir>/coverage',
};
