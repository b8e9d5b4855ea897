/** An internal service, authenticated by its mTLS certificate. */
export interface ServicePrincipal {
  readonly kind: 'service';
  /** Service name from the SPIFFE id path, e.g. `dispatch`. */
  readonly service: string;
  readonly trustDomain: string;
  readonly spiffeId: string;
}

/** A human operator, authenticated by an access token (JWT). */
export interface OperatorPrincipal {
  readonly kind: 'operator';
  /** Opaque operator id (`sub`); never an email address. */
  readonly subject: string;
  readonly tenant: string;
  readonly roles: readonly string[];
  /** Authentication methods (`amr`), e.g. `pwd`, `mfa`, `otp`. */
  readonly amr: readonly string[];
  /** When the operator last authenticated (`auth_time`), seconds since the epoch. */
  readonly authTime: number;
  /** Session version (`sv`); a lock or role change bumps the current one and strands older tokens. */
  readonly sessionVersion: number;
  /** The token's issuer, kept so logs can tell dev tokens from real ones. */
  readonly issuer: string;
  /** The mTLS peer the call came through, when the channel had a client certificate. */
  readonly via?: ServicePrincipal;
}

export type Principal = ServicePrincipal | OperatorPrincipal;

/** The id to record for a principal: the operator id, or the service's SPIFFE id. */
export function principalId(principal: Principal): string {
  return principal.kind === 'operator' ? principal.subject : principal.spiffeId;
}
