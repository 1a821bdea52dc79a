import { errors, type AdapterPayload } from 'oidc-provider';
import { invalid } from '../errors.js';
import type { SigningMaterial } from '../keys/service.js';
import type { Realm } from '../realms/service.js';
import { createProvider, type ProviderDeps } from './provider-factory.js';

/**
 * Checks a client's metadata with node-oidc-provider's own rules, on a provider built as the realm's
 * are: a client it refuses would otherwise be stored and then fail every request
 * (invalid_redirect_uri, invalid_client_metadata).
 */
export async function validateClientMetadata(deps: ProviderDeps, realm: Realm, material: SigningMaterial, metadata: AdapterPayload): Promise<void> {
  const provider = createProvider(realm.issuers[0]!, realm, material, deps);
  try {
    await (provider.Client as unknown as { validate(metadata: AdapterPayload): Promise<void> }).validate(metadata);
  } catch (err) {
    if (err instanceof errors.OIDCProviderError) throw invalid(`the client cannot be created: ${err.error_description ?? err.message}`);
    throw err;
  }
}
