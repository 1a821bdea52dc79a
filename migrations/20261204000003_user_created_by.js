// Who made each user: 'signup' (self-service sign-up), 'operator' (the CLI's user create, the admin API),
// 'import' (latchkey user import) or 'connection' (first sign-in through an upstream provider).
// A passwordless self-service sign-up that stopped before its passkey leaves a row that a new sign-up of
// the same address may finish; only rows a sign-up made may be finished that way without an emailed code
// (an operator's or an import's user without a password is someone's account, waiting for its owner).
// Rows from before this migration stay null and keep the earlier rule.

export async function up(knex) {
  await knex.schema.alterTable('users', (t) => {
    t.string('created_by', 16).nullable();
  });
}

export async function down(knex) {
  await knex.schema.alterTable('users', (t) => {
    t.dropColumn('created_by');
  });
}
