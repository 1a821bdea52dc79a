// Password checks in flight: each attempt at the password step reserves one of the account's (and the
// client address's) remaining failures before the password is checked, and gives it back when the check
// is done. A burst of attempts sent at once then cannot all be checked while none of them has failed yet.
// A reservation whose process died is ignored after `expires_at` and deleted by the next reservation.

export async function up(knex) {
  await knex.schema.createTable('login_throttle_reservations', (t) => {
    t.string('id', 36).notNullable(); // one id per attempt, shared by its account and address rows
    t.string('realm_id', 64).notNullable();
    t.string('key', 200).notNullable(); // the login_throttle key it is reserved against
    t.bigInteger('expires_at').notNullable();
    t.primary(['id', 'key']);
    t.index(['realm_id', 'key', 'expires_at']);
  });
}

export async function down(knex) {
  await knex.schema.dropTableIfExists('login_throttle_reservations');
}
