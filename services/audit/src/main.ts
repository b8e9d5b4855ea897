/** Standalone audit process: config from the environment, the bus per config, serve until SIGTERM/SIGINT. */
import { runServiceProcess } from '@sealpost/server';
import { startAuditService } from './service';

runServiceProcess('audit', startAuditService);
