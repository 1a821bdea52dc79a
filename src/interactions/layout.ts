import type { IncomingMessage } from 'node:http';
import type { ServedIssuer } from '../oidc/providers.js';

/** The served issuer travels on the raw request so node-oidc-provider's page hooks can brand their pages. */
export interface RealmRequest extends IncomingMessage {
  latchkey?: ServedIssuer;
}

/** The page shell's data; once the sign-in's tenant is known, its name, logo and colour replace the realm's. */
export function layoutFor(served: ServedIssuer | undefined, title: string, tenant?: { displayName: string; branding: { logoUrl?: string; primaryColor?: string } }) {
  const branding = served?.realm.settings.branding ?? {};
  return {
    realmName: tenant?.displayName ?? served?.realm.displayName ?? 'Latchkey',
    logoUrl: tenant?.branding.logoUrl ?? branding.logoUrl,
    primaryColor: tenant?.branding.primaryColor ?? branding.primaryColor,
    title,
    lang: 'en',
  };
}

export const SCOPE_DESCRIPTIONS: Record<string, string> = {
  openid: 'Confirm your identity',
  email: 'See your email address',
  profile: 'See your name and profile picture',
  offline_access: 'Stay connected when you are not using the app',
};
