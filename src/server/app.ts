import Koa, { type Context, type Next } from 'koa';
import { accountRoutes } from '../account/routes.js';
import { EMAIL_LINK_PREFIXES, emailLinkRoutes } from '../account/email-link-routes.js';
import { ADMIN_PREFIX } from '../admin/audience.js';
import { adminOperations } from '../admin/operations.js';
import { sendProblem } from '../admin/problem.js';
import { adminApi } from '../admin/router.js';
import { CALLBACK_PATH as CONNECTION_CALLBACK_PATH } from '../connections/service.js';
import { seeOther } from '../interactions/kit.js';
import { interactionRoutes } from '../interactions/routes.js';
import { type FirstPageInteraction, type FirstPageRequest } from '../oidc/first-page.js';
import { firstPartyOfflineAccess } from '../oidc/first-party-offline.js';
import { providerCallback } from '../oidc/provider-callback.js';
import type { RealmRequest } from '../interactions/layout.js';
import type { ProviderCache, ServedIssuer } from '../oidc/providers.js';
import type { RealmRegistry } from '../realms/registry.js';
import { ping } from '../db/knex.js';
import { LatchkeyError } from '../errors.js';
import { relatedOriginsDocument } from '../passkeys/relying-party.js';
import { realmCss } from '../views/render.js';
import { loadStaticAssets } from '../views/static-assets.js';
import { errorMiddleware, sendError } from './http-errors.js';
import { JWKS_PATHS, MAX_BODY, writeJwks } from './fast-path.js';
import { requestLog } from './request-log.js';
import { securityHeaders } from './security-headers.js';
import type { Services } from './services.js';


export interface AppDeps {
  services: Services;
  registry: RealmRegistry;
  providers: ProviderCache;
}

