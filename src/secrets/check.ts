import type { Services } from '../server/services.js';

/** One kind of sealed value: how many there are, how many open with this LATCHKEY_SECRET, which do not. */
export interface SealedKindReport<T> {
  total: number;
  readable: number;
  unreadable: T[];
  /** What fixes an unreadable one of this kind (a command to run), or null when none is unreadable. */
  fix: string | null;
}

export interface SealedSecretsReport {
  realm: string | null;
  /** True when every sealed value opens with this LATCHKEY_SECRET. */
  ok: boolean;
  signing_keys: SealedKindReport<{ realm: string; kid: string; state: string; fix: string }>;
  totp_factors: SealedKindReport<{ realm: string; user_id: string; email: string | null; confirmed: boolean; fix: string }>;
  connection_secrets: SealedKindReport<{ realm: string; connection_id: string; fix: string }>;
}

const report = <T>(total: number, unreadable: T[], fix: string): SealedKindReport<T> => ({ total, readable: total - unreadable.length, unreadable, fix: unreadable.length ? fix : null });

/**
 * Checks every value sealed with LATCHKEY_SECRET (src/crypto/secret-box.ts) - realms' signing keys,
 * users' TOTP secrets, upstream connections' client secrets - of one realm or of every realm, and lists
 * those this secret cannot open: sealed with another secret. Ids only, never a secret or its sealed form.
 * `progress` hears what is being checked (stderr in the CLI).
 */
export async function checkSealedSecrets(services: Services, options: { realmId?: string; progress?: (text: string) => void } = {}): Promise<SealedSecretsReport> {
  const { realmId, progress = () => {} } = options;
  const realmIds = realmId !== undefined ? [(await services.realms.get(realmId)).id] : (await services.realms.list()).map((r) => r.id);

  progress(`checking the signing keys of ${realmIds.length} realm${realmIds.length === 1 ? '' : 's'}\n`);
  let keyCount = 0;
  const keys: SealedSecretsReport['signing_keys']['unreadable'] = [];
  for (const id of realmIds) {
    const inspected = await services.keys.inspect(id);
    keyCount += inspected.length;
    for (const k of inspected.filter((x) => !x.readable)) keys.push({ realm: id, kid: k.key.kid, state: k.state, fix: `latchkey keys repair --realm ${id} --yes` });
  }

  progress('checking TOTP secrets\n');
  const totp = await services.totp.unreadableFactors(realmId, (checked, total) => {
    if (total > 500) progress(`  ${checked} of ${total} TOTP secrets checked\n`);
  });
  const factors: SealedSecretsReport['totp_factors']['unreadable'] = [];
  for (const f of totp.unreadable) {
    const user = await services.users.findById(f.realmId, f.userId);
    factors.push({ realm: f.realmId, user_id: f.userId, email: user?.email ?? null, confirmed: f.confirmedAt !== null, fix: `latchkey secrets reset-totp --realm ${f.realmId} --user-id ${f.userId} --yes` });
  }

  progress('checking upstream connection client secrets\n');
  const connections = await services.connections.unreadableSecrets(realmId);

  const result: SealedSecretsReport = {
    realm: realmId ?? null,
    ok: keys.length === 0 && factors.length === 0 && connections.unreadable.length === 0,
    signing_keys: report(keyCount, keys, 'latchkey keys repair --realm R --yes: discards the realm\'s unreadable keys and publishes new ones (tokens they signed stop verifying)'),
    totp_factors: report(
      totp.total,
      factors,
      'latchkey secrets reset-totp --realm R --user-id ID --yes: deletes that unreadable factor (no code can match it) so the user sets up their authenticator app again; a security event records it',
    ),
    connection_secrets: report(
      connections.total,
      connections.unreadable.map((c) => ({
        realm: c.realmId,
        connection_id: c.id,
        fix: `latchkey connection set-secret --realm ${c.realmId} --id ${c.id} --client-secret-stdin`,
      })),
      'latchkey connection set-secret --realm R --id ID --client-secret-stdin: stores the client secret again (from the upstream provider\'s settings, or a new one made there)',
    ),
  };
  return result;
}
