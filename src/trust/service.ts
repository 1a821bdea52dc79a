import { randomBytes } from 'node:crypto';
import { decodeJwt, decodeProtectedHeader, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import type { Db } from '../db/knex.js';
import { realmsRepo } from '../db/realms-repo.js';
import { trustedIssuersRepo, type TrustedIssuerRow } from '../db/trusted-issuers-repo.js';
import { conflict, invalid, invalidField, LatchkeyError, notFound } from '../errors.js';
import { IssuerKeys, type IssuerKeysOptions } from './issuer-keys.js';
import { checkIssuerUrl } from './issuer-url.js';
import { checkPrefix, DEFAULT_USER_ID_EXPRESSION, evaluateUserIdExpression, parseUserIdExpression } from './user-id-expression.js';

/** Signature algorithms accepted from trusted issuers: asymmetric only (no `none`, no HMAC). */
export const TRUSTED_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];
/** Leeway on exp, nbf and iat for clock differences between us and the issuer. */
export const CLOCK_TOLERANCE_SECONDS = 30;

export interface AddTrustedIssuerInput {
  realmId: string;
  /** A token from the issuer: its `iss` and `aud` are read from it and the expression is checked against its claims. */
  sampleToken?: string;
  issuer?: string;
  audience?: string;
  userIdExpression?: string;
  prefix?: string;
  adminUserIds?: string[];
  id?: string;
}

export interface TrustedIssuerView {
  id: string;
  realm: string;
  issuer: string;
  audience: string;
  user_id_expression: string;
  user_id_prefix: string;
  admin_user_ids: string[];
  created_at: string;
}

export interface VerifiedIdentity {
  trustedIssuer: TrustedIssuerRow;
  userId: string;
  claims: JWTPayload;
}

const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

const invalidToken = (message: string) => new LatchkeyError('invalid_token', message, 401);

export const toView = (t: TrustedIssuerRow): TrustedIssuerView => ({
  id: t.id,
  realm: t.realmId,
  issuer: t.issuer,
  audience: t.audience,
  user_id_expression: t.userIdExpression,
  user_id_prefix: t.userIdPrefix,
  admin_user_ids: t.adminUserIds,
  created_at: new Date(t.createdAt).toISOString(),
});

function readSample(token: string): JWTPayload {
  try {
    decodeProtectedHeader(token);
    return decodeJwt(token);
  } catch {
    throw invalid('the sample token is not a JWT (expected three base64url parts: header.payload.signature)');
  }
}

const audiences = (aud: unknown): string[] => (typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud.filter((a): a is string => typeof a === 'string') : []);

/**
 * Issuers whose JWTs a realm accepts (token exchange, admin API). Each registration pairs an issuer
 * URL with one audience and a User ID Expression turning the token's claims into a user id.
 */
export class TrustService {
  readonly keys: IssuerKeys;

  constructor(
    private readonly db: Db,
    options: IssuerKeysOptions & { keys?: IssuerKeys } = {},
  ) {
    this.keys = options.keys ?? new IssuerKeys(options);
  }