/** The Koa composition root: health, host -> realm, our pages and JWKS, then the realm's provider. */
export function createApp({ services, registry, providers }: AppDeps): Koa {
  const app = new Koa();
  app.proxy = services.config.server.trustProxy;
  app.silent = true;
  const assets = loadStaticAssets();
  const interactions = interactionRoutes(services);
  const account = accountRoutes(services);
  const emailLinks = emailLinkRoutes(services);

  app.use(requestLog(services.log));
  app.use(errorMiddleware());
  app.use(securityHeaders());

  app.use(async (ctx: Context, next: Next) => {
    if (ctx.path === '/healthz') {
      ctx.body = { status: 'ok' };
      return;
    }
    if (ctx.path === '/readyz') {
      try {
        await ping(services.db);
        ctx.body = { status: 'ready' };
      } catch {
        sendError(ctx, 503, 'database_unreachable', 'the database does not answer');
      }
      return;
    }
    await next();
  });

  // Oversized bodies are refused before anything reads them.
  app.use(async (ctx: Context, next: Next) => {
    const length = ctx.request.length;
    if (length !== undefined && length > MAX_BODY) {
      const tooLarge = new LatchkeyError('request_too_large', `request bodies are limited to ${MAX_BODY} bytes`, 413);
      // the admin API answers every error in problem+json (src/admin/problem.ts)
      if (ctx.path === ADMIN_PREFIX || ctx.path.startsWith(`${ADMIN_PREFIX}/`)) return sendProblem(ctx, tooLarge);
      throw tooLarge;
    }
    // A body left half-read (node-oidc-provider stops at its own limit when a chunked body has no
    // Content-Length) is not drained by Node, which then never reads the next request on that
    // keep-alive connection: drain the rest once the answer is out.
    ctx.res.once('finish', () => {
      if (!ctx.req.complete) ctx.req.resume();
    });
    await next();
  });

  app.use(async (ctx: Context, next: Next) => {
    const issuer = await registry.resolve(ctx.host);
    if (!issuer) return sendError(ctx, 404, 'unknown_host', `no realm is served at ${ctx.host || 'this host'}`);
    const served = await providers.get(issuer);
    ctx.state.served = served;
    (ctx.req as RealmRequest).latchkey = served;
    await next();
  });

  app.use(async (ctx: Context, next: Next) => {
    const served: ServedIssuer = ctx.state.served;
    if (ctx.method === 'GET' || ctx.method === 'HEAD') {
      if (JWKS_PATHS.has(ctx.path)) {
        // the first request before the provider is built; afterwards the fast path answers
        ctx.respond = false;
        return writeJwks(ctx.req, ctx.res, served);
      }
      if (ctx.path === '/.well-known/webauthn') {
        // WebAuthn Related Origin Requests: the primary domain lists the realm's other origins
        const document = relatedOriginsDocument(served.realm, served.issuer);
        if (!document) return sendError(ctx, 404, 'not_found', 'related origins are not enabled for this realm on this domain');
        ctx.set('Cache-Control', 'public, max-age=300');
        ctx.body = document;
        return;
      }
      const asset = assets.get(ctx.path === '/favicon.ico' ? '/assets/favicon.svg' : ctx.path);
      if (asset) {
        ctx.type = asset.type;
        ctx.set('ETag', asset.etag);
        // versioned URLs (?v=) never change; the others are revalidated hourly
        ctx.set('Cache-Control', ctx.querystring ? 'public, max-age=31536000, immutable' : 'public, max-age=3600');
        if (ctx.get('if-none-match') === asset.etag) {
          ctx.status = 304;
          return;
        }
        ctx.body = asset.body;
        return;
      }
      if (ctx.path === '/assets/realm.css') {
        ctx.type = 'text/css; charset=utf-8';
        ctx.set('Cache-Control', 'public, max-age=300');
        // a page names its colour (a tenant's own, src/interactions/layout.ts) in `?primary=`; realmCss
        // builds the CSS from the parsed numbers only, so any value is safe; without one, the realm's
        const named = typeof ctx.query.primary === 'string' ? ctx.query.primary : undefined;
        ctx.body = realmCss(named ?? served.realm.settings.branding.primaryColor);
        return;
      }
    }
    await next();
  });

  const interactionsMw = interactions.routes();
  const interactionsMethods = interactions.allowedMethods();
  const accountMw = account.routes();
  app.use((ctx: Context, next: Next) => (ctx.path.startsWith('/interaction/') || ctx.path === CONNECTION_CALLBACK_PATH ? interactionsMw(ctx as any, async () => interactionsMethods(ctx as any, next)) : next()));
  const emailLinksMw = emailLinks.routes();
  app.use((ctx: Context, next: Next) => {
    if (EMAIL_LINK_PREFIXES.some((prefix) => ctx.path.startsWith(prefix))) return emailLinksMw(ctx as any, next);
    return ctx.path === '/account' || ctx.path.startsWith('/account/') ? accountMw(ctx as any, next) : next();
  });
  app.use(adminApi(services, adminOperations));
  app.use(firstPartyOfflineAccess(services.clients));

  // Everything else belongs to the realm's node-oidc-provider instance.
  app.use(async (ctx: Context) => {
    const { provider } = ctx.state.served as ServedIssuer;
    ctx.respond = false;
    await providerCallback(provider)(ctx.req, ctx.res);
    const first = (ctx.req as FirstPageRequest).latchkeyFirstPage;
    if (first) await firstPage(ctx, first);
  });

  /**
   * The provider held back its redirect to the interaction's page (src/oidc/first-page.ts): answer this
   * request with that page, through the same routes as `GET /interaction/<uid>`, on the interaction the
   * provider has just saved (its cookies are already on the response).
   */
  async function firstPage(ctx: Context, interaction: FirstPageInteraction): Promise<void> {
    ctx.respond = true;
    ctx.res.removeHeader('Location');
    ctx.status = 200;
    ctx.state.interaction = interaction;
    // created by this request: no sign-in progress can be stored for it yet
    services.progress.started(interaction);
    ctx.params = { uid: interaction.uid };
    (ctx as Context & { newRouterPath?: string }).newRouterPath = `/interaction/${interaction.uid}`;
    // the page's own query (e.g. ?method=) is not the authorization request's
    Object.defineProperty(ctx, 'query', { value: {}, configurable: true });
    // no page route answered: fall back to the provider's redirect
    await interactionsMw(ctx as any, async () => seeOther(ctx, `/interaction/${interaction.uid}`));
  }

  return app;
}
