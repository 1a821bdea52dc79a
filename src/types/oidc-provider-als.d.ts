// node-oidc-provider's own AsyncLocalStorage (an internal module of the package; see src/oidc/request-context.ts).
declare module 'oidc-provider/lib/helpers/als.js' {
  import type { AsyncLocalStorage } from 'node:async_hooks';
  const als: AsyncLocalStorage<unknown>;
  export default als;
}
