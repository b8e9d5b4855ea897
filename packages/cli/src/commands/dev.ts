import path from 'node:path';
import { Command, Option } from 'commander';
import { openDevTokenIssuer } from '@sealpost/access';
import { loadConfig } from '@sealpost/config';

/** `sealpost dev …`: embedded-mode helpers; refused in production mode. */
export function devCommand(): Command {
  const dev = new Command('dev').description('Development helpers for embedded mode (refused in production mode)');
  dev
    .command('token')
    .description('Print a signed operator access token from the development issuer (lives at most 5 minutes)')
    .requiredOption('--role <role>', 'role to grant, e.g. admin, dpo, support, marketer, auditor')
    .requiredOption('--tenant <tenant>', 'tenant id the token is scoped to')
    .option('--mfa', 'mark the token as having passed MFA just now (needed for step-up calls)', false)
    .addOption(new Option('--ttl <seconds>', 'lifetime in seconds (at most 300)').default('300'))
    .option('--subject <id>', 'operator id (default: a random dev id)')
    .action(async (options: { role: string; tenant: string; mfa: boolean; ttl: string; subject?: string }) => {
      const config = loadConfig('identity');
      // The same issuer directory the runner trusts: the one holding the configured JWKS file.
      const dir =
        config.auth.jwks.kind === 'file' ? path.dirname(config.auth.jwks.file) : path.join(config.dataDir, 'dev');
      const issuer = await openDevTokenIssuer({ dir, mode: config.mode });
      const ttl = Number(options.ttl);
      if (!Number.isInteger(ttl)) throw new RangeError('--ttl must be a whole number of seconds');
      const token = await issuer.issue({
        role: options.role,
        tenant: options.tenant,
        mfa: options.mfa,
        ttl,
        ...(options.subject ? { subject: options.subject } : {}),
      });
      process.stdout.write(`${token}\n`);
    });
  return dev;
}
