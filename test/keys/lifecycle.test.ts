import { describe, expect, it } from 'vitest';
import type { KeyFamily } from '../../src/keys/generate.js';
import { keyStates, nextTransition, type KeyTimes } from '../../src/keys/lifecycle.js';

const HOUR = 3_600_000;
const RETENTION = 2 * HOUR;
const T0 = Date.UTC(2030, 0, 1);

const key = (kid: string, activateAt: number, family: KeyFamily = 'EdDSA', createdAt = Math.min(activateAt, T0)): KeyTimes => ({ kid, family, createdAt, activateAt });

function statesAt(keys: KeyTimes[], now: number): Record<string, string> {
  return Object.fromEntries(keyStates(keys, now, RETENTION).map((s) => [s.key.kid, s.state]));
}

describe('keyStates', () => {
  it('makes the only key active once its activation time has passed, and pending before', () => {
    const k = key('k1', T0);
    expect(statesAt([k], T0 - 1)).toEqual({ k1: 'pending' });
    expect(statesAt([k], T0)).toEqual({ k1: 'active' });
    const [status] = keyStates([k], T0 + HOUR, RETENTION);
    expect(status).toMatchObject({ state: 'active', retiredAt: null, removeAt: null });
  });

  it('publishes a rotated key ahead of use, then retires the old key when it activates', () => {
    const keys = [key('old', T0), key('new', T0 + HOUR, 'EdDSA', T0 + 1)];
    expect(statesAt(keys, T0 + HOUR - 1)).toEqual({ old: 'active', new: 'pending' });
    expect(statesAt(keys, T0 + HOUR)).toEqual({ old: 'retired', new: 'active' });
    const old = keyStates(keys, T0 + HOUR, RETENTION).find((s) => s.key.kid === 'old')!;
    expect(old.retiredAt).toBe(T0 + HOUR);
    expect(old.removeAt).toBe(T0 + HOUR + RETENTION);
  });

  it('moves a retired key to expired exactly when its retention has passed', () => {
    const keys = [key('old', T0), key('new', T0 + HOUR)];
    const removeAt = T0 + HOUR + RETENTION;
    expect(statesAt(keys, removeAt - 1).old).toBe('retired');
    expect(statesAt(keys, removeAt).old).toBe('expired');
    expect(statesAt(keys, removeAt + 10 * HOUR)).toEqual({ old: 'expired', new: 'active' });
    const expired = keyStates(keys, removeAt, RETENTION).find((s) => s.key.kid === 'old')!;
    expect(expired).toMatchObject({ retiredAt: T0 + HOUR, removeAt });
  });

  it('retires each superseded key when its own successor activated', () => {
    const keys = [key('k1', T0), key('k2', T0 + HOUR), key('k3', T0 + 3 * HOUR), key('k4', T0 + 10 * HOUR)];
    const now = T0 + 4 * HOUR;
    const byKid = Object.fromEntries(keyStates(keys, now, RETENTION).map((s) => [s.key.kid, s]));
    expect(byKid.k1).toMatchObject({ state: 'expired', retiredAt: T0 + HOUR, removeAt: T0 + 3 * HOUR });
    expect(byKid.k2).toMatchObject({ state: 'retired', retiredAt: T0 + 3 * HOUR, removeAt: T0 + 5 * HOUR });
    expect(byKid.k3).toMatchObject({ state: 'active' });
    expect(byKid.k4).toMatchObject({ state: 'pending' });
  });

  it('handles an immediate rotation made while a delayed one is still pending', () => {
    // rotate --activate-after 3600, then rotate --activate-after 0 a minute later
    const keys = [key('current', T0), key('delayed', T0 + HOUR, 'EdDSA', T0), key('immediate', T0 + 60_000, 'EdDSA', T0 + 60_000)];
    expect(statesAt(keys, T0 + 120_000)).toEqual({ current: 'retired', immediate: 'active', delayed: 'pending' });
    expect(statesAt(keys, T0 + HOUR)).toEqual({ current: 'retired', immediate: 'retired', delayed: 'active' });
  });

  it('breaks activation-time ties by creation time, then kid, whatever the input order', () => {
    const a = key('a', T0, 'EdDSA', T0 - 2);
    const b = key('b', T0, 'EdDSA', T0 - 1);
    expect(statesAt([a, b], T0)).toEqual({ a: 'retired', b: 'active' });
    expect(statesAt([b, a], T0)).toEqual({ a: 'retired', b: 'active' });
    const c = key('c', T0, 'EdDSA', T0);
    const d = key('d', T0, 'EdDSA', T0);
    expect(statesAt([d, c], T0)).toEqual({ c: 'retired', d: 'active' });
  });

  it('works out each family on its own', () => {
    const keys = [key('ed1', T0), key('ed2', T0 + HOUR), key('rsa1', T0, 'RSA'), key('es1', T0 + 2 * HOUR, 'ES256'), key('es0', T0 - HOUR, 'ES256')];
    expect(statesAt(keys, T0 + HOUR)).toEqual({ ed1: 'retired', ed2: 'active', rsa1: 'active', es0: 'active', es1: 'pending' });
  });

  it('returns nothing for no keys', () => {
    expect(keyStates([], T0, RETENTION)).toEqual([]);
  });
});

describe('nextTransition', () => {
  const at = (keys: KeyTimes[], now: number) => nextTransition(keyStates(keys, now, RETENTION), now);

  it('is null when nothing will change', () => {
    expect(at([key('k1', T0)], T0)).toBeNull();
    expect(at([key('old', T0), key('new', T0 + HOUR)], T0 + HOUR + RETENTION)).toBeNull();
    expect(nextTransition([], T0)).toBeNull();
  });

  it('is the activation of a pending key', () => {
    expect(at([key('old', T0), key('new', T0 + HOUR)], T0 + 1)).toBe(T0 + HOUR);
  });

  it('is the removal of a retired key once the rotation has happened', () => {
    expect(at([key('old', T0), key('new', T0 + HOUR)], T0 + HOUR)).toBe(T0 + HOUR + RETENTION);
    expect(at([key('old', T0), key('new', T0 + HOUR)], T0 + HOUR + RETENTION - 1)).toBe(T0 + HOUR + RETENTION);
  });

  it('is the earliest change across keys and families', () => {
    const keys = [key('ed1', T0), key('ed2', T0 + HOUR), key('es1', T0, 'ES256'), key('es2', T0 + 30 * 60_000, 'ES256'), key('ed3', T0 + 5 * HOUR)];
    // at T0+1h: es1 (retired at T0+30min) leaves at T0+2h30, ed1 at T0+3h, ed3 activates at T0+5h
    // at T0+10min: es2 activates at T0+30min first
    expect(at(keys, T0 + HOUR)).toBe(T0 + 30 * 60_000 + RETENTION);
    expect(at(keys, T0 + 10 * 60_000)).toBe(T0 + 30 * 60_000);
  });

  it('ignores moments that are not in the future', () => {
    const statuses = keyStates([key('old', T0), key('new', T0 + HOUR)], T0, RETENTION);
    // asked later than the pending activation, with stale statuses: nothing left to wait for
    expect(nextTransition(statuses, T0 + HOUR)).toBeNull();
  });
});
