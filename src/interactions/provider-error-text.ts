/**
 * What the error page says when node-oidc-provider refuses a request a browser brought (an authorization
 * request, its resume, a sign-out, a device code). The provider's own descriptions ("client is invalid",
 * "interaction session not found") are written for developers; the person in front of the page gets a
 * heading and a sentence that say what happened and what to do, and the provider's code and description
 * stay below them, small, for whoever they report it to.
 */
export interface ProviderErrorText {
  title: string;
  message: string;
  /** The provider's code (`invalid_client`, ...), shown small. */
  code?: string;
  /** The provider's description, shown small when the message does not already say it. */
  detail?: string;
}

const SIGN_OUT_ROUTES = new Set(['end_session', 'end_session_confirm', 'end_session_success']);
const DEVICE_ROUTES = new Set(['code_verification', 'device_resume']);

function titleFor(route: string | undefined): string {
  if (route && SIGN_OUT_ROUTES.has(route)) return 'This sign-out request cannot continue';
  if (route && DEVICE_ROUTES.has(route)) return 'This device sign-in cannot continue';
  return 'This sign-in request cannot continue';
}

/**
 * The page's text for the provider's error `out` (what it would answer: `error`, `error_description`),
 * `error` the thrown error (its class name tells an expired sign-in from another `invalid_request`),
 * `route` the provider's route, `realmName` the realm's (or tenant's) display name.
 */
export function providerErrorText(
  route: string | undefined,
  out: { error?: string; error_description?: string },
  error: { name?: string } | undefined,
  realmName: string,
): ProviderErrorText {
  const title = titleFor(route);
  const code = out.error;
  const detail = out.error_description;
  const signOut = route !== undefined && SIGN_OUT_ROUTES.has(route);
  if (error?.name === 'SessionNotFound') {
    return {
      title: signOut ? title : 'This sign-in has expired',
      message: signOut
        ? 'This sign-out page has expired or was already used. Go back to the application and sign out again.'
        : 'It was finished already, took too long, or was started in another browser. Go back to the application and sign in again.',
      code,
      detail,
    };
  }
  switch (code) {
    case 'invalid_client':
      return {
        title,
        message: `The application that sent you here is not registered with ${realmName}. Go back to it and try again; if this keeps happening, tell the application's support.`,
        code,
        detail,
      };
    case 'invalid_redirect_uri':
      return {
        title,
        message: `The application asked ${realmName} to send you back to an address it has not registered, so ${realmName} will not go there. Tell the application's support.`,
        code,
        detail,
      };
    default:
      return {
        title,
        message: signOut
          ? `The application sent a sign-out request ${realmName} cannot accept. Go back to it and try again.`
          : `The application sent a request ${realmName} cannot accept. Go back to it and try again; if this keeps happening, tell the application's support.`,
        code,
        detail: detail ?? 'The request was not valid.',
      };
  }
}
