import type { IncomingMessage, ServerResponse } from 'node:http';
import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { CookieSigner } from '../crypto/cookie-signer.js';

/**
 * The step that completes a sign-in (a passkey verified over fetch, a password or code posted by a form)
 * ends in node-oidc-provider's resume (`GET /auth/<uid>`), which the browser would otherwise request as
 * one more round trip only to be redirected on to the client. Here the resume runs inside the same request
 * instead: the request is handed to the provider as `GET /auth/<uid>`, and its redirect (to the client
 * with the code, or to the next interaction) is held back and answered by Latchkey's route (as
 * `{ redirect }` JSON to the script, as a 303 to a form; src/interactions/answer-step.ts), with the
 * cookies the provider set (session, cleared interaction cookies) on that answer.
 *
 * The resume cookie (`_interaction_resume`, path `/auth/<uid>`) is not sent with a request to
 * `/interaction/<uid>/...`; it is added for the provider, signed like the one set at authorization. The
 * request has already proved the same thing with the interaction cookie (path `/interaction/<uid>`, set
 * with it, holding the same uid) and the form's CSRF token.
 *
 * Only responses the page's script can follow are held: a redirect. Callers resume in process only when
 * the provider's answer will be one (see {@link canResumeInProcess}); anything else the provider writes
 * as it would on `GET /auth/<uid>`. A device flow's sign-in resumes at `/device/<uid>` (a page): it is
 * never resumed here.
 */
export interface ResumeRequest extends IncomingMessage {
  /** Set while the provider resumes inside another request: receives where its redirect pointed. */
  latchkeyResume?: { location?: string };
}

/** Installs the provider middleware that holds back the resume's redirect of an in-process resume. */
export function holdResumeRedirect(provider: Provider): void {
  provider.use(async (ctx, next) => {
    await next();
    const mark = (ctx.req as ResumeRequest).latchkeyResume;
    if (!mark || (ctx as unknown as KoaContextWithOIDC).oidc?.route !== 'resume') return;
    if (ctx.status !== 303 && ctx.status !== 302) return;
    mark.location = ctx.response.get('Location');
    ctx.res.removeHeader('Location');
    ctx.respond = false; // Latchkey's route answers (see resumeInProcess)
  });
}

/**
 * Whether the resume of this interaction ends in a redirect the page's script can follow: the
 * authorization endpoint's resume (`/auth/<uid>`; a device flow resumes at `/device/<uid>`, which
 * answers with a page), a response mode that redirects (query or fragment, not form_post), and no other
 * account signed in on this browser (the provider then asks to sign that one out first, with a page).
 */
export function canResumeInProcess(
  interaction: { uid: string; returnTo: string; params: Record<string, unknown>; session?: { accountId?: string } },
  accountId: string,
): boolean {
  if (!resumesAtAuthorization(interaction)) return false;
  const mode = interaction.params.response_mode;
  if (mode !== undefined && mode !== 'query' && mode !== 'fragment') return false;
  const current = interaction.session?.accountId;
  return current === undefined || current === accountId;
}

/** The path of the authorization endpoint's resume of interaction `uid`, where the resume is replayed. */
const resumePath = (uid: string): string => `/auth/${encodeURIComponent(uid)}`;

function resumesAtAuthorization({ uid, returnTo }: { uid: string; returnTo: string }): boolean {
  try {
    return new URL(returnTo, 'http://localhost').pathname.endsWith(resumePath(uid));
  } catch {
    return false;
  }
}

/**
 * Runs the provider's resume of interaction `uid` on this request (a POST the page's script sent) and
 * returns the URL the browser goes to next, or undefined when the provider has answered the request
 * itself (an error page).
 */
export async function resumeInProcess(
  req: IncomingMessage,
  res: ServerResponse,
  callback: (req: IncomingMessage, res: ServerResponse) => unknown,
  signer: CookieSigner,
  resumeCookie: string,
  uid: string,
): Promise<string | undefined> {
  const cookie = `${resumeCookie}=${uid}`;
  const signed = `${cookie}; ${resumeCookie}.sig=${signer.sign(cookie)}`;
  const { method, url, headers } = req;
  const cookies = headers.cookie;
  headers.cookie = cookies ? `${signed}; ${cookies}` : signed;
  req.method = 'GET';
  req.url = resumePath(uid);
  const mark: { location?: string } = {};
  (req as ResumeRequest).latchkeyResume = mark;
  try {
    await callback(req, res);
  } finally {
    // the request is the script's POST again for everything after (logs, Latchkey's answer)
    req.method = method;
    req.url = url;
    if (cookies === undefined) delete headers.cookie;
    else headers.cookie = cookies;
    delete (req as ResumeRequest).latchkeyResume;
  }
  return mark.location;
}
