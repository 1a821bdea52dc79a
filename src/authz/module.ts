/** What the server knows about an identity when it issues a token for it. */
export interface IssuedIdentity {
  realmId: string;
  issuer: string;
  clientId: string;
  /** End-user id; absent for client_credentials. */
  subject?: string;
  /** `client_credentials`, `authorization_code`, `refresh_token`, `urn:ietf:params:oauth:grant-type:device_code`, ... */
  grantType?: string;
  token: 'access_token' | 'id_token';
  scopes: string[];
  /** Resource (audience) the access token is for, when it has one. */
  audience?: string;
  /** Later issues add the tenant here. */
  tenantId?: string;
}

export interface IssueDecision {
  allow: boolean;
  /** Shown to the client as the error description when denied. */
  reason?: string;
  /** Extra claims to add to the token (reserved claims such as sub, iss, aud, exp are ignored). */
  claims?: Record<string, unknown>;
}

/**
 * The pluggable authorization module: sees every identity the server issues tokens to (it may add
 * claims or deny) and answers permission checks. The access-record engine of a later issue implements it.
 */
export interface AuthorizationModule {
  readonly name: string;
  onIssue(identity: IssuedIdentity): Promise<IssueDecision>;
  check(identity: Omit<IssuedIdentity, 'token' | 'scopes'> & { scopes?: string[] }, resourceUri: string, permission: string): Promise<boolean>;
}

export const RESERVED_CLAIMS = new Set(['iss', 'sub', 'aud', 'exp', 'iat', 'nbf', 'jti', 'client_id', 'scope', 'auth_time', 'nonce', 'acr', 'amr', 'azp', 'at_hash', 'c_hash', 'sid', 'cnf']);
