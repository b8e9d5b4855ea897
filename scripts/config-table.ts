/**
 * Prints the README's configuration table, generated from the settings table in @sealpost/config:
 * `pnpm exec tsx scripts/config-table.ts`.
 */
// Scripts are not a workspace package, so @sealpost/config is reached through its entry file.
import { renderConfigTable } from '../packages/config/src/index';

process.stdout.write(renderConfigTable());
