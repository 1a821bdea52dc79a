import Router from '@koa/router';
import type { Services } from '../server/services.js';
import { connectionRoutes } from '../connections/routes.js';
import { consentRoutes } from './consent-routes.js';
import { SignInSteps } from './next-step.js';
import { passkeyRoutes } from './passkey-routes.js';
import { passwordForgotRoutes } from './password-forgot-routes.js';
import { signInRoutes } from './sign-in-routes.js';
import { TenantResolver } from './tenant-resolution.js';
import { tenantRoutes } from './tenant-routes.js';

/** The sign-in pages: each step ends by handing its result back to node-oidc-provider. */
export function interactionRoutes(services: Services): Router {
  const router = new Router();
  const tenants = new TenantResolver(services);
  const steps = new SignInSteps(services, services.progress, tenants);
  // tenant resolution first: it may answer the first page (an error, a connection, the picker)
  tenantRoutes(router, services, tenants, steps);
  // login steps next: their GET hands over to the consent page when the prompt is not `login`
  signInRoutes(router, services, services.progress, steps, tenants);
  passkeyRoutes(router, services, services.progress, steps);
  passwordForgotRoutes(router, services);
  connectionRoutes(router, services, steps);
  consentRoutes(router, services);
  return router;
}
