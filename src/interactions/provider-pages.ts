import type { KoaContextWithOIDC } from 'oidc-provider';
import type { FrontchannelPage } from '../oidc/frontchannel-logout.js';
import { renderPage } from '../views/render.js';
import { layoutFor, type RealmRequest } from './layout.js';
import { providerErrorText } from './provider-error-text.js';

const served = (ctx: KoaContextWithOIDC) => (ctx.req as RealmRequest).latchkey;
const clientName = (ctx: KoaContextWithOIDC) => ctx.oidc?.client?.clientName ?? ctx.oidc?.client?.clientId;

function html(ctx: KoaContextWithOIDC, body: string): void {
  ctx.type = 'html';
  ctx.body = body;
}

/** node-oidc-provider's page hooks, rendered from views/ with the realm's branding. */
export const providerPages = {
  async logout(ctx: KoaContextWithOIDC, form: string) {
    html(ctx, renderPage('logout', { layout: layoutFor(served(ctx), 'Sign out'), form, clientName: clientName(ctx) }));
  },
  async loggedOut(ctx: KoaContextWithOIDC) {
    html(ctx, renderPage('logged-out', { layout: layoutFor(served(ctx), 'Signed out'), clientName: clientName(ctx) }));
  },
  /** After a sign-out: the applications' front-channel logout iframes, then on to `continueUrl`. */
  frontchannelLogout(ctx: KoaContextWithOIDC, page: FrontchannelPage) {
    html(
      ctx,
      renderPage('frontchannel-logout', {
        layout: layoutFor(served(ctx), 'Signing you out'),
        frames: page.frames,
        continueUrl: page.continueUrl,
        waitMs: page.waitMs,
        refreshSeconds: page.refreshSeconds,
      }),
    );
  },
  async error(ctx: KoaContextWithOIDC, out: { error?: string; error_description?: string }, error: Error) {
    const layout = layoutFor(served(ctx), 'Something went wrong');
    const text = providerErrorText(ctx.oidc?.route, out, error, layout.realmName);
    html(ctx, renderPage('error', { layout: { ...layout, title: text.title }, ...text }));
  },
  async deviceInput(ctx: KoaContextWithOIDC, form: string, _out: unknown, err?: { userCode?: string; name?: string }) {
    let message: string | undefined;
    if (err && (err.userCode || err.name === 'NoCodeError')) message = 'The code you entered is incorrect. Try again.';
    else if (err && err.name === 'AbortedError') message = 'The sign-in request was interrupted.';
    else if (err) message = 'There was an error processing your request.';
    html(ctx, renderPage('device-code', { layout: layoutFor(served(ctx), 'Connect a device'), form, error: message }));
  },
  async deviceConfirm(ctx: KoaContextWithOIDC, form: string, client: { clientName?: string; clientId: string }, _deviceInfo: unknown, userCode: string) {
    html(
      ctx,
      renderPage('device-confirm', {
        layout: layoutFor(served(ctx), 'Confirm the device'),
        form,
        clientName: client.clientName ?? client.clientId,
        userCode,
      }),
    );
  },
  async deviceSuccess(ctx: KoaContextWithOIDC) {
    html(ctx, renderPage('device-done', { layout: layoutFor(served(ctx), 'Device connected'), clientName: clientName(ctx) }));
  },
};
