import { Command } from 'commander';
import { SERVICE_NAMES, isServiceName, loadConfig, renderConfigTable } from '@sealpost/config';

/** `sealpost config …`: check the environment a service would start with, print the settings table. */
export function configCommand(): Command {
  const config = new Command('config').description('Inspect Sealpost configuration');
  config
    .command('check')
    .description('Validate the SEALPOST_* environment for a service and print what it resolves to (no secrets)')
    .requiredOption('--service <name>', `one of ${SERVICE_NAMES.join(', ')}`)
    .action((options: { service: string }) => {
      if (!isServiceName(options.service)) {
        throw new RangeError(`--service must be one of ${SERVICE_NAMES.join(', ')}`);
      }
      const resolved = loadConfig(options.service);
      for (const warning of resolved.warnings) process.stderr.write(`warning: ${warning}\n`);
      process.stdout.write(
        `${options.service}: ${resolved.mode} mode, bus ${resolved.bus.kind}, store ${resolved.store.kind}, ` +
          `kms ${resolved.kms.kind}, gRPC ${resolved.grpc.listen}, health ${resolved.grpc.health}\n`,
      );
    });
  config
    .command('table')
    .description("Print every setting as a Markdown table (the README's configuration table)")
    .action(() => {
      process.stdout.write(renderConfigTable());
    });
  return config;
}
