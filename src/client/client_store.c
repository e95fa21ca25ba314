/*
 * client_store.c
 *
 * The replica database (dir/replica.db, SQLite in WAL mode; the tables are
 * described in client_int.h): opening and creating it, the position row
 * and its checksum, transactions, applying log entries against the stored
 * items (the fold rule of PROTOCOL.md section 4, with the shared core's
 * delta decoder and item hash), generations of items (a download builds
 * one beside the live one; an install switches meta.gen in one
 * transaction; old ones are deleted in batches), the kept range hashes
 * of every generation (the bucket table, changed with its items), the
 * download's progress row and the counters.
 *
 * Owns: the SQL of the replica database, the writer connection and its
 * prepared statements, slcli_store_* (begin/commit/rollback, apply, put,
 * install, retire, the download row), slcli_bk_* (the kept range hashes)
 * and the `cur`/`committed` pair of positions of a handle.
 * Must never: change an item without changing the hash it belongs to and
 * its bucket's kept range hash by the same item (slc_hash_add_item/
 * remove_item of the stored item hash),
 * apply an entry whose delta does not decode or names a key twice,
 * commit a position without its hash and checksum in the same
 * transaction, or delete rows of the live generation or of the download's.
 */
#define _GNU_SOURCE
#include "client_int.h"

#include <errno.h>
#include <unistd.h>

#include <xxhash.h>

static const char *const schema_sql =
"CREATE TABLE IF NOT EXISTS meta ("
"  id INTEGER PRIMARY KEY CHECK (id = 1),"
"  format INTEGER NOT NULL,"
"  doc BLOB NOT NULL,"
"  gen INTEGER,"
"  log_id TEXT,"
"  lsn INTEGER,"
"  chain BLOB,"
"  hash BLOB,"
"  chk INTEGER NOT NULL,"
"  next_gen INTEGER NOT NULL);"
"CREATE TABLE IF NOT EXISTS item ("
"  gen INTEGER NOT NULL,"
"  ns INTEGER NOT NULL,"
"  key BLOB NOT NULL,"
"  hlo INTEGER NOT NULL,"
"  hhi INTEGER NOT NULL,"
"  val BLOB NOT NULL,"
"  PRIMARY KEY (gen, ns, key)) WITHOUT ROWID;"
"CREATE TABLE IF NOT EXISTS download ("
"  id INTEGER PRIMARY KEY CHECK (id = 1),"
"  dl_id INTEGER NOT NULL,"
"  gen INTEGER NOT NULL,"
"  log_id TEXT NOT NULL,"
"  base INTEGER NOT NULL,"
"  target BLOB NOT NULL,"
"  reason INTEGER NOT NULL,"
"  after BLOB,"
"  rows INTEGER NOT NULL,"
"  bytes INTEGER NOT NULL,"
"  sum BLOB NOT NULL,"
"  chk INTEGER NOT NULL);"
"CREATE TABLE IF NOT EXISTS stats ("
"  id INTEGER PRIMARY KEY CHECK (id = 1),"
"  switches_marker INTEGER NOT NULL DEFAULT 0,"
"  markers_mismatch INTEGER NOT NULL DEFAULT 0,"
"  downloads INTEGER NOT NULL DEFAULT 0,"
"  downloads_initial INTEGER NOT NULL DEFAULT 0,"
"  downloads_resumed INTEGER NOT NULL DEFAULT 0,"
"  download_restarts INTEGER NOT NULL DEFAULT 0,"
"  entries_applied INTEGER NOT NULL DEFAULT 0,"
"  bytes_log INTEGER NOT NULL DEFAULT 0,"
"  bytes_marker INTEGER NOT NULL DEFAULT 0,"
"  bytes_snapshot INTEGER NOT NULL DEFAULT 0,"
"  acks INTEGER NOT NULL DEFAULT 0,"
"  repairs INTEGER NOT NULL DEFAULT 0,"
"  retired_rows INTEGER NOT NULL DEFAULT 0,"
"  bytes_downloaded INTEGER NOT NULL DEFAULT 0);"
"INSERT OR IGNORE INTO stats (id) VALUES (1);"
"CREATE TABLE IF NOT EXISTS writer ("
"  id INTEGER PRIMARY KEY CHECK (id = 1),"
"  next_seq INTEGER NOT NULL);"
"INSERT OR IGNORE INTO writer (id, next_seq) VALUES (1, 1);"
SLCLI_QUEUE_TABLES_SQL
"CREATE TABLE IF NOT EXISTS job ("
"  id INTEGER PRIMARY KEY CHECK (id = 1),"
"  kind INTEGER NOT NULL,"
"  reason INTEGER NOT NULL,"
"  gen INTEGER NOT NULL,"
"  sgen INTEGER NOT NULL,"
"  from_log TEXT,"
"  from_lsn INTEGER,"
"  from_chain BLOB,"
"  log_id TEXT NOT NULL,"
"  lsn INTEGER NOT NULL,"
"  chain BLOB NOT NULL,"
"  hash BLOB NOT NULL,"
"  base BLOB NOT NULL,"
"  buckets BLOB NOT NULL,"
"  after_ns INTEGER,"
"  after BLOB,"
"  rows INTEGER NOT NULL,"
"  bytes INTEGER NOT NULL,"
"  ms INTEGER NOT NULL,"
"  chk INTEGER NOT NULL);"
"CREATE TABLE IF NOT EXISTS stage ("
"  ns INTEGER NOT NULL,"
"  key BLOB NOT NULL,"
"  hlo INTEGER,"
"  hhi INTEGER,"
"  val BLOB,"
"  PRIMARY KEY (ns, key)) WITHOUT ROWID;"
"CREATE TABLE IF NOT EXISTS pathstats ("
"  id INTEGER PRIMARY KEY CHECK (id = 1),"
"  replays INTEGER NOT NULL DEFAULT 0,"
"  replay_ms INTEGER NOT NULL DEFAULT 0,"
"  catch_ups INTEGER NOT NULL DEFAULT 0,"
"  catch_up_bytes INTEGER NOT NULL DEFAULT 0,"
"  catch_up_rows INTEGER NOT NULL DEFAULT 0,"
"  catch_up_ms INTEGER NOT NULL DEFAULT 0,"
"  range_repairs INTEGER NOT NULL DEFAULT 0,"
"  range_repair_bytes INTEGER NOT NULL DEFAULT 0,"
"  range_repair_buckets INTEGER NOT NULL DEFAULT 0,"
"  range_repair_rows INTEGER NOT NULL DEFAULT 0,"
"  range_repair_ms INTEGER NOT NULL DEFAULT 0,"
"  download_ms INTEGER NOT NULL DEFAULT 0,"
"  cost_bytes INTEGER NOT NULL DEFAULT 0,"
"  last_path INTEGER NOT NULL DEFAULT 0,"
"  last_reason INTEGER NOT NULL DEFAULT 0);"
"INSERT OR IGNORE INTO pathstats (id) VALUES (1);"
"CREATE TABLE IF NOT EXISTS bucket ("
"  gen INTEGER NOT NULL,"
"  b INTEGER NOT NULL,"
"  hash BLOB NOT NULL,"
"  PRIMARY KEY (gen, b)) WITHOUT ROWID;";

/*
 * The counters in the order of the stats table's columns (0 .. NSTATS-1),
 * then of the pathstats table's (NSTATS .. NSTATS+NPSTATS-1).
 */
#define NSTATS 14
#define NPSTATS 15
static int64_t *
stat_slot(slcl_stats *s, int i)
{
	int64_t    *slots[NSTATS + NPSTATS] = {
		&s->switches_marker, &s->markers_mismatch, &s->downloads, &s->downloads_initial,
		&s->downloads_resumed, &s->download_restarts, &s->entries_applied, &s->bytes_log,
		&s->bytes_marker, &s->bytes_snapshot, &s->acks, &s->repairs, &s->retired_rows,
		&s->bytes_downloaded,
		&s->replays, &s->replay_ms, &s->catch_ups, &s->catch_up_bytes, &s->catch_up_rows,
		&s->catch_up_ms, &s->range_repairs, &s->range_repair_bytes, &s->range_repair_buckets,
		&s->range_repair_rows, &s->range_repair_ms, &s->download_ms, &s->cost_bytes,
		&s->last_path, &s->last_reason
	};

	return slots[i];
}

