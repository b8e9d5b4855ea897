/** Issuer of development tokens; production refuses to trust it. */
export const DEV_ISSUER = 'https://sealpost.dev/dev-issuer';
/** Default audience of Sealpost access tokens. */
export const DEFAULT_AUDIENCE = 'sealpost';
