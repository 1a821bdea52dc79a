import Router from '@koa/router';
import type { Context } from 'koa';
import { PASSWORD_RESET_PATH, type ResetLink } from '../accounts/password-reset.js';
import { LatchkeyError } from '../errors.js';
import { formToken, formTokenValid } from '../interactions/csrf.js';
import { errorPage, page, served } from '../interactions/kit.js';
import { layoutFor } from '../interactions/layout.js';
import { readForm } from '../server/body.js';
import type { Services } from '../server/services.js';

/**
 * The page a password reset link opens (`/account/password-reset/<token>`): a new password, typed
 * twice. The form's CSRF token is bound to the link, so no other page can post it. Opening the link
 * changes nothing; the post uses it once.
 */
export function passwordResetRoutes(services: Services): Router {
  const { passwordResets, csrfKey } = services;
  const router = new Router();
  const binding = (link: ResetLink) => `password-reset:${link.tokenHash}`;

  const linkGone = (ctx: Context) =>
    errorPage(ctx, 400, 'This link no longer works', 'This password reset link has expired or was already used. To get a new one, choose "Forgot your password?" when you sign in.', 'reset_link_invalid');

  function form(ctx: Context, link: ResetLink, extra: { error?: string; status?: number } = {}) {
    const s = served(ctx);
    page(
      ctx,
      'password-reset',
      {
        layout: layoutFor(s, 'Choose a new password'),
        action: ctx.path,
        csrf: formToken(csrfKey, binding(link)),
        email: link.user.email,
        minLength: services.config.passwords.minLength,
        error: extra.error,
        accountUrl: '/account',
      },
      extra.status ?? 200,
    );
  }

  router.get(`${PASSWORD_RESET_PATH}/:token`, async (ctx) => {
    const link = await passwordResets.find(served(ctx).realm.id, ctx.params.token!);
    if (!link) return linkGone(ctx);
    form(ctx, link);
  });

  router.post(`${PASSWORD_RESET_PATH}/:token`, async (ctx) => {
    const body = await readForm(ctx);
    const s = served(ctx);
    const link = await passwordResets.find(s.realm.id, ctx.params.token!);
    if (!link) return linkGone(ctx);
    if (!formTokenValid(csrfKey, binding(link), body.csrf)) return errorPage(ctx, 403, 'This form has expired', 'The form could not be verified. Open the link from the email again.', 'csrf_failed');
    const password = body.new_password ?? '';
    if (!password) return form(ctx, link, { error: 'Enter the new password.', status: 400 });
    if (password !== (body.new_password_again ?? '')) return form(ctx, link, { error: 'The two passwords do not match. Type the same new password in both fields.', status: 400 });
    let done: boolean;
    try {
      done = await passwordResets.complete(s.realm.id, link, password, ctx.ip);
    } catch (err) {
      if (err instanceof LatchkeyError && err.status < 500) return form(ctx, link, { error: err.message, status: err.status });
      throw err;
    }
    if (!done) return linkGone(ctx);
    page(ctx, 'password-reset', { layout: layoutFor(s, 'Password changed'), email: link.user.email, done: true, accountUrl: '/account' });
  });

  return router;
}
