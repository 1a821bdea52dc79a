import type { IncomingMessage } from 'node:http';
import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';

/**
 * The first page of a sign-in in the authorization response itself, as Keycloak does.
 *
 * node-oidc-provider answers an authorization request that needs the user with a 303 to the interaction's
 * page (`/interaction/<uid>`), which the browser then fetches: a round trip, and a second request that
 * looks the interaction up again by its cookie. For a browser's top-level navigation (`Sec-Fetch-Dest:
 * document`) the provider's redirect is held back instead: the interaction it
 * has just saved (and its cookies, already on the response) is handed to Latchkey's page routes, which
 * answer the same request with the page `/interaction/<uid>` would show. Every form and script on the
 * page posts to `/interaction/<uid>/...` as before. Other user agents (and browsers without Fetch
 * Metadata) keep the standard redirect.
 */
export interface FirstPageRequest extends IncomingMessage {
  /** Set on the request when its authorization response is to be the interaction's first page. */
  latchkeyFirstPage?: FirstPageInteraction;
}
export type FirstPageInteraction = NonNullable<KoaContextWithOIDC['oidc']['entities']['Interaction']>;

/** A browser's top-level navigation, by its Fetch Metadata (only a navigation has `Sec-Fetch-Dest: document`). */
export function isDocumentNavigation(req: IncomingMessage): boolean {
  return req.headers['sec-fetch-dest'] === 'document';
}

export function holdFirstPageRedirect(provider: Provider): void {
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.method !== 'GET' || ctx.status !== 303 || !isDocumentNavigation(ctx.req)) return;
    const oidc = (ctx as unknown as KoaContextWithOIDC).oidc;
    if (oidc?.route !== 'authorization') return;
    const interaction = oidc.entities.Interaction;
    const location = ctx.response.get('Location');
    if (!interaction || new URL(location, ctx.href).pathname !== `/interaction/${interaction.uid}`) return;
    (ctx.req as FirstPageRequest).latchkeyFirstPage = interaction;
    ctx.respond = false; // Latchkey's app writes the answer (see app.ts)
  });
}
