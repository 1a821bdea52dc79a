import type { AdapterPayload } from 'oidc-provider';

/**
 * Interaction writes held back while a sign-in completes and is resumed within one request
 * (src/oidc/resume-in-process.ts).
 *
 * Completing a sign-in saves the interaction with its result, and the provider's resume then reads it
 * back and deletes it: within one request that is a write and a read of a row nobody else will see.
 * While an interaction is held, the adapter keeps its saves here instead of writing them and answers
 * the resume's read from here; the resume's delete drops what was kept (and deletes the row stored
 * before). Whatever was saved and not deleted by the time the request lets go is written then, as it
 * would have been at once: a resume that failed part-way leaves the interaction as before.
 *
 * Held per realm and interaction uid in this process, only for the duration of the request that holds it.
 */
export interface HeldInteraction {
  /** The last save, not yet written. */
  payload?: AdapterPayload;
  /** Writes the last save. */
  write?: () => Promise<void>;
}

const held = new Map<string, HeldInteraction>();
const keyOf = (realmId: string, uid: string) => `${realmId}\n${uid}`;

/** The held interaction, for the adapter; undefined when its writes go straight to the database. */
export function heldInteraction(realmId: string, uid: string): HeldInteraction | undefined {
  return held.get(keyOf(realmId, uid));
}

/**
 * Holds the writes of interaction `uid` while `work` runs, then writes what is still pending.
 * Nested or concurrent holds of the same interaction do not hold anything: they write at once.
 */
export async function withHeldInteraction<T>(realmId: string, uid: string, work: () => Promise<T>): Promise<T> {
  const key = keyOf(realmId, uid);
  if (held.has(key)) return work();
  const entry: HeldInteraction = {};
  held.set(key, entry);
  try {
    return await work();
  } finally {
    held.delete(key);
    const pending = entry.write;
    entry.write = undefined;
    entry.payload = undefined;
    if (pending) await pending();
  }
}
