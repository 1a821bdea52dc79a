import type { Context, Next } from 'koa';
import type { ClientService } from '../clients/service.js';
import type { ServedIssuer } from './providers.js';

/**
 * OpenID Connect drops `offline_access` unless the request says `prompt=consent`. A first-party
 * client is trusted to ask for it without showing anyone a consent page: add `consent` to its
 * prompt here, and the consent step completes by itself (see interactions/routes.ts).
 */
export function firstPartyOfflineAccess(clients: ClientService) {
  return async (ctx: Context, next: Next) => {
    if (ctx.method === 'GET' && ctx.path === '/auth') {
      const { scope, prompt, client_id: clientId } = ctx.query;
      if (typeof scope === 'string' && typeof clientId === 'string' && scope.split(' ').includes('offline_access')) {
        const prompts = typeof prompt === 'string' ? prompt.split(' ').filter(Boolean) : [];
        if (!prompts.includes('consent') && !prompts.includes('none')) {
          const served: ServedIssuer = ctx.state.served;
          if (await clients.isFirstParty(served.realm.id, clientId)) {
            const params = new URLSearchParams(ctx.querystring);
            params.set('prompt', [...prompts, 'consent'].join(' '));
            ctx.req.url = `${ctx.path}?${params.toString()}`;
          }
        }
      }
    }
    await next();
  };
}
