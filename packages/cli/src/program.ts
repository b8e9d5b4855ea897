import { Command } from 'commander';
import { auditCommand } from './commands/audit';
import { configCommand } from './commands/config';
import { contactsCommand } from './commands/contacts';
import { devCommand } from './commands/dev';
import { keysCommand } from './commands/keys';

/** The CLI's command tree; separate from main.ts so tests can run commands in-process. */
export function buildProgram(): Command {
  const program = new Command('sealpost')
    .description(
      'Operate Sealpost: tokens for development, configuration checks, and (as services land) contacts and audit.',
    )
    .showHelpAfterError()
    .configureHelp({ sortSubcommands: true });
  program.addCommand(devCommand());
  program.addCommand(configCommand());
  program.addCommand(auditCommand());
  program.addCommand(contactsCommand());
  program.addCommand(keysCommand());
  return program;
}
