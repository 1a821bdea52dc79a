import type { KeyFamily } from './generate.js';

export interface KeyTimes {
  kid: string;
  family: KeyFamily;
  createdAt: number;
  activateAt: number;
}

export type KeyState = 'pending' | 'active' | 'retired' | 'expired';

export interface KeyStatus<K extends KeyTimes = KeyTimes> {
  key: K;
  state: KeyState;
  /** When a newer key took over (retired and expired keys). */
  retiredAt: number | null;
  /** When a retired key leaves the JWKS. */
  removeAt: number | null;
}

/**
 * Works out each key's state at `now`. Per family the newest key whose activation time has passed
 * signs; newer ones are published ahead of use; older ones stay published until every token they
 * signed has expired (`retentionMs` after they were superseded), then drop out.
 */
export function keyStates<K extends KeyTimes>(keys: K[], now: number, retentionMs: number): KeyStatus<K>[] {
  const out: KeyStatus<K>[] = [];
  const byFamily = new Map<KeyFamily, K[]>();
  for (const key of keys) {
    const list = byFamily.get(key.family) ?? [];
    list.push(key);
    byFamily.set(key.family, list);
  }
  for (const list of byFamily.values()) {
    list.sort((a, b) => a.activateAt - b.activateAt || a.createdAt - b.createdAt || a.kid.localeCompare(b.kid));
    let activeIndex = -1;
    list.forEach((key, i) => {
      if (key.activateAt <= now) activeIndex = i;
    });
    list.forEach((key, i) => {
      if (i > activeIndex) {
        out.push({ key, state: 'pending', retiredAt: null, removeAt: null });
      } else if (i === activeIndex) {
        out.push({ key, state: 'active', retiredAt: null, removeAt: null });
      } else {
        // superseded when the next key in line became active
        const retiredAt = list[i + 1]!.activateAt;
        const removeAt = retiredAt + retentionMs;
        out.push({ key, state: removeAt <= now ? 'expired' : 'retired', retiredAt, removeAt });
      }
    });
  }
  return out;
}

/** The next moment any key changes state (the provider must be rebuilt then), or null. */
export function nextTransition(statuses: KeyStatus[], now: number): number | null {
  let next: number | null = null;
  for (const s of statuses) {
    for (const t of [s.state === 'pending' ? s.key.activateAt : null, s.removeAt]) {
      if (t !== null && t > now && (next === null || t < next)) next = t;
    }
  }
  return next;
}
