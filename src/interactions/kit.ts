import type { Context } from 'koa';
import type { InteractionResults } from 'oidc-provider';
import { LatchkeyError } from '../errors.js';
import type { EventBus, SignInEvent } from '../events/bus.js';
import type { ServedIssuer } from '../oidc/providers.js';
import { readForm, readJsonObject } from '../server/body.js';
import { renderPage } from '../views/render.js';
import { csrfValid } from './csrf.js';
import { layoutFor } from './layout.js';

export type Details = Awaited<ReturnType<ServedIssuer['provider']['interactionDetails']>>;

export const served = (ctx: Context): ServedIssuer => ctx.state.served;

export function page(ctx: Context, name: string, data: Record<string, unknown>, status = 200): void {
  ctx.status = status;
  ctx.type = 'html';
  ctx.set('Cache-Control', 'no-store');
  ctx.body = renderPage(name, data);
}

export function errorPage(ctx: Context, status: number, title: string, message: string, code?: string): void {
  page(ctx, 'error', { layout: layoutFor(served(ctx), title), title, message, code }, status);
}

/** The interaction behind this request (its cookie must match the URL), or an error page and undefined. */
export async function interactionOf(ctx: Context): Promise<Details | undefined> {
  // looked up once per request (the tenant routes and the sign-in routes both ask on the same GET)
  const cached = ctx.state.interaction as Details | undefined;
  if (cached && cached.uid === ctx.params.uid) return cached;
  try {
    const d = await served(ctx).provider.interactionDetails(ctx.req, ctx.res);
    if (d.uid !== ctx.params.uid) throw new Error('interaction mismatch');
    ctx.state.interaction = d;
    return d;
  } catch {
    if (ctx.is('application/json') || ctx.accepts('html', 'json') === 'json') {
      throw new LatchkeyError('interaction_expired', 'This sign-in has expired or was opened in another browser. Start again from the application.', 400);
    }
    errorPage(ctx, 400, 'This sign-in has expired', 'This sign-in link has expired or was opened in another browser. Go back to the application and start again.', 'interaction_expired');
    return undefined;
  }
}

/** Reads a posted form and checks its CSRF token; renders the error page and returns undefined when it fails. */
export async function checkedForm(ctx: Context, csrfKey: Buffer, d: Details, form?: Record<string, string>): Promise<Record<string, string> | undefined> {
  const body = form ?? (await readForm(ctx));
  if (!csrfValid(csrfKey, d.uid, body.csrf)) {
    errorPage(ctx, 403, 'This form has expired', 'The form could not be verified. Go back and try again.', 'csrf_failed');
    return undefined;
  }
  return body;
}

const JSON_LIMIT = 32 * 1024;

/** Reads a JSON body (the passkey script's posts) and checks the CSRF header. */
export async function checkedJson(ctx: Context, csrfKey: Buffer, d: Details): Promise<Record<string, unknown>> {
  if (!csrfValid(csrfKey, d.uid, ctx.get('x-csrf-token'))) throw new LatchkeyError('csrf_failed', 'The request could not be verified. Reload the page and try again.', 403);
  return readJsonObject(ctx, JSON_LIMIT);
}

/**
 * Hands the interaction's result to node-oidc-provider and returns where the browser goes next. It is
 * what provider.interactionResult(..., { mergeWithLastSubmission: false }) does, on the interaction this
 * request already loaded (and checked against its cookie) rather than loading it a second time.
 */
export async function resultUrl(ctx: Context, d: Details, result: InteractionResults): Promise<string> {
  d.result = result;
  await d.save(d.exp - Math.floor(Date.now() / 1000));
  return d.returnTo;
}

export async function redirectWithResult(ctx: Context, d: Details, result: InteractionResults): Promise<void> {
  const url = await resultUrl(ctx, d, result);
  ctx.status = 303;
  ctx.redirect(url);
}

export function seeOther(ctx: Context, url: string): void {
  ctx.status = 303;
  ctx.redirect(url);
}

/** Emits a sign-in outcome for this interaction on the event bus (the audit capability persists them). */
export function emitSignIn(
  events: EventBus,
  ctx: Context,
  d: Details,
  type: SignInEvent['type'],
  method: SignInEvent['method'],
  extra: Partial<SignInEvent> = {},
): void {
  const s = served(ctx);
  events.emit({
    type,
    at: new Date().toISOString(),
    realm: s.realm.id,
    issuer: s.issuer,
    method,
    clientId: typeof d.params.client_id === 'string' ? d.params.client_id : undefined,
    address: ctx.ip,
    userAgent: ctx.get('user-agent') || undefined,
    ...extra,
  });
}
