import { copyDatabase, type CopyProgress } from '../../db/copy.js';
import { openDatabase } from '../../db/knex.js';
import { loadConfig } from '../../config/load.js';
import { parse, required, UsageError, type Command, type CommandIo } from '../context.js';

const usage = `latchkey db copy --to URL [--from URL]
       (copies every row of the configured database, or --from, into a new, empty database at --to:
        SQLite to PostgreSQL when a deployment outgrows its embedded file, or back for a local copy.
        URLs as DATABASE_URL takes them: sqlite:PATH or postgres://... The source must be at the
        current schema (latchkey migrate) and is only read; the target is migrated and must be empty.
        One transaction: a failure writes nothing. Secrets stay sealed: start the new database with
        the same LATCHKEY_SECRET. Stop the servers first, or copy a snapshot: rows written during the
        copy may be missed. Progress goes to stderr)`;

const shown = (url: string) => url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');

function checkUrl(url: string, flag: string): string {
  if (!/^(sqlite:.+|postgres(ql)?:\/\/.+)$/.test(url)) throw new UsageError(`--${flag} must be a database URL, sqlite:PATH or postgres://... (got "${shown(url)}")`);
  return url;
}

/** Progress on stderr: each table as it starts and ends, and at most once a second within a large one. */
function copyProgress(io: CommandIo): (p: CopyProgress) => void {
  let last = 0;
  return ({ table, copied, total }) => {
    const now = Date.now();
    const edge = copied === 0 || copied === total;
    if (!edge && now - last < 1000) return;
    if (copied === 0 && total > 0) return;
    last = now;
    io.stderr(`latchkey db copy: ${table}: ${copied} of ${total} row${total === 1 ? '' : 's'}\n`);
  };
}

export const dbCommand: Command = {
  name: 'db',
  summary: 'copy a Latchkey database into a new one (SQLite to PostgreSQL, or back)',
  usage,
  async run(args, io) {
    const [sub, ...rest] = args;
    if (sub !== 'copy') throw new UsageError(`${sub ? `unknown db command "${sub}"` : 'db needs a command'}\n\nusage: ${usage}`);
    const o = parse(rest, { to: { type: 'string' }, from: { type: 'string' } }, usage);
    const to = checkUrl(required(o.to, 'to', usage), 'to');
    const from = o.from === undefined ? loadConfig().database.url : checkUrl(o.from, 'from');
    if (from === to) throw new UsageError('--to names the source database itself: copy into a new, empty database');
    const source = openDatabase(from);
    const target = openDatabase(to);
    try {
      const result = await copyDatabase(source, target, { onProgress: copyProgress(io) });
      return { from: shown(from), to: shown(to), rows: result.rows, tables: Object.fromEntries(result.tables.map((t) => [t.table, t.rows])) };
    } finally {
      await Promise.all([source.destroy(), target.destroy()]);
    }
  },
};
