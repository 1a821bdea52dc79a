import { describe, expect, it } from 'vitest';
// internal modules of node-oidc-provider changed by patches/oidc-provider+9.13.3.patch
// @ts-expect-error untyped internal module
import pick from 'oidc-provider/lib/models/payload.js';
// @ts-expect-error untyped internal module
import snakeCase from 'oidc-provider/lib/helpers/_/snake_case.js';

describe('patches/oidc-provider: the model payload pick and snake_case', () => {
  class Model {
    static IN_PAYLOAD = ['jti', 'kind', '__proto__', 'exp'];
  }

  it('pick keeps exactly the allowed keys, as own enumerable writable properties', () => {
    const picked = pick(Model, { jti: 'a', kind: 'Session', exp: 5, other: 'dropped' });
    expect(picked).toEqual({ jti: 'a', kind: 'Session', exp: 5 });
    expect(Object.getOwnPropertyDescriptor(picked, 'jti')).toEqual({ value: 'a', enumerable: true, writable: true, configurable: true });
    expect(() => pick(Model, null)).toThrow(TypeError);
  });

  it('pick copies a "__proto__" key as data, never as the prototype', () => {
    const input = JSON.parse('{"__proto__": {"polluted": true}, "jti": "b"}');
    const picked = pick(Model, input);
    expect(Object.getPrototypeOf(picked)).toBe(Object.prototype);
    expect((picked as { polluted?: boolean }).polluted).toBeUndefined();
    expect(Object.getOwnPropertyDescriptor(picked, '__proto__')?.value).toEqual({ polluted: true });
    expect(({} as { polluted?: boolean }).polluted).toBeUndefined();
  });

  it('snake_case gives the same answer every time it is asked', () => {
    for (let i = 0; i < 2; i++) {
      expect(snakeCase('AuthorizationCode')).toBe('authorization_code');
      expect(snakeCase('Session')).toBe('session');
      expect(snakeCase('BackchannelAuthenticationRequest')).toBe('backchannel_authentication_request');
      expect(snakeCase()).toBe('');
    }
  });
});
