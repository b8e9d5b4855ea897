#!/usr/bin/env node
/** `pnpm sealpost <command>`: the operator CLI. Every command has --help. */
import { buildProgram } from './program';

buildProgram()
  .parseAsync(process.argv)
  .catch((error: unknown) => {
    // Errors from Sealpost packages carry a stable code and never personal data; stacks stay out of the terminal.
    const code = (error as { code?: unknown }).code;
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`sealpost: ${typeof code === 'string' ? `${code}: ` : ''}${message}\n`);
    process.exitCode = process.exitCode && process.exitCode !== 0 ? process.exitCode : 1;
  });
