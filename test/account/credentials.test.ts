import { describe, expect, it } from 'vitest';
import { locksOut } from '../../src/account/credentials.js';

describe('locksOut (deleting a credential would leave no way to sign in)', () => {
  const phone = { id: 'phone', discoverable: true };
  const key = { id: 'key', discoverable: false };
  const none = { hasPassword: false, recoveryCodes: 0, federated: 0 };

  it('is true only for the last passkey of a user with no password, no recovery codes and no upstream identity', () => {
    expect(locksOut(phone, [phone, key], none)).toBe(true);
    expect(locksOut(phone, [phone, key, { id: 'laptop', discoverable: true }], none)).toBe(false);
    expect(locksOut(phone, [phone], { ...none, hasPassword: true })).toBe(false);
    expect(locksOut(phone, [phone], { ...none, recoveryCodes: 1 })).toBe(false);
    expect(locksOut(phone, [phone], { ...none, federated: 1 })).toBe(false);
    // a security key never signs in on its own
    expect(locksOut(key, [phone, key], none)).toBe(false);
  });
});