static const char *const stmt_sql[ST__COUNT] = {
	[ST_ITEM_OLD] = "SELECT hlo, hhi, length(val) FROM item WHERE gen = ?1 AND ns = ?2 AND key = ?3",
	[ST_ITEM_PUT] = "INSERT INTO item (gen, ns, key, hlo, hhi, val) VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
	"ON CONFLICT (gen, ns, key) DO UPDATE SET hlo = excluded.hlo, hhi = excluded.hhi, val = excluded.val",
	[ST_ITEM_DEL] = "DELETE FROM item WHERE gen = ?1 AND ns = ?2 AND key = ?3",
	[ST_ITEM_INS] = "INSERT INTO item (gen, ns, key, hlo, hhi, val) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[ST_META_SAVE] = "UPDATE meta SET gen = ?1, log_id = ?2, lsn = ?3, chain = ?4, hash = ?5, chk = ?6, "
	"next_gen = ?7 WHERE id = 1",
	[ST_DL_SAVE] = "INSERT OR REPLACE INTO download (id, dl_id, gen, log_id, base, target, reason, after, "
	"rows, bytes, sum, chk) VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
	[ST_STATS_SAVE] = "UPDATE stats SET switches_marker = ?1, markers_mismatch = ?2, downloads = ?3, "
	"downloads_initial = ?4, downloads_resumed = ?5, download_restarts = ?6, entries_applied = ?7, "
	"bytes_log = ?8, bytes_marker = ?9, bytes_snapshot = ?10, acks = ?11, repairs = ?12, "
	"retired_rows = ?13, bytes_downloaded = ?14 WHERE id = 1",
	[ST_PSTATS_SAVE] = "UPDATE pathstats SET replays = ?1, replay_ms = ?2, catch_ups = ?3, "
	"catch_up_bytes = ?4, catch_up_rows = ?5, catch_up_ms = ?6, range_repairs = ?7, "
	"range_repair_bytes = ?8, range_repair_buckets = ?9, range_repair_rows = ?10, "
	"range_repair_ms = ?11, download_ms = ?12, cost_bytes = ?13, last_path = ?14, "
	"last_reason = ?15 WHERE id = 1",
	[ST_BK_PUT] = "INSERT INTO bucket (gen, b, hash) VALUES (?1, ?2, ?3) "
	"ON CONFLICT (gen, b) DO UPDATE SET hash = excluded.hash",
	[ST_BK_DEL] = "DELETE FROM bucket WHERE gen = ?1 AND b = ?2",
};

/* A non-NULL pointer for zero-length blobs (NULL would bind SQL NULL). */
static const uint8_t empty_blob[1] = {0};

static const void *
blob_ptr(const void *p)
{
	return p ? p : empty_blob;
}

slcl_rc
slcli_db_fail(slcl_client *c, const char *what)
{
	int			code = c->db ? sqlite3_errcode(c->db) & 0xff : SQLITE_CANTOPEN;

	if (code == SQLITE_CORRUPT || code == SQLITE_NOTADB)
		c->db_corrupt = 1;
	if (code == SQLITE_NOMEM)
		return slcli_fail(c, SLCL_ERR_NOMEM, "out of memory in the replica database (%s)", what);
	return slcli_fail(c, SLCL_ERR_IO, "replica database \"%s/%s\": %s: %s", c->dir, SLCLI_DB_NAME,
					  what, c->db ? sqlite3_errmsg(c->db) : "not open");
}

