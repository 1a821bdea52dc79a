/** Authentication context classes Latchkey reports in `acr` and accepts in `acr_values`. */
export const ACR_SINGLE_FACTOR = 'urn:latchkey:loa:1';
export const ACR_MULTI_FACTOR = 'urn:latchkey:loa:2';
/** The OpenID PAPE multi-factor policy (what Auth0 clients send for step-up). */
export const ACR_PAPE_MULTI_FACTOR = 'http://schemas.openid.net/pape/policies/2007/06/multi-factor';

export const ACR_VALUES_SUPPORTED = [ACR_SINGLE_FACTOR, ACR_MULTI_FACTOR, ACR_PAPE_MULTI_FACTOR];

const MULTI = new Set([ACR_MULTI_FACTOR, ACR_PAPE_MULTI_FACTOR]);

/** Whether an authorization request's acr_values ask for multi-factor authentication. */
export function wantsMultiFactor(acrValues: unknown): boolean {
  return typeof acrValues === 'string' && acrValues.split(' ').some((v) => MULTI.has(v));
}

/** The acr to report for the methods used: the requested multi-factor value when one was asked for. */
export function acrFor(amr: string[], acrValues: unknown): string {
  if (!amr.includes('mfa')) return ACR_SINGLE_FACTOR;
  if (typeof acrValues === 'string') {
    const asked = acrValues.split(' ').find((v) => MULTI.has(v));
    if (asked) return asked;
  }
  return ACR_MULTI_FACTOR;
}
