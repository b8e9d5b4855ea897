export {
  AppError,
  ERROR_CATEGORIES,
  REASON_METADATA_KEY,
  isAppError,
  toGrpcError,
  toGrpcStatus,
  type ErrorCategory,
} from './app-error';
export { AccessError, AccessPolicyError, DevModeRefusedError, TlsMaterialError, type AccessReason } from './errors';
export { assertDevModeAllowed, type RuntimeMode } from './dev-mode';
export {
  certificateAuthorityFrom,
  generateCaMaterial,
  parseCertificates,
  spiffeIdOf,
  uriSansOf,
  type CaMaterial,
  type CaParams,
  type CertificateAuthority,
  type IssueOptions,
  type IssuedCertificate,
} from './certificate-authority';
export { DEV_CA_COMMON_NAME, DEV_TRUST_DOMAIN, openDevCa, writeDevTlsFiles, type TlsFiles } from './dev-ca';
export { assertProductionTrustBundle, loadTlsMaterial, type TlsMaterial } from './tls-material';
export { principalId, type OperatorPrincipal, type Principal, type ServicePrincipal } from './principal';
export { parseSpiffeId, serviceIdentityFromPeer, type CallWithAuthContext } from './peer-identity';
export {
  ACCESS_TOKEN_TYPE,
  MAX_ACCESS_TOKEN_LIFETIME_SECONDS,
  OPERATOR_TOKEN_ALGORITHMS,
  createOperatorTokenVerifier,
  type JwksSource,
  type OperatorTokenAlgorithm,
  type OperatorTokenVerifier,
  type OperatorTokenVerifierOptions,
} from './operator-token';
export {
  DEFAULT_AUDIENCE,
  DEV_ISSUER,
  issueDevToken,
  openDevTokenIssuer,
  type DevTokenIssuer,
  type DevTokenParams,
} from './dev-token';
export {
  DEFAULT_ACCESS_POLICY,
  DEFAULT_METHOD_RULES,
  DEFAULT_ROLES,
  INFRASTRUCTURE_METHODS,
  definePolicy,
  permissionsOf,
  ruleFor,
  withServiceGrants,
  type AccessPolicy,
  type MethodRule,
} from './permission-table';
export {
  DEFAULT_PURPOSE_POLICY,
  DEFAULT_STEP_UP_WINDOW_SECONDS,
  STEP_UP_AMR,
  assertStepUp,
  assertTenantAccess,
  authorize,
  hasRecentStepUp,
  parsePurpose,
  type Purpose,
  type PurposePolicy,
} from './checks';
export {
  PURPOSE_METADATA_KEY,
  TICKET_METADATA_KEY,
  callAccessOf,
  createAccessInterceptor,
  defaultTenantOf,
  principalOf,
  type AccessDecisionEvent,
  type AccessInterceptorOptions,
  type CallAccess,
  type SessionVersionSource,
} from './interceptor';