  async add(input: AddTrustedIssuerInput): Promise<TrustedIssuerView & { sample_user_id?: string }> {
    let issuer = input.issuer?.trim();
    let audience = input.audience?.trim();
    const expressionSource = input.userIdExpression ?? DEFAULT_USER_ID_EXPRESSION;
    const expression = parseUserIdExpression(expressionSource);
    const prefix = checkPrefix(input.prefix ?? '');
    const adminUserIds = [...new Set(input.adminUserIds ?? [])];
    for (const a of adminUserIds) {
      if (!a || a.length > 1000 || CONTROL.test(a)) throw invalid(`admin user id "${a}" must be 1 to 1000 characters without control characters`);
    }
    const id = input.id ?? `ti_${randomBytes(8).toString('hex')}`;
    if (!ID_PATTERN.test(id)) throw invalid(`id "${id}" must be 1 to 64 letters, digits, "_" or "-", starting with a letter or digit`);

    let sampleUserId: string | undefined;
    if (input.sampleToken !== undefined) {
      const claims = readSample(input.sampleToken.trim());
      if (typeof claims.iss !== 'string' || !claims.iss) throw invalidField('sampleToken', (n) => `the sample token has no "iss" claim: give ${n('issuer')} and ${n('audience')} instead`);
      if (issuer && issuer !== claims.iss) throw invalid(`issuer "${issuer}" does not match the sample token's iss "${claims.iss}"`);
      issuer = claims.iss;
      const auds = audiences(claims.aud);
      if (!auds.length) throw invalidField('sampleToken', (n) => `the sample token has no "aud" claim: give ${n('audience')}`);
      if (audience) {
        if (!auds.includes(audience)) throw invalid(`audience "${audience}" is not in the sample token's aud (${auds.join(', ')})`);
      } else if (auds.length === 1) {
        audience = auds[0];
      } else {
        throw invalidField('audience', (n) => `the sample token has several audiences (${auds.join(', ')}): choose one with ${n('audience')}`);
      }
      // a sample that does not yield a user id is an error now, not at the first real token
      try {
        sampleUserId = evaluateUserIdExpression(expression, claims, prefix);
      } catch (err) {
        // at registration a hole in the sample is the operator's input error (400), not a refused token
        if (err instanceof LatchkeyError) throw new LatchkeyError(err.code, `the sample token does not yield a user id: ${err.message}`, 400);
        throw err;
      }
    }
    if (!issuer) throw invalidField('issuer', (n) => `the issuer is required: give a sample token (${n('sampleToken')}) or ${n('issuer')} and ${n('audience')}`);
    if (!audience) throw invalidField('audience', (n) => `the audience is required: give a sample token (${n('sampleToken')}) or ${n('issuer')} and ${n('audience')}`);
    checkIssuerUrl(issuer);
    if (issuer.length > 500) throw invalid('issuer is longer than 500 characters');
    if (audience.length > 500 || CONTROL.test(audience)) throw invalid('audience must be at most 500 characters without control characters');

    const now = Date.now();
    const row: TrustedIssuerRow = {
      realmId: input.realmId,
      id,
      issuer,
      audience,
      userIdExpression: expression.source,
      userIdPrefix: prefix,
      adminUserIds,
      createdAt: now,
      updatedAt: now,
    };
    const taken = async (db: Db): Promise<LatchkeyError | undefined> => {
      if (await trustedIssuersRepo.find(db, input.realmId, id)) return conflict(`trusted issuer "${id}" already exists in realm "${input.realmId}"`);
      const same = await trustedIssuersRepo.findByIssuerAndAudience(db, input.realmId, issuer, audience);
      if (same) return conflict(`issuer ${issuer} with audience "${audience}" is already trusted by realm "${input.realmId}" (id "${same.id}")`);
      return undefined;
    };
    try {
      await this.db.transaction(async (trx) => {
        if (!(await realmsRepo.find(trx, input.realmId))) throw notFound(`realm "${input.realmId}"`);
        const refusal = await taken(trx);
        if (refusal) throw refusal;
        await trustedIssuersRepo.insert(trx, row);
      });
    } catch (err) {
      // the same id, or issuer and audience, trusted at the same moment (PostgreSQL): a unique key refused the insert after the check
      const refusal = err instanceof LatchkeyError ? undefined : await taken(this.db);
      throw refusal ?? err;
    }
    return { ...toView(row), ...(sampleUserId !== undefined ? { sample_user_id: sampleUserId } : {}) };
  }

  async list(realmId: string): Promise<TrustedIssuerView[]> {
    if (!(await realmsRepo.find(this.db, realmId))) throw notFound(`realm "${realmId}"`);
    return (await trustedIssuersRepo.list(this.db, realmId)).map(toView);
  }

  async get(realmId: string, id: string): Promise<TrustedIssuerView> {
    const row = await trustedIssuersRepo.find(this.db, realmId, id);
    if (!row) throw notFound(`trusted issuer "${id}" in realm "${realmId}"`);
    return toView(row);
  }

  async remove(realmId: string, id: string): Promise<{ removed: string; realm: string }> {
    if (!(await realmsRepo.find(this.db, realmId))) throw notFound(`realm "${realmId}"`);
    if (!(await trustedIssuersRepo.remove(this.db, realmId, id))) throw notFound(`trusted issuer "${id}" in realm "${realmId}"`);
    return { removed: id, realm: realmId };
  }

