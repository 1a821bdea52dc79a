/** Where every issuer serves the admin API. */
export const ADMIN_PREFIX = '/api/v1';

/**
 * The admin API as a resource server of every realm: a client registered with `--admin-api` asks
 * for it with `resource=urn:latchkey:admin-api` in the client_credentials grant.
 */
export const ADMIN_API_AUDIENCE = 'urn:latchkey:admin-api';

/** `admin` reads and writes; `admin:read` only reads. */
export const ADMIN_SCOPES = ['admin', 'admin:read'] as const;
