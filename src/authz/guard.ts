import type { AuthorizationModule, IssueDecision, IssuedIdentity } from './module.js';

/** Where a module's failures are reported (the server's logger). */
export interface GuardLog {
  error(obj: object, msg: string): void;
}

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value) && [Object.prototype, null].includes(Object.getPrototypeOf(value));

/** What is wrong with a module's onIssue() answer, or undefined when it is a well-formed decision. */
function decisionProblem(answer: unknown): string | undefined {
  if (!isPlainObject(answer)) return 'onIssue() must resolve to an object like { allow: true }';
  if (typeof answer.allow !== 'boolean') return '"allow" must be true or false';
  if (answer.reason !== undefined && typeof answer.reason !== 'string') return '"reason" must be a string';
  if (answer.claims !== undefined && !isPlainObject(answer.claims)) return '"claims" must be an object of claim names to values';
  return undefined;
}

/**
 * The configured module as the server calls it. An operator's module is code the server does not
 * control: when its onIssue() throws or answers something that is not a decision, no token is issued
 * and the client is told why (access_denied naming the module), instead of a server error or, for an
 * answer such as `{ allow: "false" }`, a token; the module's error goes to the log only. A check()
 * that throws or answers anything but `true` allows nothing.
 */
export function guardAuthorizationModule(module: AuthorizationModule, log: GuardLog): AuthorizationModule {
  const failed = (what: string): IssueDecision => ({
    allow: false,
    reason: `the authorization module "${module.name}" ${what}, so no token is issued`,
  });
  return {
    name: module.name,
    async onIssue(identity: IssuedIdentity): Promise<IssueDecision> {
      let answer: unknown;
      try {
        answer = await module.onIssue(identity);
      } catch (err) {
        log.error({ err, module: module.name, clientId: identity.clientId, token: identity.token }, 'the authorization module failed in onIssue()');
        return failed('failed');
      }
      const problem = decisionProblem(answer);
      if (problem) {
        log.error({ module: module.name, problem, clientId: identity.clientId, token: identity.token }, 'the authorization module gave an invalid onIssue() answer');
        return failed(`gave an invalid answer (${problem})`);
      }
      const decision = answer as IssueDecision;
      return { allow: decision.allow, reason: decision.reason, claims: decision.claims };
    },
    async check(identity, resourceUri, permission) {
      try {
        const answer = await module.check(identity, resourceUri, permission);
        if (typeof answer !== 'boolean') log.error({ module: module.name, resourceUri, permission }, 'the authorization module gave a non-boolean check() answer: refused');
        return answer === true;
      } catch (err) {
        log.error({ err, module: module.name, resourceUri, permission }, 'the authorization module failed in check(): refused');
        return false;
      }
    },
  };
}
