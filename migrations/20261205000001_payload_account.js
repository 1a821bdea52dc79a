// Indexed lookup of an account's sessions and grants: node-oidc-provider's Session and Grant rows carry
// the account in their JSON payload only, so signing a user out everywhere (and the account page's device
// and application lists) scanned every session and grant of the realm. The adapter now writes the
// payload's accountId into `account_id` for those two models (null for every other one); the index is
// partial, like the other lookups (20261123000007_perf.js), so the rows without an account cost nothing.
// Rows written before this migration are filled in here: their payloads are parsed in JS, a batch at a
// time (the same code on SQLite and PostgreSQL, no JSON functions of either).

const INDEX = 'oidc_payloads_realm_id_account_id_index';
const BATCH = 500;

export async function up(knex) {
  await knex.schema.alterTable('oidc_payloads', (t) => {
    t.string('account_id', 200).nullable();
  });
  await knex.raw(`create index ${INDEX} on oidc_payloads (realm_id, account_id) where account_id is not null`);
  // keyset pagination over the primary key: every Session and Grant row is read once
  let after = null;
  for (;;) {
    const q = knex('oidc_payloads').select('realm_id', 'model', 'id', 'payload').whereIn('model', ['Grant', 'Session']).orderBy(['realm_id', 'model', 'id']).limit(BATCH);
    if (after) {
      q.whereRaw('(realm_id > ? or (realm_id = ? and (model > ? or (model = ? and id > ?))))', [after.realm_id, after.realm_id, after.model, after.model, after.id]);
    }
    const rows = await q;
    if (rows.length === 0) break;
    await knex.transaction(async (trx) => {
      for (const row of rows) {
        const accountId = accountOf(row.payload);
        if (accountId) await trx('oidc_payloads').where({ realm_id: row.realm_id, model: row.model, id: row.id }).update({ account_id: accountId });
      }
    });
    after = rows[rows.length - 1];
    if (rows.length < BATCH) break;
  }
}

/** The accountId of a stored payload, or null (unreadable JSON, none, or too long for the column). */
function accountOf(text) {
  try {
    const payload = JSON.parse(text);
    const id = payload && typeof payload === 'object' ? payload.accountId : undefined;
    return typeof id === 'string' && id.length > 0 && id.length <= 200 ? id : null;
  } catch {
    return null;
  }
}

export async function down(knex) {
  await knex.raw(`drop index if exists ${INDEX}`);
  await knex.schema.alterTable('oidc_payloads', (t) => {
    t.dropColumn('account_id');
  });
}