slcl_rc
slcli_store_exec(slcl_client *c, const char *sql)
{
	if (sqlite3_exec(c->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return slcli_db_fail(c, sql);
	return SLCL_OK;
}

sqlite3_stmt *
slcli_store_prepare(slcl_client *c, const char *sql)
{
	sqlite3_stmt *s = NULL;

	if (sqlite3_prepare_v2(c->db, sql, -1, &s, NULL) != SQLITE_OK)
	{
		slcli_db_fail(c, "could not prepare a statement");
		return NULL;
	}
	return s;
}

/* Run a prepared statement that returns no row, then reset it. */
static slcl_rc
step_done(slcl_client *c, sqlite3_stmt *s, const char *what)
{
	int			rc = sqlite3_step(s);

	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (rc != SQLITE_DONE)
		return slcli_db_fail(c, what);
	return SLCL_OK;
}

/* Checksum of a position row (meta). */
static int64_t
pos_chk(const slcl_client *c, const slcli_pos *p, int64_t next_gen)
{
	buf			b = {0};
	uint8_t		h[SLC_HASH_LEN];
	uint64_t	v;

	slc_hash_serialize(&p->hash, h);
	if (buf_u32(&b, SLCLI_DB_FORMAT) || buf_lp(&b, c->doc, c->doclen) ||
		buf_u64(&b, p->have ? (uint64_t) p->gen : UINT64_MAX) || buf_u64(&b, (uint64_t) next_gen))
	{
		free(b.p);
		return 0;
	}
	if (p->have &&
		(buf_lp(&b, p->log_id, strlen(p->log_id)) || buf_u64(&b, (uint64_t) p->lsn) ||
		 buf_put(&b, p->chain, SLCL_CHAIN_LEN) || buf_put(&b, h, SLC_HASH_LEN)))
	{
		free(b.p);
		return 0;
	}
	v = XXH3_64bits(b.p, b.len);
	free(b.p);
	return (int64_t) v;
}

/*
 * The tables' definitions, as SQLite keeps them (sqlite_master.sql, in
 * name order), into out: the schema made in a scratch in-memory database
 * (db NULL), or the one in db.
 */
static int
schema_text(sqlite3 *db, buf *out)
{
	sqlite3    *mem = NULL;
	sqlite3_stmt *s = NULL;
	int			rc;

	out->len = 0;
	if (db == NULL)
	{
		if (sqlite3_open_v2(":memory:", &mem, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
			sqlite3_exec(mem, schema_sql, NULL, NULL, NULL) != SQLITE_OK)
		{
			sqlite3_close(mem);
			return -1;
		}
		db = mem;
	}
	rc = sqlite3_prepare_v2(db, "SELECT name, sql FROM sqlite_master ORDER BY name", -1, &s, NULL);
	while (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW)
	{
		const char *n = (const char *) sqlite3_column_text(s, 0);
		const char *q = (const char *) sqlite3_column_text(s, 1);

		if (buf_lp(out, n ? n : "", n ? strlen(n) : 0) || buf_lp(out, q ? q : "", q ? strlen(q) : 0))
			rc = SQLITE_NOMEM;
		else
			rc = SQLITE_OK;
	}
	sqlite3_finalize(s);
	sqlite3_close(mem);
	return rc == SQLITE_DONE ? 0 : -1;
}

slcl_rc
slcli_store_open(slcl_client *c, int *created)
{
	char		path[4096];
	char		sql[128];
	sqlite3_stmt *s;
	int			rc;
	slcl_rc		r;

	*created = 0;
	slcli_path_of(c, SLCLI_DB_NAME, path, sizeof(path));
	rc = sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
	if (rc != SQLITE_OK)
		return slcli_db_fail(c, "could not open");
	sqlite3_extended_result_codes(c->db, 1);
	sqlite3_busy_timeout(c->db, 10000);
	s = slcli_store_prepare(c, "PRAGMA journal_mode = WAL");
	if (s == NULL)
		return SLCL_ERR_IO;
	rc = sqlite3_step(s);
	if (rc != SQLITE_ROW || strcmp((const char *) sqlite3_column_text(s, 0), "wal") != 0)
	{
		sqlite3_finalize(s);
		return rc == SQLITE_ROW ? slcli_fail(c, SLCL_ERR_IO, "replica database \"%s\": cannot use WAL mode", path)
			: slcli_db_fail(c, "could not set WAL mode");
	}
	sqlite3_finalize(s);
	snprintf(sql, sizeof(sql), "PRAGMA synchronous = FULL; PRAGMA cache_size = -%d",
			 c->opt.cache_kib);
	r = slcli_store_exec(c, sql);
	if (r != SLCL_OK)
		return r;
	r = slcli_store_exec(c, "BEGIN IMMEDIATE");
	if (r != SLCL_OK)
		return r;
	/*
	 * A job of the layout before repairs at the head (after_bucket): given
	 * up, as a damaged one would be (the live state is whole without it).
	 */
	if (sqlite3_exec(c->db, "SELECT after_bucket FROM job LIMIT 0", NULL, NULL, NULL) == SQLITE_OK &&
		sqlite3_exec(c->db, "DROP TABLE job; DROP TABLE IF EXISTS stage", NULL, NULL, NULL) != SQLITE_OK)
	{
		r = slcli_db_fail(c, "could not drop an old catch-up or repair");
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
		return r;
	}
	if (sqlite3_exec(c->db, schema_sql, NULL, NULL, NULL) != SQLITE_OK)
	{
		r = slcli_db_fail(c, "could not create the tables");
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
		return r;
	}
	{
		buf			want = {0},
					have = {0};
		int			e1 = schema_text(NULL, &want);
		int			e2 = schema_text(c->db, &have);

		if (e2 != 0)
			r = slcli_db_fail(c, "could not read the schema");
		else if (e1 != 0)
			r = slcli_fail(c, SLCL_ERR_NOMEM, "out of memory");
		else if (want.len != have.len || memcmp(want.p, have.p, want.len) != 0)
		{
			/* tables that are not as this client makes them: damaged */
			c->db_corrupt = 1;
			r = slcli_fail(c, SLCL_ERR_IO, "replica database \"%s\": its tables are not the ones of format %d",
						   path, SLCLI_DB_FORMAT);
		}
		free(want.p);
		free(have.p);
		if (r != SLCL_OK)
		{
			sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
			return r;
		}
	}
	s = slcli_store_prepare(c, "SELECT format, doc FROM meta WHERE id = 1");
	if (s == NULL)
	{
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
		return SLCL_ERR_IO;
	}
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
	{
		const void *d = sqlite3_column_blob(s, 1);
		size_t		dl = (size_t) sqlite3_column_bytes(s, 1);
		int			fmt = sqlite3_column_int(s, 0);

		if (fmt != SLCLI_DB_FORMAT)
			r = slcli_fail(c, SLCL_ERR_ARG, "replica database \"%s\" has format %d; this client reads format %d",
						   path, fmt, SLCLI_DB_FORMAT);
		else if (dl != c->doclen || (dl && memcmp(d, c->doc, dl) != 0))
			r = slcli_fail(c, SLCL_ERR_ARG, "directory \"%s\" holds a replica of another document (\"%.*s\")",
						   c->dir, (int) (dl > 200 ? 200 : dl), d ? (const char *) d : "");
	}
	else if (rc == SQLITE_DONE)
	{
		slcli_pos	none;

		memset(&none, 0, sizeof(none));
		sqlite3_finalize(s);
		/* no position row: a new database, unless anything else is there */
		s = slcli_store_prepare(c, "SELECT (SELECT count(*) FROM meta) + (SELECT count(*) FROM download) + "
								"(SELECT count(*) FROM job) + EXISTS (SELECT 1 FROM item)");
		if (s == NULL || sqlite3_step(s) != SQLITE_ROW || sqlite3_column_int64(s, 0) != 0)
		{
			if (s != NULL)
			{
				c->db_corrupt = 1;
				slcli_fail(c, SLCL_ERR_IO, "replica database \"%s\": rows without a position row", path);
				sqlite3_finalize(s);
			}
			sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
			return SLCL_ERR_IO;
		}
		sqlite3_finalize(s);
		s = slcli_store_prepare(c, "INSERT INTO meta (id, format, doc, chk, next_gen) VALUES (1, ?1, ?2, ?3, 1)");
		if (s == NULL)
		{
			sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
			return SLCL_ERR_IO;
		}
		sqlite3_bind_int(s, 1, SLCLI_DB_FORMAT);
		sqlite3_bind_blob(s, 2, c->doc, (int) c->doclen, SQLITE_STATIC);
		sqlite3_bind_int64(s, 3, pos_chk(c, &none, 1));
		if (sqlite3_step(s) != SQLITE_DONE)
			r = slcli_db_fail(c, "could not initialize");
		*created = 1;
	}
	else
		r = slcli_db_fail(c, "could not read the position");
	sqlite3_finalize(s);
	if (r != SLCL_OK)
	{
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
		return r;
	}
	r = slcli_store_exec(c, "COMMIT");
	if (r != SLCL_OK)
		return r;
	for (int i = 0; i < ST__COUNT; i++)
	{
		c->st[i] = slcli_store_prepare(c, stmt_sql[i]);
		if (c->st[i] == NULL)
			return SLCL_ERR_IO;
	}
	return SLCL_OK;
}

static slcl_rc save_stats(slcl_client *c);

void
slcli_store_close(slcl_client *c)
{
	if (c->db == NULL)
		return;
	if (c->in_txn)
		slcli_store_rollback(c);
	else if (c->st[ST_STATS_SAVE] != NULL && c->st[ST_PSTATS_SAVE] != NULL &&
			 sqlite3_exec(c->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK)
	{
		/*
		 * The time counters grow after the commit of the work they time:
		 * save them, so that they stay what the stats say they are, totals
		 * since the replica was made.  A failure only loses those.
		 */
		if (save_stats(c) == SLCL_OK)
			(void) sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL);
		else
			(void) sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	}
	for (int i = 0; i < ST__COUNT; i++)
	{
		sqlite3_finalize(c->st[i]);
		c->st[i] = NULL;
	}
	sqlite3_finalize(c->stage_ins);
	c->stage_ins = NULL;
	slcli_bk_free(c);
	slcli_write_close(c);
	sqlite3_close(c->db);
	c->db = NULL;
}

/*
 * Load the position row and the counters.  *damaged (with *why) when the
 * row fails its checksum or does not parse.
 */
slcl_rc
slcli_store_load(slcl_client *c, int *damaged, char *why, size_t whylen)
{
	sqlite3_stmt *s;
	slcli_pos	p;
	int			rc;
	int64_t		chk;

	*damaged = 0;
	memset(&p, 0, sizeof(p));
	s = slcli_store_prepare(c, "SELECT gen, log_id, lsn, chain, hash, chk, next_gen FROM meta WHERE id = 1");
	if (s == NULL)
		return SLCL_ERR_IO;
	rc = sqlite3_step(s);
	if (rc != SQLITE_ROW)
	{
		sqlite3_finalize(s);
		return slcli_db_fail(c, "could not read the position");
	}
	chk = sqlite3_column_int64(s, 5);
	c->next_gen = sqlite3_column_int64(s, 6);
	if (sqlite3_column_type(s, 0) != SQLITE_NULL)
	{
		const char *l = (const char *) sqlite3_column_text(s, 1);
		size_t		ll = l ? strlen(l) : 0;

		p.have = 1;
		p.gen = sqlite3_column_int64(s, 0);
		p.lsn = sqlite3_column_int64(s, 2);
		if (ll == 0 || ll > SLCL_LOG_ID_MAX || p.lsn < 0 ||
			(sqlite3_column_type(s, 3) != SQLITE_NULL &&
			 sqlite3_column_bytes(s, 3) != SLCL_CHAIN_LEN) ||
			slc_hash_parse(sqlite3_column_blob(s, 4), (size_t) sqlite3_column_bytes(s, 4), &p.hash) != SLC_OK)
		{
			snprintf(why, whylen, "malformed position record");
			*damaged = 1;
		}
		else
		{
			memcpy(p.log_id, l, ll + 1);
			p.chain_known = sqlite3_column_type(s, 3) != SQLITE_NULL;
			if (p.chain_known)
				memcpy(p.chain, sqlite3_column_blob(s, 3), SLCL_CHAIN_LEN);
		}
	}
	sqlite3_finalize(s);
	if (!*damaged && chk != pos_chk(c, &p, c->next_gen))
	{
		snprintf(why, whylen, "position record fails its checksum");
		*damaged = 1;
	}
	if (*damaged)
		memset(&p, 0, sizeof(p));
	if (!p.have)
		slc_hash_init(&p.hash);
	c->cur = c->committed = p;

	s = slcli_store_prepare(c, "SELECT * FROM stats WHERE id = 1");
	if (s == NULL)
		return SLCL_ERR_IO;
	if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_count(s) == NSTATS + 1)
		for (int i = 0; i < NSTATS; i++)
			*stat_slot(&c->stats, i) = sqlite3_column_int64(s, i + 1);
	sqlite3_finalize(s);
	s = slcli_store_prepare(c, "SELECT * FROM pathstats WHERE id = 1");
	if (s == NULL)
		return SLCL_ERR_IO;
	if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_count(s) == NPSTATS + 1)
		for (int i = 0; i < NPSTATS; i++)
			*stat_slot(&c->stats, NSTATS + i) = sqlite3_column_int64(s, i + 1);
	sqlite3_finalize(s);
	return SLCL_OK;
}

/*
 * Recompute the hash of generation gen from its stored items with the
 * shared core, checking every item against its stored item hash, and
 * compare it with *expect.  *ok = 1 when all agree; otherwise *why says
 * the first thing that differs.  With rh (SLC_BUCKETS of them), the same
 * pass leaves there the range hashes of the items' values, damaged ones
 * included, so that a repair finds the buckets they damage.  The pass
 * reads the database through a memory map (PRAGMA mmap_size, set back to
 * 0 after it): it reads every page once, and read() calls copying them
 * cost about as much again (a 200 MiB replica: about 70 ms instead of 150).
 */
slcl_rc
slcli_store_check(slcl_client *c, int64_t gen, const slc_hash *expect, slc_hash *rh, int *ok,
				  char *why, size_t whylen)
{
	sqlite3_stmt *s;
	slc_hash	h;
	int			rc;
	int			bad = 0;

	*ok = 0;
	slc_hash_init(&h);
	if (rh)
		for (int b = 0; b < SLC_BUCKETS; b++)
			slc_hash_init(&rh[b]);
	s = slcli_store_prepare(c, "SELECT ns, key, hlo, hhi, val FROM item WHERE gen = ?1 ORDER BY ns, key");
	if (s == NULL)
		return SLCL_ERR_IO;
	(void) sqlite3_exec(c->db, "PRAGMA mmap_size = 1099511627776", NULL, NULL, NULL);
	sqlite3_bind_int64(s, 1, gen);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
	{
		int			ns = sqlite3_column_int(s, 0);
		const uint8_t *k = blob_ptr(sqlite3_column_blob(s, 1));
		size_t		kl = (size_t) sqlite3_column_bytes(s, 1);
		uint64_t	slo = (uint64_t) sqlite3_column_int64(s, 2);
		uint64_t	shi = (uint64_t) sqlite3_column_int64(s, 3);
		const uint8_t *v = blob_ptr(sqlite3_column_blob(s, 4));
		size_t		vl = (size_t) sqlite3_column_bytes(s, 4);
		uint64_t	lo,
					hi;

		slc_item_hash((uint8_t) ns, k, kl, v, vl, &lo, &hi);
		if (rh)
			slc_hash_add_item(&rh[slc_bucket((uint8_t) ns, k, kl)], lo, hi, (uint64_t) kl + (uint64_t) vl);
		if (bad)
			continue;			/* only the range hashes are still wanted */
		if ((ns != SLC_NS_DATA && ns != SLC_NS_CLIENT) || kl > SLC_KEY_MAX ||
			(ns == SLC_NS_CLIENT && vl != SLC_WATERMARK_LEN))
		{
			snprintf(why, whylen, "malformed item (ns %d, key of %zu bytes)", ns, kl);
			bad = 1;
		}
		else if (lo != slo || hi != shi)
		{
			snprintf(why, whylen, "item ns %d (key of %zu bytes) does not match its stored item hash", ns, kl);
			bad = 1;
		}
		else
			slc_hash_add_item(&h, lo, hi, (uint64_t) kl + (uint64_t) vl);
		if (bad && rh == NULL)
			break;
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
	{
		/* (the error first: the pragma resets it) */
		slcl_rc		r = slcli_db_fail(c, "could not read the items");

		(void) sqlite3_exec(c->db, "PRAGMA mmap_size = 0", NULL, NULL, NULL);
		return r;
	}
	(void) sqlite3_exec(c->db, "PRAGMA mmap_size = 0", NULL, NULL, NULL);
	if (bad)
		return SLCL_OK;
	if (!slc_hash_equal(&h, expect))
	{
		snprintf(why, whylen, "the items (%llu) do not add up to the running hash (%llu items)",
				 (unsigned long long) h.count, (unsigned long long) expect->count);
		return SLCL_OK;
	}
	*ok = 1;
	return SLCL_OK;
}

/*
 * The kept range hashes (PROTOCOL.md section 11a).  Every generation's
 * range hashes are rows (gen, b, hash) of the bucket table (no row: an
 * empty bucket), changed with the items in the same transaction: a change
 * of an item changes its bucket's hash in memory (slcli_bk_item) and marks
 * it, and the commit writes the marked buckets only.  They follow the
 * stored item hashes, as the running hash does: what was applied, not
 * what a damaged row now holds (the open check finds those).  A
 * generation whose rows do not add up to its running hash (a replica made
 * before the table, or a damaged table) gets them from its items once.
 */

static slcli_buckets *
bk_find(slcl_client *c, int64_t gen)
{
	for (int i = 0; i < SLCLI_BK_SLOTS; i++)
		if (c->bk[i] != NULL && c->bk[i]->gen == gen)
			return c->bk[i];
	return NULL;
}

static void
bk_reset(slcli_buckets *k, int64_t gen)
{
	k->gen = gen;
	k->changed = 0;
	k->ndirty = 0;
	memset(k->dirty, 0, sizeof(k->dirty));
	for (int b = 0; b < SLC_BUCKETS; b++)
		slc_hash_init(&k->rh[b]);
}

/* Write the marked buckets of k (in the open transaction). */
static slcl_rc
bk_write(slcl_client *c, slcli_buckets *k)
{
	slc_hash	empty;
	uint8_t		h[SLC_HASH_LEN];
	slcl_rc		r = SLCL_OK;

	slc_hash_init(&empty);
	for (int b = 0; b < SLC_BUCKETS && k->ndirty > 0 && r == SLCL_OK; b++)
	{
		sqlite3_stmt *s;

		if (!k->dirty[b])
			continue;
		if (slc_hash_equal(&k->rh[b], &empty))
			s = c->st[ST_BK_DEL];
		else
		{
			s = c->st[ST_BK_PUT];
			slc_hash_serialize(&k->rh[b], h);
			sqlite3_bind_blob(s, 3, h, SLC_HASH_LEN, SQLITE_STATIC);
		}
		sqlite3_bind_int64(s, 1, k->gen);
		sqlite3_bind_int(s, 2, b);
		r = step_done(c, s, "could not save a range hash");
		k->dirty[b] = 0;
		k->ndirty--;
	}
	return r;
}

/* A slot for a generation not in memory: a free one, else the least
 * recently used (its marked buckets written first, in a transaction). */
static slcl_rc
bk_take(slcl_client *c, slcli_buckets **out)
{
	slcli_buckets *k = NULL;

	for (int i = 0; i < SLCLI_BK_SLOTS; i++)
	{
		if (c->bk[i] == NULL)
		{
			c->bk[i] = calloc(1, sizeof(slcli_buckets));
			if (c->bk[i] == NULL)
				return slcli_fail(c, SLCL_ERR_NOMEM, "out of memory");
			k = c->bk[i];
			break;
		}
		if (k == NULL || c->bk[i]->used < k->used)
			k = c->bk[i];
	}
	if (k->ndirty > 0 && c->in_txn)
	{
		slcl_rc		r = bk_write(c, k);

		if (r != SLCL_OK)
			return r;
	}
	bk_reset(k, -1);
	*out = k;
	return SLCL_OK;
}

/*
 * The range hashes of gen into rh: from its bucket rows (items 0; *ok = 0
 * when a row does not parse), or from its items' stored item hashes
 * (items 1).  -1 on an error (c->err).
 */
static int
bk_scan(slcl_client *c, int64_t gen, int items, slc_hash *rh, int *ok)
{
	sqlite3_stmt *s = slcli_store_prepare(c, items ? "SELECT ns, key, hlo, hhi, length(val) FROM item WHERE gen = ?1"
										  : "SELECT b, hash FROM bucket WHERE gen = ?1");
	int			rc;

	*ok = 1;
	for (int b = 0; b < SLC_BUCKETS; b++)
		slc_hash_init(&rh[b]);
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, gen);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
	{
		int64_t		b = sqlite3_column_int64(s, 0);
		size_t		kl = (size_t) sqlite3_column_bytes(s, 1);

		if (items)
			slc_hash_add_item(&rh[slc_bucket((uint8_t) b, blob_ptr(sqlite3_column_blob(s, 1)), kl)],
							  (uint64_t) sqlite3_column_int64(s, 2), (uint64_t) sqlite3_column_int64(s, 3),
							  (uint64_t) kl + (uint64_t) sqlite3_column_int64(s, 4));
		else if (b < 0 || b >= SLC_BUCKETS ||
				 slc_hash_parse(sqlite3_column_blob(s, 1), kl, &rh[b]) != SLC_OK)
			*ok = 0;
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
	{
		slcli_db_fail(c, items ? "could not read the items" : "could not read the range hashes");
		return -1;
	}
	return 0;
}

/* Make k's hashes rh, marking the buckets that change. */
static void
bk_assign(slcli_buckets *k, const slc_hash *rh)
{
	for (int b = 0; b < SLC_BUCKETS; b++)
		if (!slc_hash_equal(&k->rh[b], &rh[b]))
			slcli_bk_set(k, b, &rh[b]);
}

/*
 * The kept range hashes of generation gen (*out), whose running hash
 * (before the open transaction's changes to it) is *total.
 */
slcl_rc
slcli_bk_get(slcl_client *c, int64_t gen, const slc_hash *total, slcli_buckets **out)
{
	slcli_buckets *k = bk_find(c, gen);
	slc_hash	sum;
	slc_hash   *rh;
	int			ok;

	*out = NULL;
	if (k == NULL)
	{
		slcl_rc		r = bk_take(c, &k);

		if (r != SLCL_OK)
			return r;
		if (bk_scan(c, gen, 0, k->rh, &ok) != 0)
			return SLCL_ERR_IO;
		slc_hash_init(&sum);
		for (int b = 0; b < SLC_BUCKETS; b++)
			slc_hash_combine(&sum, &k->rh[b]);
		if (!ok || !slc_hash_equal(&sum, total))
		{
			/* not there (an older replica) or not right: from the items, once */
			rh = malloc(sizeof(slc_hash) * SLC_BUCKETS);
			if (rh == NULL)
				return slcli_fail(c, SLCL_ERR_NOMEM, "out of memory");
			if (bk_scan(c, gen, 1, rh, &ok) != 0)
			{
				free(rh);
				return SLCL_ERR_IO;
			}
			bk_assign(k, rh);
			free(rh);
		}
		k->gen = gen;
	}
	k->used = ++c->bk_clock;
	*out = k;
	return SLCL_OK;
}

/* Bucket b changed: written at the next commit. */
static void
bk_mark(slcli_buckets *k, int b)
{
	k->changed = 1;
	if (!k->dirty[b])
	{
		k->dirty[b] = 1;
		k->ndirty++;
	}
}

/* Add (sign > 0) or remove an item's hash in its bucket. */
void
slcli_bk_item(slcli_buckets *k, uint8_t ns, const uint8_t *key, size_t klen, int sign,
			  uint64_t lo, uint64_t hi, uint64_t item_bytes)
{
	uint32_t	b = slc_bucket(ns, blob_ptr(key), klen);

	if (sign > 0)
		slc_hash_add_item(&k->rh[b], lo, hi, item_bytes);
	else
		slc_hash_remove_item(&k->rh[b], lo, hi, item_bytes);
	bk_mark(k, (int) b);
}

/* Set a bucket's hash. */
void
slcli_bk_set(slcli_buckets *k, int b, const slc_hash *h)
{
	k->rh[b] = *h;
	bk_mark(k, b);
}

/*
 * The open check found gen's rows sound and computed rh from them: keep
 * those (an older replica gets its table; a damaged table is mended).
 */
slcl_rc
slcli_bk_adopt(slcl_client *c, int64_t gen, const slc_hash *rh)
{
	slcli_buckets *k = bk_find(c, gen);
	int			ok;
	slcl_rc		r;

	if (k == NULL)
	{
		r = bk_take(c, &k);
		if (r != SLCL_OK)
			return r;
		if (bk_scan(c, gen, 0, k->rh, &ok) != 0)
			return SLCL_ERR_IO;
		k->gen = gen;
		k->used = ++c->bk_clock;
	}
	bk_assign(k, rh);
	if (k->ndirty == 0 || c->in_txn)
		return SLCL_OK;
	r = slcli_store_begin(c);
	return r == SLCL_OK ? slcli_store_commit(c) : r;
}

/* Write every slot's marked buckets (in the transaction being committed). */
static slcl_rc
bk_flush(slcl_client *c)
{
	for (int i = 0; i < SLCLI_BK_SLOTS; i++)
		if (c->bk[i] != NULL && c->bk[i]->gen >= 0 && c->bk[i]->ndirty > 0)
		{
			slcl_rc		r = bk_write(c, c->bk[i]);

			if (r != SLCL_OK)
				return r;
		}
	return SLCL_OK;
}

/*
 * A rollback: slots changed since the last commit (written by the failed
 * commit or not) no longer hold what is stored; a commit: they do.
 */
static void
bk_txn_end(slcl_client *c, int committed)
{
	for (int i = 0; i < SLCLI_BK_SLOTS; i++)
		if (c->bk[i] != NULL && c->bk[i]->changed)
		{
			if (committed)
				c->bk[i]->changed = 0;
			else
				bk_reset(c->bk[i], -1);
		}
}

void
slcli_bk_free(slcl_client *c)
{
	for (int i = 0; i < SLCLI_BK_SLOTS; i++)
	{
		free(c->bk[i]);
		c->bk[i] = NULL;
	}
	slcli_check_forget(c);
}

/* Are the range hashes of the open check (check_rh) those of the live rows? */
int
slcli_check_valid(const slcl_client *c)
{
	return c->check_rh != NULL && c->committed.have && c->committed.gen == c->check_gen &&
		slc_hash_equal(&c->committed.hash, &c->check_hash);
}

void
slcli_check_forget(slcl_client *c)
{
	free(c->check_rh);
	c->check_rh = NULL;
	c->check_gen = -1;
}

/* Keep rh (malloc'ed, taken over) as the range hashes of the live rows' values. */
void
slcli_check_keep(slcl_client *c, slc_hash *rh)
{
	slcli_check_forget(c);
	c->check_rh = rh;
	c->check_gen = c->committed.gen;
	c->check_hash = c->committed.hash;
}

slcl_rc
slcli_store_begin(slcl_client *c)
{
	slcl_rc		r;

	if (c->in_txn)
		return SLCL_OK;
	r = slcli_store_exec(c, "BEGIN IMMEDIATE");
	if (r != SLCL_OK)
		return r;
	c->in_txn = 1;
	slcli_changes_reset(c);
	return SLCL_OK;
}

void
slcli_store_rollback(slcl_client *c)
{
	if (!c->in_txn)
		return;
	(void) sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	c->in_txn = 0;
	bk_txn_end(c, 0);
	c->cur = c->committed;
	c->installed = 0;
	slcli_changes_reset(c);
}

static slcl_rc
save_meta(slcl_client *c)
{
	sqlite3_stmt *s = c->st[ST_META_SAVE];
	const slcli_pos *p = &c->cur;
	uint8_t		h[SLC_HASH_LEN];

	if (p->have)
	{
		slc_hash_serialize(&p->hash, h);
		sqlite3_bind_int64(s, 1, p->gen);
		sqlite3_bind_text(s, 2, p->log_id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 3, p->lsn);
		if (p->chain_known)
			sqlite3_bind_blob(s, 4, p->chain, SLCL_CHAIN_LEN, SQLITE_STATIC);
		else
			sqlite3_bind_null(s, 4);	/* not known: reached by version 1 */
		sqlite3_bind_blob(s, 5, h, SLC_HASH_LEN, SQLITE_STATIC);
	}
	/* else: all NULL (cleared bindings) */
	sqlite3_bind_int64(s, 6, pos_chk(c, p, c->next_gen));
	sqlite3_bind_int64(s, 7, c->next_gen);
	return step_done(c, s, "could not save the position");
}

static slcl_rc
save_stats(slcl_client *c)
{
	sqlite3_stmt *s = c->st[ST_STATS_SAVE];
	slcl_rc		r;

	for (int i = 0; i < NSTATS; i++)
		sqlite3_bind_int64(s, i + 1, *stat_slot(&c->stats, i));
	r = step_done(c, s, "could not save the counters");
	if (r != SLCL_OK)
		return r;
	s = c->st[ST_PSTATS_SAVE];
	for (int i = 0; i < NPSTATS; i++)
		sqlite3_bind_int64(s, i + 1, *stat_slot(&c->stats, NSTATS + i));
	return step_done(c, s, "could not save the counters");
}

/*
 * Commit the open transaction with the working position (and the
 * counters); then deliver its change events.  On failure everything is
 * rolled back to the last commit.
 */
slcl_rc
slcli_store_commit(slcl_client *c)
{
	slcl_rc		r;

	if (!c->in_txn)
		return SLCL_OK;
	r = save_meta(c);
	if (r == SLCL_OK)
		r = bk_flush(c);
	if (r == SLCL_OK)
		r = save_stats(c);
	if (r == SLCL_OK)
		r = slcli_write_confirm(c);
	if (r == SLCL_OK && sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		r = slcli_db_fail(c, "could not commit");
	if (r != SLCL_OK)
	{
		slcli_store_rollback(c);
		return r;
	}
	c->in_txn = 0;
	bk_txn_end(c, 1);
	{
		slcli_pos	before = c->committed;
		int			whole = c->installed;

		c->committed = c->cur;
		c->installed = 0;
		slcli_write_committed(c);
		/* the page file follows; a failure there leaves it at its position */
		r = slcli_pagefile_commit(c, &before, whole);
		if (r != SLCL_OK)
			slcli_emit_simple(c, SLCL_EV_WARNING, "%s", c->err);
	}
	slcli_changes_emit(c);
	return SLCL_OK;
}

/* Bind an item's columns to an insert or upsert statement. */
static void
bind_item(sqlite3_stmt *s, int64_t gen, uint8_t ns, const uint8_t *key, size_t klen,
		  uint64_t lo, uint64_t hi, const uint8_t *val, size_t vlen)
{
	sqlite3_bind_int64(s, 1, gen);
	sqlite3_bind_int(s, 2, ns);
	sqlite3_bind_blob(s, 3, blob_ptr(key), (int) klen, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, (int64_t) lo);
	sqlite3_bind_int64(s, 5, (int64_t) hi);
	sqlite3_bind_blob(s, 6, blob_ptr(val), (int) vlen, SQLITE_STATIC);
}

/* Commit the open transaction if rc is SLCL_OK, else roll it back. */
slcl_rc
slcli_store_finish(slcl_client *c, slcl_rc rc)
{
	if (rc == SLCL_OK)
		return slcli_store_commit(c);
	slcli_store_rollback(c);
	return rc;
}

/*
 * Set (val != NULL) or delete one item of generation gen, keeping *h the
 * hash of that generation.  With track, the key goes to the change feed.
 */
slcl_rc
slcli_store_put(slcl_client *c, int64_t gen, slc_hash *h, uint8_t ns,
				const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen, int track)
{
	sqlite3_stmt *s = c->st[ST_ITEM_OLD];
	int			rc;
	int			had = 0;
	uint64_t	olo = 0,
				ohi = 0,
				lo,
				hi;
	int64_t		ovl = 0;
	slcl_rc		r;
	slcli_buckets *k;

	r = slcli_bk_get(c, gen, h, &k);
	if (r != SLCL_OK)
		return r;
	sqlite3_bind_int64(s, 1, gen);
	sqlite3_bind_int(s, 2, ns);
	sqlite3_bind_blob(s, 3, blob_ptr(key), (int) klen, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
	{
		had = 1;
		olo = (uint64_t) sqlite3_column_int64(s, 0);
		ohi = (uint64_t) sqlite3_column_int64(s, 1);
		ovl = sqlite3_column_int64(s, 2);
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return slcli_db_fail(c, "could not read an item");
	if (val != NULL)
	{
		slc_item_hash(ns, blob_ptr(key), klen, blob_ptr(val), vlen, &lo, &hi);
		if (had && lo == olo && hi == ohi && (size_t) ovl == vlen)
			return SLCL_OK;		/* rewritten with its current value */
		s = c->st[ST_ITEM_PUT];
		bind_item(s, gen, ns, key, klen, lo, hi, val, vlen);
		r = step_done(c, s, "could not write an item");
		if (r != SLCL_OK)
			return r;
		if (had)
		{
			slc_hash_remove_item(h, olo, ohi, (uint64_t) klen + (uint64_t) ovl);
			slcli_bk_item(k, ns, key, klen, -1, olo, ohi, (uint64_t) klen + (uint64_t) ovl);
		}
		slc_hash_add_item(h, lo, hi, (uint64_t) klen + (uint64_t) vlen);
		slcli_bk_item(k, ns, key, klen, 1, lo, hi, (uint64_t) klen + (uint64_t) vlen);
	}
	else
	{
		if (!had)
			return SLCL_OK;		/* deleting an absent key changes nothing */
		s = c->st[ST_ITEM_DEL];
		sqlite3_bind_int64(s, 1, gen);
		sqlite3_bind_int(s, 2, ns);
		sqlite3_bind_blob(s, 3, blob_ptr(key), (int) klen, SQLITE_STATIC);
		r = step_done(c, s, "could not delete an item");
		if (r != SLCL_OK)
			return r;
		slc_hash_remove_item(h, olo, ohi, (uint64_t) klen + (uint64_t) ovl);
		slcli_bk_item(k, ns, key, klen, -1, olo, ohi, (uint64_t) klen + (uint64_t) ovl);
	}
	if (track && slcli_changes_key(c, ns, key, klen, val == NULL) != 0)
		return slcli_fail(c, SLCL_ERR_NOMEM, "out of memory");
	return SLCL_OK;
}

/*
 * Add an item that generation gen must not have yet (a snapshot row): no
 * lookup first; a second row for a key fails (SLCL_ERR_PROTOCOL).
 */
slcl_rc
slcli_store_insert(slcl_client *c, int64_t gen, slc_hash *h, uint8_t ns,
				   const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
	sqlite3_stmt *s = c->st[ST_ITEM_INS];
	uint64_t	lo,
				hi;
	int			rc;
	slcli_buckets *k;
	slcl_rc		r = slcli_bk_get(c, gen, h, &k);

	if (r != SLCL_OK)
		return r;
	slc_item_hash(ns, blob_ptr(key), klen, blob_ptr(val), vlen, &lo, &hi);
	bind_item(s, gen, ns, key, klen, lo, hi, val, vlen);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (rc == SQLITE_CONSTRAINT_PRIMARYKEY)
		return slcli_fail(c, SLCL_ERR_PROTOCOL, "the snapshot has a key twice (ns %d, %zu bytes)", ns, klen);
	if (rc != SQLITE_DONE)
		return slcli_db_fail(c, "could not add an item");
	slc_hash_add_item(h, lo, hi, (uint64_t) klen + (uint64_t) vlen);
	slcli_bk_item(k, ns, key, klen, 1, lo, hi, (uint64_t) klen + (uint64_t) vlen);
	return SLCL_OK;
}


/*
 * A delta checked whole, as the server checks an append: its structure
 * (slc_delta_validate) and no key twice (slc_delta_find_duplicate, which
 * slc_delta_validate leaves out).  *n gets its change count; *off, if not
 * NULL, the offset of a structural error.
 */
slc_status
slcli_delta_check(const uint8_t *delta, size_t len, uint32_t *n, size_t *off)
{
	slc_status	st = slc_delta_validate(delta, len, UINT32_MAX, n, off);

	if (st == SLC_OK && *n >= 2)
	{
		slc_change *all = calloc(*n, sizeof(slc_change));
		uint32_t   *scratch = malloc(sizeof(uint32_t) * (size_t) *n);
		slc_delta_reader rd;
		int			more;

		if (all == NULL || scratch == NULL)
			st = SLC_ERR_NOMEM;
		else
		{
			(void) slc_delta_reader_init(&rd, delta, len, UINT32_MAX);
			for (uint32_t i = 0; i < *n && st == SLC_OK; i++)
				st = slc_delta_next(&rd, &all[i], &more, NULL);
			if (st == SLC_OK)
				st = slc_delta_find_duplicate(all, *n, scratch, NULL);
		}
		free(all);
		free(scratch);
	}
	return st;
}

/*
 * Apply one log entry to generation gen (whose hash is *h), in the open
 * transaction: every change of its delta, then the writer's watermark
 * (PROTOCOL.md section 4).  The delta is decoded and checked (structure,
 * no key twice) by the shared core before anything is written.  Changes
 * of the live generation go to the change feed; group_end closes the
 * group at e->lsn.  Does not move the position (slcli_store_set_position
 * does).  On failure the caller rolls the transaction back.
 */
slcl_rc
slcli_store_apply_entry(slcl_client *c, int64_t gen, slc_hash *h, const slcli_entry *e,
						int group_end)
{
	slc_status	st;
	uint32_t	n;
	slc_delta_reader rd;
	slc_change	ch;
	int			more;
	int			track = ((c->opt.changes && c->opt.on_event) || c->opt.page_file) &&
		c->cur.have && gen == c->cur.gen;
	slcl_rc		r;

	if (!c->in_txn)
		return slcli_fail(c, SLCL_ERR_STATE, "no open transaction to apply entry %lld in", (long long) e->lsn);
	st = slcli_delta_check(e->delta, e->dlen, &n, NULL);
	if (st == SLC_ERR_NOMEM)
		return slcli_fail(c, SLCL_ERR_NOMEM, "out of memory");
	if (st != SLC_OK)
		return slcli_fail(c, SLCL_ERR_PROTOCOL, "entry %lld does not decode: %s",
						  (long long) e->lsn, slc_status_message(st));
	(void) slc_delta_reader_init(&rd, e->delta, e->dlen, UINT32_MAX);
	for (uint32_t i = 0; i < n; i++)
	{
		st = slc_delta_next(&rd, &ch, &more, NULL);
		if (st != SLC_OK || !more)
			return slcli_fail(c, SLCL_ERR_PROTOCOL, "entry %lld does not decode", (long long) e->lsn);
		r = slcli_store_put(c, gen, h, SLC_NS_DATA, ch.key, ch.klen,
							ch.is_delete ? NULL : blob_ptr(ch.val), ch.vlen, track);
		if (r != SLCL_OK)
			return r;
	}
	if (e->cid != NULL)
	{
		uint8_t		wm[SLC_WATERMARK_LEN];

		if (e->cidlen == 0 || e->cidlen > 200)
			return slcli_fail(c, SLCL_ERR_PROTOCOL, "entry %lld has a client id of %zu bytes",
							  (long long) e->lsn, e->cidlen);
		slc_watermark_encode(e->seq, e->lsn, wm);
		/* a retire entry (PROTOCOL.md section 4) removes the watermark */
		r = slcli_store_put(c, gen, h, SLC_NS_CLIENT, (const uint8_t *) e->cid, e->cidlen,
							e->seq == SLC_RETIRE_SEQ ? NULL : wm, SLC_WATERMARK_LEN, track);
		if (r != SLCL_OK)
			return r;
	}
	if (track && group_end && slcli_changes_group_end(c, e->lsn) != 0)
		return slcli_fail(c, SLCL_ERR_NOMEM, "out of memory");
	return SLCL_OK;
}

/* Move the working position (committed with the transaction). */
slcl_rc
slcli_store_set_position(slcl_client *c, const char *log_id, int64_t lsn,
						 const uint8_t chain[SLCL_CHAIN_LEN])
{
	size_t		ll = strlen(log_id);

	if (!c->in_txn)
		return slcli_fail(c, SLCL_ERR_STATE, "no open transaction to move the position in");
	if (!c->cur.have)
		return slcli_fail(c, SLCL_ERR_STATE, "no local state to move");
	if (ll == 0 || ll > SLCL_LOG_ID_MAX || lsn < 0)
		return slcli_fail(c, SLCL_ERR_PROTOCOL, "invalid position (log id of %zu bytes, lsn %lld)",
						  ll, (long long) lsn);
	memmove(c->cur.log_id, log_id, ll + 1);
	c->cur.lsn = lsn;
	if (chain)
		memcpy(c->cur.chain, chain, SLCL_CHAIN_LEN);
	else
		memset(c->cur.chain, 0, SLCL_CHAIN_LEN);
	c->cur.chain_known = chain != NULL;
	return SLCL_OK;
}

/*
 * Apply a group (a writer transaction's entries, in LSN order) and move
 * to the position it reaches, in ONE local transaction: a crash leaves
 * the replica before the group or after it.  Nothing is committed if any
 * entry fails.
 */
slcl_rc
slcli_store_apply_group(slcl_client *c, const slcli_entry *e, size_t n, const char *log_id,
						int64_t lsn, const uint8_t chain[SLCL_CHAIN_LEN])
{
	slcl_rc		r = SLCL_OK;

	if (c->in_txn)
		return slcli_fail(c, SLCL_ERR_STATE, "a group must start its own transaction");
	r = slcli_store_begin(c);
	for (size_t i = 0; r == SLCL_OK && i < n; i++)
	{
		r = slcli_store_apply_entry(c, c->cur.gen, &c->cur.hash, &e[i], i + 1 == n);
		if (r == SLCL_OK)
			c->stats.entries_applied++;
	}
	if (r == SLCL_OK)
		r = slcli_store_set_position(c, log_id, lsn, chain);
	return slcli_store_finish(c, r);
}

/* A new generation number (taken in the open transaction). */
int64_t
slcli_store_new_gen(slcl_client *c)
{
	if (c->next_gen <= c->cur.gen)
		c->next_gen = c->cur.gen + 1;
	if (c->downloading && c->next_gen <= c->dl_gen)
		c->next_gen = c->dl_gen + 1;
	if (c->job_kind && c->next_gen <= c->job_sgen)
		c->next_gen = c->job_sgen + 1;
	return c->next_gen++;
}

/*
 * Make generation gen, at the given position and hash, the live state (in
 * the open transaction).  The generation it replaces becomes garbage for
 * slcli_store_retire.
 */
slcl_rc
slcli_store_install(slcl_client *c, int64_t gen, const char *log_id, int64_t lsn,
					const uint8_t chain[SLCL_CHAIN_LEN], const slc_hash *h)
{
	if (!c->in_txn)
		return slcli_fail(c, SLCL_ERR_STATE, "no open transaction to install a state in");
	c->cur.have = 1;
	c->cur.gen = gen;
	c->cur.hash = *h;
	c->installed = 1;
	return slcli_store_set_position(c, log_id, lsn, chain);
}

/* Drop the live state (a damaged one), in its own transaction. */
slcl_rc
slcli_store_drop_state(slcl_client *c)
{
	slcl_rc		r = slcli_store_begin(c);

	if (r != SLCL_OK)
		return r;
	memset(&c->cur, 0, sizeof(c->cur));
	slc_hash_init(&c->cur.hash);
	return slcli_store_finish(c, SLCL_OK);
}

/*
 * Delete one batch of rows of a generation that is neither live nor being
 * downloaded, in its own transaction.  *left: whether garbage remains.
 */
slcl_rc
slcli_store_retire(slcl_client *c, int *left)
{
	sqlite3_stmt *s;
	int64_t		after = INT64_MIN;
	int64_t		gen = 0;
	int			found = 0;
	int			rc;
	int			n = 0;
	slcl_rc		r;

	*left = 0;
	s = slcli_store_prepare(c, "SELECT gen FROM item WHERE gen > ?1 ORDER BY gen LIMIT 1");
	if (s == NULL)
		return SLCL_ERR_IO;
	for (;;)
	{
		sqlite3_bind_int64(s, 1, after);
		rc = sqlite3_step(s);
		if (rc != SQLITE_ROW)
			break;
		gen = sqlite3_column_int64(s, 0);
		sqlite3_reset(s);
		if ((c->cur.have && gen == c->cur.gen) || (c->downloading && gen == c->dl_gen) ||
			(c->job_kind && gen == c->job_sgen))
		{
			after = gen;
			continue;
		}
		found = 1;
		break;
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return slcli_db_fail(c, "could not look for old generations");
	if (!found)
		return SLCL_OK;
	r = slcli_store_begin(c);
	if (r != SLCL_OK)
		return r;
	/* a batch of its items; its range hashes go with the first one */
	for (int i = 0; i < 2; i++)
	{
		s = slcli_store_prepare(c, i == 0 ? "DELETE FROM item WHERE gen = ?1 AND (ns, key) IN "
								"(SELECT ns, key FROM item WHERE gen = ?1 ORDER BY ns, key LIMIT ?2)"
								: "DELETE FROM bucket WHERE gen = ?1");
		if (s == NULL)
		{
			slcli_store_rollback(c);
			return SLCL_ERR_IO;
		}
		sqlite3_bind_int64(s, 1, gen);
		if (i == 0)
			sqlite3_bind_int(s, 2, SLCLI_RETIRE_BATCH);
		rc = sqlite3_step(s);
		sqlite3_finalize(s);
		if (rc != SQLITE_DONE)
		{
			r = slcli_db_fail(c, "could not delete an old generation");
			slcli_store_rollback(c);
			return r;
		}
		if (i == 0)
			n = sqlite3_changes(c->db);
	}
	if (bk_find(c, gen) != NULL)
		bk_reset(bk_find(c, gen), -1);
	if (n == 0)
	{
		/* rows that can be found but not deleted: a damaged index */
		slcli_store_rollback(c);
		c->db_corrupt = 1;
		return slcli_fail(c, SLCL_ERR_IO, "replica database \"%s/%s\": generation %lld cannot be deleted",
						  c->dir, SLCLI_DB_NAME, (long long) gen);
	}
	c->stats.retired_rows += n;
	r = slcli_store_commit(c);
	if (r != SLCL_OK)
		return r;
	*left = 1;
	return SLCL_OK;
}

/* Checksum of the download row. */
static int64_t
dl_chk(const slcl_client *c)
{
	buf			b = {0};
	uint8_t		h[SLC_HASH_LEN];
	uint64_t	v = 0;

	slc_hash_serialize(&c->dl_sum, h);
	if (!(buf_u64(&b, c->dl_id) || buf_u64(&b, (uint64_t) c->dl_gen) ||
		  buf_lp(&b, c->dl_log, strlen(c->dl_log)) || buf_u64(&b, (uint64_t) c->dl_base) ||
		  buf_put(&b, c->dl_hash, SLC_HASH_LEN) || buf_u8(&b, (uint8_t) c->dl_reason) ||
		  buf_u8(&b, (uint8_t) c->dl_have_after) ||
		  (c->dl_have_after && buf_lp(&b, c->dl_after.p, c->dl_after.len)) ||
		  buf_u64(&b, (uint64_t) c->dl_rows) || buf_u64(&b, (uint64_t) c->dl_bytes) ||
		  buf_put(&b, h, SLC_HASH_LEN)))
		v = XXH3_64bits(b.p, b.len);
	free(b.p);
	return (int64_t) v;
}

/* Write the download's target and progress (in the open transaction). */
slcl_rc
slcli_store_save_download(slcl_client *c)
{
	sqlite3_stmt *s = c->st[ST_DL_SAVE];
	uint8_t		h[SLC_HASH_LEN];

	slc_hash_serialize(&c->dl_sum, h);
	sqlite3_bind_int64(s, 1, (int64_t) c->dl_id);
	sqlite3_bind_int64(s, 2, c->dl_gen);
	sqlite3_bind_text(s, 3, c->dl_log, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, c->dl_base);
	sqlite3_bind_blob(s, 5, c->dl_hash, SLC_HASH_LEN, SQLITE_STATIC);
	sqlite3_bind_int(s, 6, (int) c->dl_reason);
	if (c->dl_have_after)
		sqlite3_bind_blob(s, 7, blob_ptr(c->dl_after.p), (int) c->dl_after.len, SQLITE_STATIC);
	sqlite3_bind_int64(s, 8, c->dl_rows);
	sqlite3_bind_int64(s, 9, c->dl_bytes);
	sqlite3_bind_blob(s, 10, h, SLC_HASH_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(s, 11, dl_chk(c));
	return step_done(c, s, "could not save the download's progress");
}

slcl_rc
slcli_store_clear_download(slcl_client *c)
{
	return slcli_store_exec(c, "DELETE FROM download");
}

/*
 * Load the download row into c->dl_*.  1: a download in progress; 0:
 * none; -1: a damaged row (the caller drops it); -2: an error (c->err).
 */
int
slcli_store_load_download(slcl_client *c)
{
	sqlite3_stmt *s;
	int			rc;
	int			result = 1;

	s = slcli_store_prepare(c, "SELECT dl_id, gen, log_id, base, target, reason, after, rows, bytes, "
							"sum, chk FROM download WHERE id = 1");
	if (s == NULL)
		return -2;
	rc = sqlite3_step(s);
	if (rc == SQLITE_DONE)
	{
		sqlite3_finalize(s);
		return 0;
	}
	if (rc != SQLITE_ROW)
	{
		slcli_db_fail(c, "could not read the download's progress");
		sqlite3_finalize(s);
		return -2;
	}
	{
		const char *l = (const char *) sqlite3_column_text(s, 2);
		size_t		ll = l ? strlen(l) : 0;

		c->dl_id = (uint64_t) sqlite3_column_int64(s, 0);
		c->dl_gen = sqlite3_column_int64(s, 1);
		c->dl_base = sqlite3_column_int64(s, 3);
		c->dl_reason = (slcl_reason) sqlite3_column_int(s, 5);
		c->dl_rows = sqlite3_column_int64(s, 7);
		c->dl_bytes = sqlite3_column_int64(s, 8);
		c->dl_after.len = 0;
		c->dl_have_after = sqlite3_column_type(s, 6) != SQLITE_NULL;
		if (ll == 0 || ll > SLCL_LOG_ID_MAX || sqlite3_column_bytes(s, 4) != SLC_HASH_LEN ||
			slc_hash_parse(sqlite3_column_blob(s, 9), (size_t) sqlite3_column_bytes(s, 9),
						   &c->dl_sum) != SLC_OK)
			result = -1;
		else
		{
			memcpy(c->dl_log, l, ll + 1);
			memcpy(c->dl_hash, sqlite3_column_blob(s, 4), SLC_HASH_LEN);
			if (c->dl_have_after &&
				buf_put(&c->dl_after, blob_ptr(sqlite3_column_blob(s, 6)),
						(size_t) sqlite3_column_bytes(s, 6)) != 0)
			{
				slcli_fail(c, SLCL_ERR_NOMEM, "out of memory");
				result = -2;
			}
			else if (sqlite3_column_int64(s, 10) != dl_chk(c))
				result = -1;
		}
	}
	sqlite3_finalize(s);
	return result;
}
