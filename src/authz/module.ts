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

/**
 * Claims an authorization module may not set in ID tokens or access tokens: the ones a reader of the
 * token acts on as the server's word about the protocol, not as data about the user.
 */
export const RESERVED_CLAIMS = new Set([
  // RFC 7519: who issued the token, for whom, about whom, when
  'iss', 'sub', 'aud', 'exp', 'iat', 'nbf', 'jti',
  // OpenID Connect Core: the sign-in and the hashes binding the ID token to the code, access token and state
  'auth_time', 'nonce', 'acr', 'amr', 'azp', 'at_hash', 'c_hash', 's_hash', 'sid', 'sub_jwk',
  // RFC 9068 / RFC 8693: the client, the scope, and who acts (or may act) for the subject
  'client_id', 'scope', 'act', 'may_act',
  // RFC 7800 / RFC 9449: proof of possession (the key, and a DPoP proof's own claims)
  'cnf', 'htm', 'htu', 'ath',
  // RFC 9396 rich authorization requests
  'authorization_details',
  // RFC 8417 security event tokens: a token carrying these could be taken for a security event
  'events', 'toe', 'txn',
  // what kind of token this is, as some readers tell ID tokens from access tokens
  'typ', 'token_use',
  // RFC 8485 vectors of trust
  'vot', 'vtm',
]);
