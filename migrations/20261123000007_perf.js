// Cheaper writes of node-oidc-provider's models: the grant_id, uid and user_code lookups only ever ask
// for a value (`= ?`), so their indexes need no entries for rows without one. Most rows have no user
// code (only device codes do) and many have no uid or grant id; every upsert of such a row used to
// update those index entries anyway (about a fifth of an upsert's cost on SQLite).
// The same statements work on SQLite and PostgreSQL (both support partial indexes).

const LOOKUPS = [
  ['oidc_payloads_realm_id_grant_id_index', 'grant_id'],
  ['oidc_payloads_realm_id_uid_index', 'uid'],
  ['oidc_payloads_realm_id_user_code_index', 'user_code'],
];

export async function up(knex) {
  for (const [name, column] of LOOKUPS) {
    await knex.raw(`drop index if exists ${name}`);
    await knex.raw(`create index ${name} on oidc_payloads (realm_id, ${column}) where ${column} is not null`);
  }
}

export async function down(knex) {
  for (const [name, column] of LOOKUPS) {
    await knex.raw(`drop index if exists ${name}`);
    await knex.raw(`create index ${name} on oidc_payloads (realm_id, ${column})`);
  }
}
