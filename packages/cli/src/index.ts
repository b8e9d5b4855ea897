export { buildProgram } from './program';
export { IMPORT_ROWS_PER_MESSAGE, importCsv, progressLine, type ImportSummary } from './commands/contacts';
export { CSV_COLUMNS, CsvError, parseContactCsv, type CsvContactRow } from './csv';
export {
  CliUsageError,
  VaultCallError,
  callMetadata,
  connectVault,
  unaryCall,
  vaultConfig,
  type VaultClient,
} from './vault-client';
