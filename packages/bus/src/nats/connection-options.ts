/**
 * How a service connects to NATS: TLS (CA, optional client certificate), and one identity — user/password
 * or a creds file. Turned into nats.js options here so callers never build them by hand.
 */
import { readFileSync } from 'node:fs';
import { credsAuthenticator, type NodeConnectionOptions } from '@nats-io/transport-node';
import { InvalidBusOptionsError } from '../errors';

export interface NatsTlsSettings {
  /** PEM file of the CA that signed the server certificate. */
  readonly caFile?: string;
  /** Client certificate and key for mutual TLS. */
  readonly certFile?: string;
  readonly keyFile?: string;
}

export interface NatsConnectionSettings {
  readonly servers: string | readonly string[];
  readonly tls?: NatsTlsSettings;
  readonly user?: string;
  readonly pass?: string;
  /** A NATS `.creds` file (JWT + nkey seed); exclusive with user/pass. */
  readonly credsFile?: string;
  /** Connection name shown in server monitoring (default `sealpost-<service>`). */
  readonly name?: string;
  /** Connect and request timeout (default 5 s). */
  readonly timeoutMs?: number;
}

/** The inbox prefix of a service's connection: its NATS user may subscribe to `<prefix>.>` and nothing else. */
export function inboxPrefixFor(service: string): string {
  if (!/^[a-z][a-z0-9-]{0,63}$/.test(service)) throw new InvalidBusOptionsError('invalid service name for inbox');
  return `_INBOX_${service}`;
}

/**
 * Builds nats.js connection options. With `service`, replies (JetStream API answers, pull batches, publish
 * acks) arrive under `_INBOX_<service>.>`, so one service's user cannot subscribe to another's replies.
 * Throws `InvalidBusOptionsError` for contradictory settings.
 */
export function toNatsConnectOptions(
  settings: NatsConnectionSettings,
  defaultName: string,
  service?: string,
): NodeConnectionOptions {
  if (settings.credsFile !== undefined && settings.user !== undefined)
    throw new InvalidBusOptionsError('NATS credsFile and user/pass are exclusive');
  if ((settings.user === undefined) !== (settings.pass === undefined))
    throw new InvalidBusOptionsError('NATS user and pass must be given together');
  if ((settings.tls?.certFile === undefined) !== (settings.tls?.keyFile === undefined))
    throw new InvalidBusOptionsError('NATS TLS certFile and keyFile must be given together');
  const options: NodeConnectionOptions = {
    servers: typeof settings.servers === 'string' ? settings.servers : [...settings.servers],
    name: settings.name ?? defaultName,
    timeout: settings.timeoutMs ?? 5000,
    // Unlimited reconnects: a service outlives NATS restarts and rolling upgrades.
    maxReconnectAttempts: -1,
    ...(service !== undefined ? { inboxPrefix: inboxPrefixFor(service) } : {}),
  };
  if (settings.tls !== undefined) {
    options.tls = {
      ...(settings.tls.caFile !== undefined ? { caFile: settings.tls.caFile } : {}),
      ...(settings.tls.certFile !== undefined ? { certFile: settings.tls.certFile } : {}),
      ...(settings.tls.keyFile !== undefined ? { keyFile: settings.tls.keyFile } : {}),
    };
  }
  if (settings.user !== undefined) {
    options.user = settings.user;
    options.pass = settings.pass;
  }
  if (settings.credsFile !== undefined) {
    const creds = readFileSync(settings.credsFile);
    options.authenticator = credsAuthenticator(new Uint8Array(creds));
  }
  return options;
}
