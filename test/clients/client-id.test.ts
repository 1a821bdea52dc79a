import { describe, expect, it } from 'vitest';
import { newClientId } from '../../src/clients/service.js';

describe('generated client ids', () => {
  it('never start with a dash or an underscore (they are pasted after --client-id on command lines)', () => {
    // one id in 32 would start with "-" or "_" if drawn plainly from base64url
    const ids = Array.from({ length: 5000 }, newClientId);
    for (const id of ids) expect(id).toMatch(/^[A-Za-z0-9][A-Za-z0-9_-]{21}$/);
    expect(new Set(ids).size).toBe(ids.length);
  });
});
