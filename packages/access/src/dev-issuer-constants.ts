import { DEV_JWT_ISSUER } from '@sealpost/config';

/** Issuer of development tokens (the one configuration defaults to in embedded mode); production refuses it. */
export const DEV_ISSUER = DEV_JWT_ISSUER;
/** Default audience of Sealpost access tokens. */
export const DEFAULT_AUDIENCE = 'sealpost';
