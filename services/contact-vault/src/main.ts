/** Standalone contact-vault process: config from the environment, the bus per config, serve until SIGTERM/SIGINT. */
import { runServiceProcess } from '@sealpost/server';
import { startContactVaultService } from './service';

runServiceProcess('contact-vault', startContactVaultService);