  /** Whether a computed user id is one of the registration's realm admins. */
  isAdmin(trustedIssuer: TrustedIssuerRow, userId: string): boolean {
    return trustedIssuer.adminUserIds.includes(userId);
  }

  /**
   * Verifies a JWT from a trusted issuer of the realm and computes its user id. Errors:
   * `invalid_token` (malformed, unsigned, HMAC, bad signature, expired, wrong audience),
   * `untrusted_issuer`, `issuer_unreachable`, `user_id_expression_failed`.
   */
  async verify(realmId: string, jwt: string): Promise<VerifiedIdentity> {
    if (typeof jwt !== 'string' || !jwt) throw invalidToken('no token was given');
    let header: ReturnType<typeof decodeProtectedHeader>;
    let unverified: JWTPayload;
    try {
      header = decodeProtectedHeader(jwt);
      unverified = decodeJwt(jwt);
    } catch {
      throw invalidToken('the token is not a JWT (expected three base64url parts: header.payload.signature)');
    }
    const alg = header.alg;
    if (!alg || alg.toLowerCase() === 'none') throw invalidToken('unsigned tokens (alg "none") are refused');
    if (/^HS/i.test(alg)) throw invalidToken(`symmetric algorithm "${alg}" is refused: trusted issuers must sign with a private key`);
    if (!TRUSTED_ALGORITHMS.includes(alg)) throw invalidToken(`signature algorithm "${alg}" is not accepted (use one of ${TRUSTED_ALGORITHMS.join(', ')})`);
    if (typeof unverified.iss !== 'string' || !unverified.iss) throw invalidToken('the token has no "iss" claim');

    const candidates = await trustedIssuersRepo.listByIssuer(this.db, realmId, unverified.iss);
    if (!candidates.length) throw new LatchkeyError('untrusted_issuer', `issuer ${unverified.iss} is not trusted by realm "${realmId}"`, 401);
    const auds = audiences(unverified.aud);
    const trusted = candidates.find((c) => auds.includes(c.audience));
    if (!trusted) {
      throw invalidToken(`the token's audience (${auds.length ? auds.join(', ') : 'none'}) is not one realm "${realmId}" trusts for ${unverified.iss}`);
    }

    let claims: JWTPayload;
    try {
      ({ payload: claims } = await jwtVerify(jwt, this.keys.resolver(trusted.issuer), {
        issuer: trusted.issuer,
        audience: trusted.audience,
        algorithms: TRUSTED_ALGORITHMS,
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
        requiredClaims: ['exp'],
      }));
    } catch (err) {
      throw mapVerifyError(err, header.kid);
    }
    if (typeof claims.iat === 'number' && claims.iat > Date.now() / 1000 + CLOCK_TOLERANCE_SECONDS) throw invalidToken('the token was issued in the future ("iat")');

    const userId = evaluateUserIdExpression(parseUserIdExpression(trusted.userIdExpression), claims, trusted.userIdPrefix);
    return { trustedIssuer: trusted, userId, claims };
  }
}

function mapVerifyError(err: unknown, kid: string | undefined): Error {
  if (err instanceof LatchkeyError) return err;
  if (err instanceof joseErrors.JWTExpired) return invalidToken('the token has expired ("exp")');
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    if (err.reason === 'missing') return invalidToken(`the token has no "${err.claim}" claim`);
    if (err.claim === 'nbf') return invalidToken('the token is not valid yet ("nbf")');
    return invalidToken(`the token's "${err.claim}" claim is invalid (${err.message})`);
  }
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return invalidToken('the token\'s signature does not verify');
  if (err instanceof joseErrors.JWKSNoMatchingKey) return invalidToken(`the issuer has no signing key ${kid ? `with kid "${kid}"` : 'matching the token'}`);
  if (err instanceof joseErrors.JWKSMultipleMatchingKeys) return invalidToken('the token has no kid and the issuer has several matching keys');
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return invalidToken('the token\'s signature algorithm is not accepted');
  if (err instanceof joseErrors.JOSEError) return invalidToken(`the token is invalid (${err.message})`);
  return err instanceof Error ? err : new Error(String(err));
}
