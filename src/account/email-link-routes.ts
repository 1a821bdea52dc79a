import Router from '@koa/router';
import type { Context } from 'koa';
import { CHANGE_EMAIL_PATH } from '../accounts/email-change.js';
import { VERIFY_EMAIL_PATH } from '../accounts/email-verification.js';
import { PASSWORD_RESET_PATH } from '../accounts/password-reset.js';
import type { EmailLink } from '../email/links.js';
import { LatchkeyError } from '../errors.js';
import { formToken, formTokenValid } from '../interactions/csrf.js';
import { errorPage, page, served } from '../interactions/kit.js';
import { layoutFor } from '../interactions/layout.js';
import { readForm } from '../server/body.js';
import type { Services } from '../server/services.js';

/** The paths the links sent by email open; app.ts sends these to this router before the account page's. */
export const EMAIL_LINK_PREFIXES = [`${PASSWORD_RESET_PATH}/`, `${VERIFY_EMAIL_PATH}/`, `${CHANGE_EMAIL_PATH}/`] as const;

/**
 * The pages the links sent by email open: `/account/password-reset/<token>` (a new password, typed
 * twice) and `/account/verify-email/<token>` (a button that confirms the address). Opening a link
 * changes nothing; the form's post uses it once. Each form's CSRF token is bound to its link, so no
 * other page can post it.
 */
export function emailLinkRoutes(services: Services): Router {
  const { passwordResets, emailVerification, emailChange, csrfKey } = services;
  const router = new Router();
  const binding = (link: EmailLink) => `${link.purpose}:${link.tokenHash}`;
  const formChecked = (ctx: Context, link: EmailLink, candidate: string | undefined) => {
    if (formTokenValid(csrfKey, binding(link), candidate)) return true;
    errorPage(ctx, 403, 'This form has expired', 'The form could not be verified. Open the link from the email again.', 'csrf_failed');
    return false;
  };

  const resetGone = (ctx: Context) =>
    errorPage(ctx, 400, 'This link no longer works', 'This password reset link has expired or was already used. To get a new one, choose "Forgot your password?" when you sign in.', 'reset_link_invalid');
  const verifyGone = (ctx: Context) =>
    errorPage(ctx, 400, 'This link no longer works', 'This confirmation link has expired or was already used. Your account page sends a new one.', 'verify_link_invalid');

  function resetForm(ctx: Context, link: EmailLink, extra: { error?: string; status?: number } = {}) {
    const data = { layout: layoutFor(served(ctx), 'Choose a new password'), action: ctx.path, csrf: formToken(csrfKey, binding(link)), email: link.user.email, minLength: services.config.passwords.minLength, error: extra.error, accountUrl: '/account' };
    page(ctx, 'password-reset', data, extra.status ?? 200);
  }

  router.get(`${PASSWORD_RESET_PATH}/:token`, async (ctx) => {
    const link = await passwordResets.find(served(ctx).realm.id, ctx.params.token!);
    if (!link) return resetGone(ctx);
    resetForm(ctx, link);
  });

  router.post(`${PASSWORD_RESET_PATH}/:token`, async (ctx) => {
    const body = await readForm(ctx);
    const s = served(ctx);
    const link = await passwordResets.find(s.realm.id, ctx.params.token!);
    if (!link) return resetGone(ctx);
    if (!formChecked(ctx, link, body.csrf)) return;
    const password = body.new_password ?? '';
    if (!password) return resetForm(ctx, link, { error: 'Enter the new password.', status: 400 });
    if (password !== (body.new_password_again ?? '')) return resetForm(ctx, link, { error: 'The two passwords do not match. Type the same new password in both fields.', status: 400 });
    let done: boolean;
    try {
      done = await passwordResets.complete(link, password, ctx.ip);
    } catch (err) {
      if (err instanceof LatchkeyError && err.status < 500) return resetForm(ctx, link, { error: err.message, status: err.status });
      throw err;
    }
    if (!done) return resetGone(ctx);
    page(ctx, 'password-reset', { layout: layoutFor(s, 'Password changed'), email: link.user.email, done: true, accountUrl: '/account' });
  });

  router.get(`${VERIFY_EMAIL_PATH}/:token`, async (ctx) => {
    const s = served(ctx);
    const link = await emailVerification.find(s.realm.id, ctx.params.token!);
    if (!link) return verifyGone(ctx);
    page(ctx, 'verify-email', { layout: layoutFor(s, 'Confirm your email address'), action: ctx.path, csrf: formToken(csrfKey, binding(link)), email: link.user.email, accountUrl: '/account' });
  });

  router.post(`${VERIFY_EMAIL_PATH}/:token`, async (ctx) => {
    const body = await readForm(ctx);
    const s = served(ctx);
    const link = await emailVerification.find(s.realm.id, ctx.params.token!);
    if (!link) return verifyGone(ctx);
    if (!formChecked(ctx, link, body.csrf)) return;
    if (!(await emailVerification.complete(link, ctx.ip))) return verifyGone(ctx);
    page(ctx, 'verify-email', { layout: layoutFor(s, 'Email address confirmed'), email: link.user.email, done: true, accountUrl: '/account' });
  });

  const changeGone = (ctx: Context) =>
    errorPage(ctx, 400, 'This link no longer works', 'This link to change your email address has expired or was already used. Your account page sends a new one.', 'change_email_link_invalid');

  router.get(`${CHANGE_EMAIL_PATH}/:token`, async (ctx) => {
    const s = served(ctx);
    const link = await emailChange.find(s.realm.id, ctx.params.token!);
    if (!link?.newEmail) return changeGone(ctx);
    page(ctx, 'change-email', { layout: layoutFor(s, 'Confirm your new email address'), action: ctx.path, csrf: formToken(csrfKey, binding(link)), oldEmail: link.user.email, newEmail: link.newEmail, accountUrl: '/account' });
  });

  router.post(`${CHANGE_EMAIL_PATH}/:token`, async (ctx) => {
    const body = await readForm(ctx);
    const s = served(ctx);
    const link = await emailChange.find(s.realm.id, ctx.params.token!);
    if (!link?.newEmail) return changeGone(ctx);
    if (!formChecked(ctx, link, body.csrf)) return;
    try {
      if (!(await emailChange.complete(link, ctx.ip))) return changeGone(ctx);
    } catch (err) {
      // the address was free when the link was sent; the one who opened it owns that mailbox
      if (err instanceof LatchkeyError && err.code === 'conflict') return errorPage(ctx, 409, 'This address is taken', `${link.newEmail} now belongs to another account. Your email address was not changed.`, 'email_taken');
      throw err;
    }
    page(ctx, 'change-email', { layout: layoutFor(s, 'Email address changed'), oldEmail: link.user.email, newEmail: link.newEmail, done: true, accountUrl: '/account' });
  });

  return router;
}
