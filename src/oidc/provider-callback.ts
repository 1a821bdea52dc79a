import type { IncomingMessage, ServerResponse } from 'node:http';
import type Provider from 'oidc-provider';

export type ProviderCallback = (req: IncomingMessage, res: ServerResponse) => Promise<unknown>;

const callbacks = new WeakMap<Provider, ProviderCallback>();

/** The provider's Node request handler (its Koa app's callback), built once per provider instance. */
export function providerCallback(provider: Provider): ProviderCallback {
  let callback = callbacks.get(provider);
  if (!callback) {
    callback = provider.callback() as ProviderCallback;
    callbacks.set(provider, callback);
  }
  return callback;
}
