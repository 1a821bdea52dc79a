// Users whose password is still a bcrypt hash imported from another system (`latchkey user import`):
// usually none, a few after an import, and fewer with every first sign-in (which rehashes to argon2id).
// A failed password check asks for the highest bcrypt cost among them (src/accounts/user-service.ts), so
// that a wrong password for such a user and an unknown email cost the same work; this partial index
// makes that question a look at those rows only. The query must repeat the predicate literally.

export async function up(knex) {
  await knex.raw("create index users_bcrypt_hash on users (realm_id) where password_hash like '$2%'");
}

export async function down(knex) {
  await knex.raw('drop index users_bcrypt_hash');
}
