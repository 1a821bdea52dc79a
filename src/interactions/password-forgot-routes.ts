import { EMAIL_ADDRESS as EMAIL, MAX_EMAIL_LENGTH as MAX_EMAIL } from '../accounts/email-address.js';
import { realmMail } from '../accounts/email-link-flow.js';
import type Router from '@koa/router';
import { readForm } from '../server/body.js';
import type { Services } from '../server/services.js';
import { csrfToken } from './csrf.js';
import { checkedForm, errorPage, interactionOf, page, served } from './kit.js';
import { layoutFor } from './layout.js';

/** The throttle counter of password reset requests (per client address, apart from sign-in failures). */
export const PASSWORD_RESET_PURPOSE = 'password-reset';


/**
 * "Forgot your password?" from the password step: the person gives their email and is told to check
 * their mailbox, whether or not it has an account (the emailed link leads to src/account/password-reset-routes.ts).
 * Offered only when outgoing email is configured.
 */
export function passwordForgotRoutes(router: Router, services: Services): void {
  const { csrfKey, passwordResets, progress, throttle } = services;
  const path = (uid: string) => `/interaction/${uid}/forgot-password`;
  const minutes = Math.round(services.config.email.passwordResetTtlSeconds / 60);

  router.get('/interaction/:uid/forgot-password', async (ctx) => {
    if (!passwordResets.enabled) return errorPage(ctx, 404, 'Password reset is not available', 'This sign-in service cannot send email. Ask your administrator to reset your password.', 'password_reset_unavailable');
    const d = await interactionOf(ctx);
    if (!d) return;
    const s = served(ctx);
    const email = (await progress.get(s.realm.id, d))?.email;
    page(ctx, 'password-forgot', { layout: layoutFor(s, 'Reset your password'), action: path(d.uid), csrf: csrfToken(csrfKey, d.uid), email, backUrl: `/interaction/${d.uid}`, minutes });
  });

  router.post('/interaction/:uid/forgot-password', async (ctx) => {
    if (!passwordResets.enabled) return errorPage(ctx, 404, 'Password reset is not available', 'This sign-in service cannot send email. Ask your administrator to reset your password.', 'password_reset_unavailable');
    const form = await readForm(ctx);
    const d = await interactionOf(ctx);
    if (!d || !(await checkedForm(ctx, csrfKey, d, form))) return;
    const s = served(ctx);
    const email = (form.email ?? '').trim();
    const data = { layout: layoutFor(s, 'Reset your password'), action: path(d.uid), csrf: csrfToken(csrfKey, d.uid), backUrl: `/interaction/${d.uid}`, minutes };
    if (!email || email.length > MAX_EMAIL || !EMAIL.test(email)) {
      return page(ctx, 'password-forgot', { ...data, email: email.slice(0, MAX_EMAIL), error: 'Enter a valid email address, like name@example.com.' }, 400);
    }
    // every request counts against the client address (not the account: that would tell which exist),
    // so one address cannot mail a long list of people; past the realm's limit for addresses it waits.
    // Counted in one step with the lock check, so requests sent at once cannot all pass it.
    const gate = await throttle.admitAddress(s.realm.id, PASSWORD_RESET_PURPOSE, ctx.ip);
    if (!gate.allowed) {
      ctx.set('Retry-After', String(gate.retryAfterSeconds));
      const minutes = Math.max(1, Math.ceil(gate.retryAfterSeconds / 60));
      return page(ctx, 'password-forgot', { ...data, email, error: `Too many requests from your network. Try again in ${minutes} minute${minutes === 1 ? '' : 's'}.` }, 429);
    }
    passwordResets.request({ ...realmMail(s), email, address: ctx.ip });
    page(ctx, 'password-forgot', { ...data, layout: layoutFor(s, 'Check your email'), email, sent: true });
  });
}
