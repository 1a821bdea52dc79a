/**
 * The software WebAuthn authenticator for tests. Its implementation lives in
 * src/testing/soft-authenticator.ts (compiled into dist/ so the plain-JS benchmark can use it too).
 */
export * from '../../src/testing/soft-authenticator.js';
