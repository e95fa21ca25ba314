/*
 * client_write.c
 *
 * The write path of the reference client (PROTOCOL.md sections 4 and 9,
 * PROTOCOL-v2.md sections B and C): local mutations in a durable pending
 * queue (tables writer, pending and failed of queue.db, its own SQLite
 * file beside replica.db, client_int.h), client_seq numbering, sending the
 * queue with synclog.append_delta in client_seq order (a large mutation
 * split by keys into parts appended in one server transaction; several
 * queued mutations appended in one server transaction, one at a time
 * again if the server refuses one of them), confirmation by the client's
 * own watermark in the state, refusals, SL007 when the watermark was
 * retired under pending mutations, and moving a queue of replica.db (an
 * earlier version's place) into queue.db.
 *
 * Owns: slcl_submit, slcl_submit_seq, slcl_submit_batch, slcl_enqueue, slcl_flush,
 * slcl_pending, slcl_queue_list, queue.db and the SQL of its tables, how
 * a mutation is split into parts, how queued mutations are batched, and
 * which SQLSTATEs are retried.
 * Must never: use a client_seq twice or below one already used or seen
 * for the client id, send a mutation before it is committed to the queue,
 * send mutations out of client_seq order or two batches at a time, send again
 * after an unknown outcome without first reading the log to its head,
 * split a mutation differently on a retry, drop a pending mutation before
 * a committed state holds it (or before why it failed is recorded), let a
 * refused mutation take the others of its batch with it, remove queue.db,
 * or send again a mutation whose fate the retirement of the client's
 * watermark made unknown.
 */
#define _GNU_SOURCE
#include "client_int.h"

#include <xxhash.h>

/* the server's defaults (synclog.max_delta_size, synclog.max_delta_changes) */
#define DEFAULT_PART_BYTES		(16 * 1024 * 1024)
#define DEFAULT_PART_CHANGES	100000
/* a batch of queued mutations sent in one server transaction: at most */
#define BATCH_ROWS				256
#define BATCH_BYTES				(4 * 1024 * 1024)

static const char *const queue_schema =
"CREATE TABLE IF NOT EXISTS writer ("
"  id INTEGER PRIMARY KEY CHECK (id = 1),"
"  next_seq INTEGER NOT NULL,"
"  client_id TEXT);"
"INSERT OR IGNORE INTO writer (id, next_seq) VALUES (1, 1);"
SLCLI_QUEUE_TABLES_SQL;

/* The write path's statements, prepared once per handle (c->wst). */
enum
{
	WS_OWN_WM,					/* on replica.db; the others on queue.db */
	WS_COUNT,
	WS_UPTO,
	WS_CONFIRM,
	WS_RETIRE,
	WS_DROP_ALL,
	WS_LEAST,
	WS_INSERT,
	WS_NEXT,
	WS_LOAD,
	WS_FAIL,
	WS_DELETE,
	WS__COUNT
};

static const char *const ws_sql[WS__COUNT] = {
	[WS_OWN_WM] = "SELECT val FROM item WHERE gen = ?1 AND ns = 2 AND key = ?2",
	[WS_COUNT] = "SELECT count(*) FROM pending WHERE seq > ?1",
	[WS_UPTO] = "SELECT count(*) FROM pending WHERE seq > ?1 AND seq <= ?2",
	[WS_CONFIRM] = "DELETE FROM pending WHERE seq <= ?1",
	[WS_RETIRE] = "INSERT OR REPLACE INTO failed (seq, last_seq, sqlstate, message, at, delta) "
	"SELECT seq, last_seq, 'SL007', 'client retired: the client''s watermark was retired while this "
	"mutation was pending; whether it was applied is unknown', ?1, delta FROM pending WHERE seq > ?2",
	[WS_DROP_ALL] = "DELETE FROM pending",
	/* next_seq, but never at or below a seq the tables hold (a damaged row) */
	[WS_LEAST] = "SELECT max(next_seq, coalesce((SELECT last_seq + 1 FROM pending ORDER BY seq DESC LIMIT 1), 0), "
	"coalesce((SELECT last_seq + 1 FROM failed ORDER BY seq DESC LIMIT 1), 0)) FROM writer WHERE id = 1",
	[WS_INSERT] = "INSERT INTO pending (seq, last_seq, part_bytes, part_changes, queued, delta, chk) "
	"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	/* when rows leave the queue: keep their seqs used (run before they go) */
	[WS_NEXT] = "UPDATE writer SET next_seq = max(next_seq, coalesce((SELECT last_seq + 1 FROM pending "
	"ORDER BY seq DESC LIMIT 1), 0)) WHERE id = 1",
	[WS_LOAD] = "SELECT seq, last_seq, part_bytes, part_changes, delta, chk FROM pending "
	"WHERE seq > ?1 ORDER BY seq LIMIT 1",
	[WS_FAIL] = "INSERT OR REPLACE INTO failed (seq, last_seq, sqlstate, message, at, delta) "
	"VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[WS_DELETE] = "DELETE FROM pending WHERE seq = ?1",
};

_Static_assert(WS__COUNT <= SLCLI_WST_MAX, "SLCLI_WST_MAX is too small");

/* An error of queue.db (never marks replica.db damaged). */
static slcl_rc
q_fail(slcl_client *c, const char *what)
{
	int			code = c->qdb ? sqlite3_errcode(c->qdb) & 0xff : SQLITE_CANTOPEN;

	if (code == SQLITE_NOMEM)
		return slcli_fail(c, SLCL_ERR_NOMEM, "out of memory in the queue database (%s)", what);
	return slcli_fail(c, SLCL_ERR_IO, "queue database \"%s/%s\": %s: %s%s", c->dir, SLCLI_QUEUE_NAME,
					  what, c->qdb ? sqlite3_errmsg(c->qdb) : "not open",
					  code == SQLITE_CORRUPT || code == SQLITE_NOTADB ?
					  " (the client never removes it: move it away to drop its pending mutations)" : "");
}

static slcl_rc
q_exec(slcl_client *c, const char *sql)
{
	if (sqlite3_exec(c->qdb, sql, NULL, NULL, NULL) != SQLITE_OK)
		return q_fail(c, sql);
	return SLCL_OK;
}

/* A cached statement (NULL and c->err on failure). */
static sqlite3_stmt *
ws(slcl_client *c, int which)
{
	if (c->wst[which] == NULL)
	{
		if (which == WS_OWN_WM)
			c->wst[which] = slcli_store_prepare(c, ws_sql[which]);
		else if (c->qdb == NULL)
			slcli_fail(c, SLCL_ERR_STATE, "the queue database is not open");
		else if (sqlite3_prepare_v2(c->qdb, ws_sql[which], -1, &c->wst[which], NULL) != SQLITE_OK)
		{
			q_fail(c, "could not prepare a statement");
			c->wst[which] = NULL;
		}
	}
	return c->wst[which];
}

/* Reset a cached statement after use. */
static void
ws_done(sqlite3_stmt *s)
{
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
}

/* Run a cached statement that returns no row; its changes in *changes. */
static slcl_rc
ws_run(slcl_client *c, int which, int64_t a1, int64_t a2, int *changes, const char *what)
{
	sqlite3_stmt *s = ws(c, which);
	int			rc;

	if (s == NULL)
		return SLCL_ERR_IO;
	if (sqlite3_bind_parameter_count(s) >= 1)
		sqlite3_bind_int64(s, 1, a1);
	if (sqlite3_bind_parameter_count(s) >= 2)
		sqlite3_bind_int64(s, 2, a2);
	rc = sqlite3_step(s);
	ws_done(s);
	if (rc != SQLITE_DONE)
		return q_fail(c, what);
	if (changes)
		*changes = sqlite3_changes(c->qdb);
	return SLCL_OK;
}

/* A count(*) of a cached statement with up to two arguments (-1: error). */
static int64_t
ws_count(slcl_client *c, int which, int64_t a1, int64_t a2)
{
	sqlite3_stmt *s = ws(c, which);
	int64_t		n = -1;

	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, a1);
	if (sqlite3_bind_parameter_count(s) >= 2)
		sqlite3_bind_int64(s, 2, a2);
	if (sqlite3_step(s) == SQLITE_ROW)
		n = sqlite3_column_int64(s, 0);
	else
		q_fail(c, "could not count the queue");
	ws_done(s);
	return n;
}

void
slcli_write_close(slcl_client *c)
{
	for (int i = 0; i < SLCLI_WST_MAX; i++)
	{
		sqlite3_finalize(c->wst[i]);
		c->wst[i] = NULL;
	}
	if (c->qdb != NULL)
		sqlite3_close(c->qdb);
	c->qdb = NULL;
}

/* One part of a mutation: changes [off, off + len) of its delta, n of them. */
typedef struct wpart
{
	size_t		off;
	size_t		len;
	uint32_t	n;
} wpart;

/* A pending row, loaded to be sent. */
typedef struct wrow
{
	int64_t		seq;
	int64_t		last_seq;
	int64_t		part_bytes;
	int64_t		part_changes;
	buf			delta;
	wpart	   *parts;			/* how it splits (as queued) */
	int			np;
	int			damaged;		/* fails its checksum or does not split as queued */
	int64_t		lsn;			/* the LSN of its last part, once sent */
} wrow;

static int64_t
row_chk(int64_t seq, int64_t last_seq, int64_t pb, int64_t pc, const uint8_t *d, size_t len)
{
	XXH3_state_t *st = XXH3_createState();
	uint8_t		h[32];
	uint64_t	v;

	if (st == NULL)
		return 0;
	put_u64(h, (uint64_t) seq);
	put_u64(h + 8, (uint64_t) last_seq);
	put_u64(h + 16, (uint64_t) pb);
	put_u64(h + 24, (uint64_t) pc);
	XXH3_64bits_reset(st);
	XXH3_64bits_update(st, h, sizeof(h));
	XXH3_64bits_update(st, d, len);
	v = XXH3_64bits_digest(st);
	XXH3_freeState(st);
	return (int64_t) v;
}

/*
 * Split a valid delta into parts of at most part_bytes encoded bytes and
 * part_changes changes, keeping the changes' order.  Returns the number
 * of parts (1 for a delta without changes); 0 if one change alone does
 * not fit (*big gets its encoded size); -1 out of memory.
 */
static int
split_delta(const uint8_t *d, size_t len, int64_t part_bytes, int64_t part_changes,
			wpart **out, size_t *big)
{
	slc_delta_reader rd;
	slc_change	ch;
	int			more;
	wpart	   *p = NULL;
	int			np = 0,
				cap = 0;

	*out = NULL;
	if (slc_delta_reader_init(&rd, d, len, UINT32_MAX) != SLC_OK)
		return 0;
	for (;;)
	{
		size_t		before = rd.pos;
		size_t		csz;

		if (slc_delta_next(&rd, &ch, &more, NULL) != SLC_OK || !more)
			break;
		csz = rd.pos - before;
		if ((int64_t) (5 + csz) > part_bytes)
		{
			*big = 5 + csz;
			free(p);
			return 0;
		}
		if (np == 0 || p[np - 1].n >= part_changes ||
			(int64_t) (5 + p[np - 1].len + csz) > part_bytes)
		{
			if (np == cap)
			{
				wpart	   *q = realloc(p, sizeof(wpart) * (size_t) (cap ? cap * 2 : 4));

				if (q == NULL)
				{
					free(p);
					return -1;
				}
				p = q;
				cap = cap ? cap * 2 : 4;
			}
			p[np].off = before;
			p[np].len = 0;
			p[np].n = 0;
			np++;
		}
		p[np - 1].len += csz;
		p[np - 1].n++;
	}
	if (np == 0)
	{
		p = malloc(sizeof(wpart));
		if (p == NULL)
			return -1;
		p[0].off = 5;
		p[0].len = 0;
		p[0].n = 0;
		np = 1;
	}
	*out = p;
	return np;
}

/* The client's own watermark in generation gen: 1 found, 0 none, -1 error. */
static int
own_watermark(slcl_client *c, int64_t gen, int64_t *seq, int64_t *lsn)
{
	sqlite3_stmt *q;
	int			rc;
	int			found = 0;

	q = ws(c, WS_OWN_WM);
	if (q == NULL)
		return -1;
	sqlite3_bind_int64(q, 1, gen);
	sqlite3_bind_blob(q, 2, c->client_id, (int) strlen(c->client_id), SQLITE_STATIC);
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW && sqlite3_column_bytes(q, 0) == SLC_WATERMARK_LEN)
	{
		slc_watermark_decode(sqlite3_column_blob(q, 0), seq, lsn);
		found = 1;
	}
	else if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		found = -1;
	ws_done(q);
	if (found < 0)
		slcli_db_fail(c, "could not read the client's watermark");
	return found;
}

/* Begin/commit of a queue transaction (queue.db's own connection). */
static slcl_rc
qtx_begin(slcl_client *c)
{
	return q_exec(c, "BEGIN IMMEDIATE");
}

static slcl_rc
qtx_end(slcl_client *c, slcl_rc r)
{
	if (r == SLCL_OK && sqlite3_exec(c->qdb, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		r = q_fail(c, "could not commit the queue");
	if (r != SLCL_OK)
		(void) sqlite3_exec(c->qdb, "ROLLBACK", NULL, NULL, NULL);
	return r;
}

/*
 * Remove the confirmed rows (seq <= upto), keeping their seqs used, in a
 * queue transaction of its own.  durable 0: without waiting for the disk
 * (synchronous = NORMAL for this one commit): losing it to a power cut
 * only brings back rows at or below a watermark that the replica already
 * committed durably, which every reader skips and the next open removes.
 */
static slcl_rc
drop_confirmed(slcl_client *c, int64_t upto, int durable)
{
	slcl_rc		r;

	if (!durable && q_exec(c, "PRAGMA synchronous = NORMAL") != SLCL_OK)
		return SLCL_ERR_IO;
	r = qtx_begin(c);
	if (r == SLCL_OK)
	{
		r = ws_run(c, WS_NEXT, 0, 0, NULL, "could not save the next client_seq");
		if (r == SLCL_OK)
			r = ws_run(c, WS_CONFIRM, upto, 0, NULL, "could not remove confirmed mutations");
		r = qtx_end(c, r);
	}
	if (!durable && q_exec(c, "PRAGMA synchronous = FULL") != SLCL_OK && r == SLCL_OK)
		r = SLCL_ERR_IO;
	return r;
}

/*
 * A queue in replica.db (written by an earlier version of the client):
 * copy it into queue.db (INSERT OR IGNORE: a crash between the two steps
 * copies again), then empty replica.db's tables.
 */
static slcl_rc
convert_old_queue(slcl_client *c)
{
	sqlite3_stmt *s;
	int64_t		rows = 0,
				next = 1;
	char		path[4096];
	slcl_rc		r;

	s = slcli_store_prepare(c, "SELECT (SELECT count(*) FROM pending) + (SELECT count(*) FROM failed), "
							"(SELECT next_seq FROM writer WHERE id = 1)");
	if (s == NULL)
		return SLCL_ERR_IO;
	if (sqlite3_step(s) == SQLITE_ROW)
	{
		rows = sqlite3_column_int64(s, 0);
		next = sqlite3_column_type(s, 1) == SQLITE_NULL ? 1 : sqlite3_column_int64(s, 1);
		r = SLCL_OK;
	}
	else
		r = slcli_db_fail(c, "could not read the queue of an earlier version");
	sqlite3_finalize(s);
	if (r != SLCL_OK || (rows == 0 && next <= 1))
		return r;

	slcli_path_of(c, SLCLI_DB_NAME, path, sizeof(path));
	if (sqlite3_prepare_v2(c->qdb, "ATTACH DATABASE ?1 AS old", -1, &s, NULL) != SQLITE_OK)
		return q_fail(c, "could not attach the replica database");
	sqlite3_bind_text(s, 1, path, -1, SQLITE_STATIC);
	r = sqlite3_step(s) == SQLITE_DONE ? SLCL_OK : q_fail(c, "could not attach the replica database");
	sqlite3_finalize(s);
	if (r != SLCL_OK)
		return r;
	r = qtx_begin(c);
	if (r == SLCL_OK)
		r = qtx_end(c, q_exec(c, "INSERT OR IGNORE INTO main.pending SELECT * FROM old.pending; "
							  "INSERT OR IGNORE INTO main.failed SELECT * FROM old.failed; "
							  "UPDATE main.writer SET next_seq = max(next_seq, "
							  "coalesce((SELECT next_seq FROM old.writer WHERE id = 1), 1)) WHERE id = 1"));
	if (sqlite3_exec(c->qdb, "DETACH DATABASE old", NULL, NULL, NULL) != SQLITE_OK && r == SLCL_OK)
		r = q_fail(c, "could not detach the replica database");
	if (r != SLCL_OK)
		return r;
	r = slcli_store_exec(c, "BEGIN IMMEDIATE");
	if (r == SLCL_OK)
	{
		r = slcli_store_exec(c, "DELETE FROM pending; DELETE FROM failed; UPDATE writer SET next_seq = 1");
		if (r == SLCL_OK)
			r = slcli_store_exec(c, "COMMIT");
		else
			(void) sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	}
	if (r == SLCL_OK)
		slcli_emit_simple(c, SLCL_EV_REPAIR, "moved the queue of replica.db (%lld mutation(s), next client_seq %lld) to %s",
						  (long long) rows, (long long) next, SLCLI_QUEUE_NAME);
	return r;
}

/* Open (or create) queue.db: WAL, synchronous = FULL, its tables. */
static slcl_rc
queue_open(slcl_client *c)
{
	char		path[4096];
	sqlite3_stmt *s = NULL;
	int			rc;
	slcl_rc		r;

	if (c->qdb != NULL)
		return SLCL_OK;
	slcli_path_of(c, SLCLI_QUEUE_NAME, path, sizeof(path));
	rc = sqlite3_open_v2(path, &c->qdb, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
	if (rc != SQLITE_OK)
		return q_fail(c, "could not open");
	sqlite3_extended_result_codes(c->qdb, 1);
	sqlite3_busy_timeout(c->qdb, 10000);
	rc = sqlite3_prepare_v2(c->qdb, "PRAGMA journal_mode = WAL", -1, &s, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc != SQLITE_ROW || strcmp((const char *) sqlite3_column_text(s, 0), "wal") != 0)
	{
		r = rc == SQLITE_ROW ? slcli_fail(c, SLCL_ERR_IO, "queue database \"%s\": cannot use WAL mode", path)
			: q_fail(c, "could not set WAL mode");
		sqlite3_finalize(s);
		return r;
	}
	sqlite3_finalize(s);
	r = q_exec(c, "PRAGMA synchronous = FULL");
	if (r == SLCL_OK)
		r = qtx_begin(c);
	if (r != SLCL_OK)
		return r;
	r = q_exec(c, queue_schema);
	if (r == SLCL_OK &&
		sqlite3_prepare_v2(c->qdb, "UPDATE writer SET client_id = ?1 WHERE id = 1 AND client_id IS NOT ?1",
						   -1, &s, NULL) == SQLITE_OK)
	{
		sqlite3_bind_text(s, 1, c->client_id, -1, SQLITE_STATIC);
		if (sqlite3_step(s) != SQLITE_DONE)
			r = q_fail(c, "could not record the client id");
		sqlite3_finalize(s);
	}
	else if (r == SLCL_OK)
		r = q_fail(c, "could not record the client id");
	r = qtx_end(c, r);
	if (r == SLCL_OK)
		r = convert_old_queue(c);
	return r;
}

/*
 * On open: queue.db (moving an earlier version's queue into it), the own
 * watermark of the committed state, the rows it confirms (a crash came
 * between that commit and their removal) and the queue's size.
 */
slcl_rc
slcli_write_load(slcl_client *c)
{
	int64_t		n;

	c->own_wm_seq = -1;
	c->own_wm_lsn = 0;
	c->sent_upto = 0;
	if (queue_open(c) != SLCL_OK)
		return SLCL_ERR_IO;
	if (c->committed.have &&
		own_watermark(c, c->committed.gen, &c->own_wm_seq, &c->own_wm_lsn) < 0)
		return SLCL_ERR_IO;
	if (c->own_wm_seq >= 0 && ws_count(c, WS_UPTO, INT64_MIN, c->own_wm_seq) > 0 &&
		drop_confirmed(c, c->own_wm_seq, 1) != SLCL_OK)
		return SLCL_ERR_IO;
	n = ws_count(c, WS_COUNT, c->own_wm_seq, 0);
	if (n < 0)
		return SLCL_ERR_IO;
	c->pending_n = (int) n;
	/* a submission may have been under way when the last process stopped */
	c->unsure = n > 0;
	return SLCL_OK;
}

/*
 * In the open replica transaction, just before its commit: how many
 * pending mutations the state being committed confirms (own watermark seq
 * >= theirs; they leave the queue after the commit), or, if that state
 * lost the watermark the committed one had while mutations are pending,
 * move them to failed (SL007) now, in a queue transaction that is durable
 * before the replica's commit.
 */
slcl_rc
slcli_write_confirm(slcl_client *c)
{
	slcli_wconfirm *w = &c->wconfirm;
	int64_t		seq = -1,
				lsn = 0;

	memset(w, 0, sizeof(*w));
	if (!c->cur.have)
		return SLCL_OK;			/* no state (dropped): nothing to tell */
	if (own_watermark(c, c->cur.gen, &seq, &lsn) < 0)
		return SLCL_ERR_IO;
	w->valid = 1;
	w->wm_seq = seq;
	w->wm_lsn = lsn;
	if (c->pending_n == 0 || c->qdb == NULL)
		return SLCL_OK;
	if (seq >= 0)
	{
		int64_t		n = seq > c->own_wm_seq ? ws_count(c, WS_UPTO, c->own_wm_seq, seq) : 0;

		if (n < 0)
			return SLCL_ERR_IO;
		w->confirmed = (int) n;
	}
	else if (c->own_wm_seq >= 0)
	{
		slcl_rc		r = qtx_begin(c);
		slcl_event	ev;
		int			moved = 0;

		if (r != SLCL_OK)
			return r;
		r = ws_run(c, WS_NEXT, 0, 0, NULL, "could not save the next client_seq");
		if (r == SLCL_OK)
		{
			sqlite3_stmt *s = ws(c, WS_RETIRE);

			if (s == NULL)
				r = SLCL_ERR_IO;
			else
			{
				sqlite3_bind_double(s, 1, slcli_now_s());
				sqlite3_bind_int64(s, 2, c->own_wm_seq);
				r = sqlite3_step(s) == SQLITE_DONE ? SLCL_OK : q_fail(c, "could not record retired mutations");
				moved = sqlite3_changes(c->qdb);
				ws_done(s);
			}
		}
		if (r == SLCL_OK)
			r = ws_run(c, WS_DROP_ALL, 0, 0, NULL, "could not record retired mutations");
		r = qtx_end(c, r);
		if (r != SLCL_OK)
			return r;
		/* durable now, whatever becomes of the replica's transaction */
		c->pending_n = 0;
		c->retired_n += moved;
		memset(&ev, 0, sizeof(ev));
		ev.total_rows = ev.total_bytes = -1;
		ev.type = SLCL_EV_RETIRED;
		ev.lsn = c->cur.lsn;
		ev.log_id = c->cur.log_id;
		ev.rows = moved;
		ev.sqlstate = "SL007";
		slcli_emit(c, &ev, "client retired (SL007): the watermark of client %s is gone with %d mutation(s) pending; they moved to the failed list",
				   c->client_id, moved);
	}
	return SLCL_OK;
}

/* After the commit: the committed watermark, the confirmed rows out of the queue, the events. */
void
slcli_write_committed(slcl_client *c)
{
	slcli_wconfirm *w = &c->wconfirm;
	slcl_event	ev;
	int64_t		n;

	if (!w->valid)
	{
		if (!c->committed.have)
			c->own_wm_seq = -1;
		return;
	}
	w->valid = 0;
	c->own_wm_seq = w->wm_seq;
	c->own_wm_lsn = w->wm_lsn;
	if (w->confirmed <= 0)
		return;
	if (drop_confirmed(c, w->wm_seq, 0) != SLCL_OK)
		slcli_emit_simple(c, SLCL_EV_WARNING, "confirmed mutations stay in the queue until the next open: %s", c->err);
	n = ws_count(c, WS_COUNT, c->own_wm_seq, 0);
	c->pending_n = n >= 0 ? (int) n : (c->pending_n > w->confirmed ? c->pending_n - w->confirmed : 0);
	memset(&ev, 0, sizeof(ev));
	ev.total_rows = ev.total_bytes = -1;
	ev.log_id = c->committed.log_id;
	ev.type = SLCL_EV_CONFIRMED;
	ev.seq = w->wm_seq;
	ev.lsn = w->wm_lsn;
	ev.rows = w->confirmed;
	slcli_emit(c, &ev, "confirmed %d mutation(s) up to seq=%lld at lsn=%lld, %d pending",
			   w->confirmed, (long long) w->wm_seq, (long long) w->wm_lsn, c->pending_n);
}

/* The call's result, turned into SLCL_ERR_RETIRED once after SL007. */
static slcl_rc
retired_check(slcl_client *c, slcl_rc r)
{
	int			n = c->retired_n;

	if (n == 0)
		return r;
	c->retired_n = 0;
	return slcli_fail(c, SLCL_ERR_RETIRED,
					  "client retired (SL007): %d pending mutation(s) may or may not have been applied; they are in the failed list",
					  n);
}

/* Ask the server's delta limits once per connection (best effort). */
static void
ask_limits(slcl_client *c)
{
	PGresult   *res;
	slcl_rc		rc;
	char		st[6];
	char		saved[sizeof(c->err)];

	if (c->conn == NULL || c->limits_conn == (const void *) c->conn)
		return;
	memcpy(saved, c->err, sizeof(saved));
	res = slcli_query(c, "SELECT (SELECT setting::bigint * CASE unit WHEN 'kB' THEN 1024 WHEN 'MB' THEN 1048576 "
					  "ELSE 1 END FROM pg_settings WHERE name = 'synclog.max_delta_size'), "
					  "(SELECT setting::bigint FROM pg_settings WHERE name = 'synclog.max_delta_changes')",
					  0, NULL, NULL, NULL, &rc, st);
	if (res == NULL)
	{
		memcpy(c->err, saved, sizeof(saved));
		return;
	}
	if (PQntuples(res) == 1)
	{
		int64_t		v;

		if (slcli_col_i8(res, 0, 0, &v) == 0 && v > 0)
			c->srv_max_delta = v;
		if (slcli_col_i8(res, 0, 1, &v) == 0 && v > 0)
			c->srv_max_changes = v;
	}
	PQclear(res);
	c->limits_conn = c->conn;
}

/* The least client_seq a new mutation may take (-1: error). */
static int64_t
least_seq(slcl_client *c)
{
	sqlite3_stmt *s = ws(c, WS_LEAST);
	int64_t		v = -1;

	if (s == NULL)
		return -1;
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	else
		q_fail(c, "could not read the next client_seq");
	ws_done(s);
	if (v >= 0 && c->own_wm_seq >= v)
		v = c->own_wm_seq + 1;	/* the server has seen it: never go back */
	if (v >= 0 && v < 1)
		v = 1;
	return v;
}

/*
 * Check a mutation (structure, no key twice, size, that it splits): its
 * part size and count, and the number of parts (client_seqs) it takes.
 */
static slcl_rc
check_mutation(slcl_client *c, const uint8_t *delta, size_t len, int64_t *pb, int64_t *pc, int *np)
{
	slc_status	st;
	uint32_t	n = 0;
	size_t		off = 0;
	wpart	   *parts = NULL;
	size_t		big = 0;

	if (delta == NULL && len > 0)
		return slcli_fail(c, SLCL_ERR_ARG, "no delta given");
	if ((int64_t) len > c->opt.submit_max_bytes)
		return slcli_fail(c, SLCL_ERR_ARG, "the mutation is %zu bytes, over the limit of %lld (submit_max_bytes)",
						  len, (long long) c->opt.submit_max_bytes);
	st = slcli_delta_check(delta, len, &n, &off);
	if (st == SLC_ERR_NOMEM)
		return slcli_fail(c, SLCL_ERR_NOMEM, "out of memory");
	if (st != SLC_OK)
		return slcli_fail(c, SLCL_ERR_ARG, "invalid delta: %s (near byte %zu)", slc_status_message(st), off);
	if (c->dsn != NULL && c->opt.part_bytes == 0 && c->srv_max_delta == 0 && c->conn != NULL)
		ask_limits(c);
	*pb = c->opt.part_bytes > 0 ? c->opt.part_bytes : (c->srv_max_delta > 0 ? c->srv_max_delta : DEFAULT_PART_BYTES);
	*pc = c->srv_max_changes > 0 ? c->srv_max_changes : DEFAULT_PART_CHANGES;
	*np = split_delta(delta, len, *pb, *pc, &parts, &big);
	free(parts);
	if (*np < 0)
		return slcli_fail(c, SLCL_ERR_NOMEM, "out of memory");
	if (*np == 0)
		return slcli_fail(c, SLCL_ERR_ARG, "a change of the mutation takes %zu bytes, over the part size of %lld bytes",
						  big, (long long) *pb);
	return SLCL_OK;
}

/*
 * Queue n mutations durably in ONE queue transaction, with consecutive
 * client_seqs from want (-1: the next one): all of them or, if one is
 * refused, none.  seqs (may be NULL) gets each one's first client_seq.
 */
static slcl_rc
queue_mutations(slcl_client *c, const slcl_delta_ref *m, int n, int64_t want, int64_t *seqs)
{
	int64_t    *pb,
			   *pc,
			   *sq,
				least,
				seq,
				total = 0;
	int		   *np;
	slcl_rc		r = SLCL_OK;
	sqlite3_stmt *s = NULL;

	if (n < 1 || m == NULL)
		return slcli_fail(c, SLCL_ERR_ARG, "no mutation given");
	pb = malloc(sizeof(int64_t) * 3 * (size_t) n);
	np = malloc(sizeof(int) * (size_t) n);
	if (pb == NULL || np == NULL)
	{
		free(pb);
		free(np);
		return slcli_fail(c, SLCL_ERR_NOMEM, "out of memory");
	}
	pc = pb + n;
	sq = pc + n;
	for (int i = 0; i < n && r == SLCL_OK; i++)
	{
		r = check_mutation(c, m[i].delta, m[i].len, &pb[i], &pc[i], &np[i]);
		if (r != SLCL_OK && n > 1)
		{
			char		msg[sizeof(c->err)];

			memcpy(msg, c->err, sizeof(msg));
			slcli_fail(c, r, "mutation %d of the batch: %s (nothing queued)", i, msg);
		}
		total += r == SLCL_OK ? np[i] : 0;
	}
	if (r == SLCL_OK)
		r = qtx_begin(c);
	if (r != SLCL_OK)
	{
		free(pb);
		free(np);
		return r;
	}
	least = least_seq(c);
	seq = want >= 0 ? want : least;
	if (least < 0)
		r = SLCL_ERR_IO;
	else if (seq < least)
		r = slcli_fail(c, SLCL_ERR_ARG, "client_seq %lld would go backwards: client %s has used or seen client_seqs up to %lld",
					   (long long) want, c->client_id, (long long) (least - 1));
	else if (seq > INT64_MAX - total)
		r = slcli_fail(c, SLCL_ERR_ARG, "client_seq %lld is too large", (long long) seq);
	else if ((s = ws(c, WS_INSERT)) == NULL)
		r = SLCL_ERR_IO;
	for (int i = 0; i < n && r == SLCL_OK; i++)
	{
		int64_t		last = seq + np[i] - 1;

		sqlite3_bind_int64(s, 1, seq);
		sqlite3_bind_int64(s, 2, last);
		sqlite3_bind_int64(s, 3, pb[i]);
		sqlite3_bind_int64(s, 4, pc[i]);
		sqlite3_bind_double(s, 5, slcli_now_s());
		sqlite3_bind_blob(s, 6, m[i].len ? (const void *) m[i].delta : "", (int) m[i].len, SQLITE_STATIC);
		sqlite3_bind_int64(s, 7, row_chk(seq, last, pb[i], pc[i], m[i].delta, m[i].len));
		r = sqlite3_step(s) == SQLITE_DONE ? SLCL_OK : q_fail(c, "could not queue the mutation");
		ws_done(s);
		sq[i] = seq;
		seq = last + 1;
	}
	r = qtx_end(c, r);
	if (r == SLCL_OK)
	{
		c->pending_n += n;
		if (seqs)
			memcpy(seqs, sq, sizeof(int64_t) * (size_t) n);
		for (int i = 0; i < n; i++)
		{
			slcl_event	ev;

			memset(&ev, 0, sizeof(ev));
			ev.type = SLCL_EV_QUEUED;
			ev.seq = sq[i];
			ev.rows = np[i];
			ev.bytes = (int64_t) m[i].len;
			ev.total_rows = ev.total_bytes = -1;
			slcli_emit(c, &ev, "queued seq=%lld (%d part%s, %zu bytes), %d pending", (long long) sq[i], np[i],
					   np[i] == 1 ? "" : "s", m[i].len, c->pending_n - n + i + 1);
		}
		slcli_debug_hook(c, "submit-queued");
	}
	free(pb);
	free(np);
	return r;
}

/* Is a failure with this SQLSTATE worth retrying (with the same client_seq)? */
static int
retryable(const char *st)
{
	static const char *const classes[] = {"08", "40", "53", "57", "58", "XX", "SL"};

	if (st[0] == '\0' || strcmp(st, "25006") == 0 || strcmp(st, "55P03") == 0)
		return 1;
	for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++)
		if (strncmp(st, classes[i], 2) == 0)
			return 1;
	return 0;
}

/*
 * Load the first pending row with seq > after, with how it splits.
 * 1: found (w->damaged if it fails its checksum or does not split as it
 * was queued), 0: none, -1: error.
 */
static int
load_row(slcl_client *c, int64_t after, wrow *w)
{
	sqlite3_stmt *s = ws(c, WS_LOAD);
	int			rc;
	int			result = 0;

	w->damaged = 0;
	w->np = 0;
	free(w->parts);
	w->parts = NULL;
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, after);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
	{
		size_t		n = (size_t) sqlite3_column_bytes(s, 4);

		w->seq = sqlite3_column_int64(s, 0);
		w->last_seq = sqlite3_column_int64(s, 1);
		w->part_bytes = sqlite3_column_int64(s, 2);
		w->part_changes = sqlite3_column_int64(s, 3);
		w->delta.len = 0;
		if (buf_put(&w->delta, n ? sqlite3_column_blob(s, 4) : "", n) != 0)
		{
			slcli_fail(c, SLCL_ERR_NOMEM, "out of memory");
			result = -1;
		}
		else
		{
			result = 1;
			w->damaged = sqlite3_column_int64(s, 5) !=
				row_chk(w->seq, w->last_seq, w->part_bytes, w->part_changes, w->delta.p, w->delta.len) ||
				w->last_seq < w->seq || w->part_bytes < 6 || w->part_changes < 1;
		}
	}
	else if (rc != SQLITE_DONE)
	{
		q_fail(c, "could not read the queue");
		result = -1;
	}
	ws_done(s);
	if (result == 1 && !w->damaged)
	{
		size_t		big = 0;

		w->np = split_delta(w->delta.p, w->delta.len, w->part_bytes, w->part_changes, &w->parts, &big);
		if (w->np < 0)
		{
			w->np = 0;
			return slcli_fail(c, SLCL_ERR_NOMEM, "out of memory"), -1;
		}
		if (w->np == 0 || w->seq + w->np - 1 != w->last_seq)
			w->damaged = 1;
	}
	return result;
}

/* Move a pending mutation to failed, with why, in its own transaction. */
static slcl_rc
fail_row(slcl_client *c, const wrow *w, const char *sqlstate, const char *msg)
{
	sqlite3_stmt *s;
	slcl_rc		r = qtx_begin(c);
	slcl_event	ev;

	if (r != SLCL_OK)
		return r;
	s = ws(c, WS_FAIL);
	if (s == NULL)
		return qtx_end(c, SLCL_ERR_IO);
	sqlite3_bind_int64(s, 1, w->seq);
	sqlite3_bind_int64(s, 2, w->last_seq);
	sqlite3_bind_text(s, 3, sqlstate, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, msg, -1, SQLITE_STATIC);
	sqlite3_bind_double(s, 5, slcli_now_s());
	sqlite3_bind_blob(s, 6, w->delta.len ? (const void *) w->delta.p : "", (int) w->delta.len, SQLITE_STATIC);
	r = sqlite3_step(s) == SQLITE_DONE ? SLCL_OK : q_fail(c, "could not record a refused mutation");
	ws_done(s);
	if (r == SLCL_OK)
		r = ws_run(c, WS_NEXT, 0, 0, NULL, "could not save the next client_seq");
	if (r == SLCL_OK)
		r = ws_run(c, WS_DELETE, w->seq, 0, NULL, "could not remove a refused mutation");
	r = qtx_end(c, r);
	if (r != SLCL_OK)
		return r;
	c->pending_n--;
	memset(&ev, 0, sizeof(ev));
	ev.type = SLCL_EV_REFUSED;
	ev.seq = w->seq;
	ev.sqlstate = sqlstate;
	ev.total_rows = ev.total_bytes = -1;
	slcli_emit(c, &ev, "mutation seq=%lld refused (%s): %s", (long long) w->seq, sqlstate, msg);
	return SLCL_OK;
}

/* A statement without parameters on the server: 0 ok, else rc (sqlstate set). */
static slcl_rc
srv_exec(slcl_client *c, const char *sql, char sqlstate[6], PGresult **keep)
{
	slcl_rc		rc = SLCL_OK;
	PGresult   *res = slcli_query(c, sql, 0, NULL, NULL, NULL, &rc, sqlstate);

	if (res == NULL)
		return rc;
	if (keep)
		*keep = res;
	else
		PQclear(res);
	return SLCL_OK;
}

/* Append the parts of one mutation (inside the caller's transaction, if any). */
static slcl_rc
send_parts(slcl_client *c, wrow *w, buf *part, char sqlstate[6])
{
	slcl_rc		rc = SLCL_OK;

	for (int i = 0; i < w->np && rc == SLCL_OK; i++)
	{
		char		seqbuf[32];
		const char *vals[4];
		int			lens[4] = {0, 0, 0, 0};
		int			fmts[4] = {0, 1, 0, 0};
		PGresult   *res;

		part->len = 0;
		if (buf_u8(part, 1) || buf_u32(part, w->parts[i].n) ||
			buf_put(part, w->delta.p + w->parts[i].off, w->parts[i].len))
			return slcli_fail(c, SLCL_ERR_NOMEM, "out of memory");
		snprintf(seqbuf, sizeof(seqbuf), "%lld", (long long) (w->seq + i));
		vals[0] = c->doc;
		vals[1] = (const char *) part->p;
		lens[1] = (int) part->len;
		vals[2] = c->client_id;
		vals[3] = seqbuf;
		res = slcli_query(c, "SELECT synclog.append_delta($1, $2::bytea, $3, $4::bigint)",
						  4, vals, lens, fmts, &rc, sqlstate);
		if (res == NULL)
			break;
		if (PQntuples(res) != 1 || slcli_col_i8(res, 0, 0, &w->lsn) != 0)
			rc = slcli_fail(c, SLCL_ERR_PROTOCOL, "synclog.append_delta returned no LSN");
		PQclear(res);
	}
	return rc;
}

/*
 * Send n queued mutations: their parts with client_seqs seq, seq+1, ...,
 * in ONE server transaction when there are several parts in all (readers
 * apply them as one group).  SLCL_OK (each row's lsn: the LSN of its last
 * part); on failure the sqlstate (empty: the connection) and c->err, and
 * nothing of them is committed unless the outcome is unknown.
 */
static slcl_rc
send_rows(slcl_client *c, wrow *rows, int n, char sqlstate[6])
{
	buf			part = {0};
	slcl_rc		rc = SLCL_OK;
	int			total = 0;
	PGresult   *res = NULL;

	sqlstate[0] = '\0';
	for (int i = 0; i < n; i++)
		total += rows[i].np;
	if (total > 1)
	{
		rc = srv_exec(c, "BEGIN", sqlstate, NULL);
		if (rc != SLCL_OK)
			return rc;
	}
	for (int i = 0; i < n && rc == SLCL_OK; i++)
		rc = send_parts(c, &rows[i], &part, sqlstate);
	free(part.p);
	if (total <= 1)
		return rc;
	if (rc == SLCL_OK)
	{
		rc = srv_exec(c, "COMMIT", sqlstate, &res);
		/* a failed transaction's COMMIT reports ROLLBACK */
		if (rc == SLCL_OK && strcmp(PQcmdStatus(res), "COMMIT") != 0)
		{
			snprintf(sqlstate, 6, "40001");
			rc = slcli_fail(c, SLCL_ERR_SERVER, "the transaction of mutations seq=%lld..%lld was rolled back",
							(long long) rows[0].seq, (long long) rows[n - 1].last_seq);
		}
		PQclear(res);
	}
	else if (c->conn != NULL)
	{
		char		st2[6];
		char		saved[sizeof(c->err)];

		memcpy(saved, c->err, sizeof(saved));
		(void) srv_exec(c, "ROLLBACK", st2, NULL);
		memcpy(c->err, saved, sizeof(saved));
	}
	return rc;
}

/*
 * Load the next batch of pending rows after c->sent_upto into rows (at
 * most max, and BATCH_BYTES of deltas unless one row alone is larger;
 * confirmed rows skipped; a damaged row only alone, first).  The number
 * loaded, -1 on error.
 */
static int
load_batch(slcl_client *c, wrow *rows, int max)
{
	int			n = 0;
	int64_t		after = c->sent_upto;
	size_t		bytes = 0;

	while (n < max)
	{
		int			found = load_row(c, after, &rows[n]);

		if (found < 0)
			return -1;
		if (found == 0)
			break;
		after = rows[n].last_seq;
		if (rows[n].seq <= c->own_wm_seq)
		{
			/* in the state already (queued before its confirmation could run) */
			if (n == 0)
				c->sent_upto = rows[n].last_seq;
			continue;
		}
		if (rows[n].damaged)
		{
			if (n == 0)
				n = 1;
			break;				/* alone, or for the next batch */
		}
		if (n > 0 && bytes + rows[n].delta.len > BATCH_BYTES)
			break;				/* a large one starts the next batch */
		bytes += rows[n].delta.len;
		n++;
	}
	return n;
}

slcl_rc
slcl_flush(slcl_client *c)
{
	wrow	   *rows;
	slcl_rc		r = SLCL_OK;
	int			refused = 0;
	int			alone = 0;		/* rows to send one at a time (a batch was refused) */

	c->refused_n = 0;
	if (c->pending_n == 0)
		return retired_check(c, SLCL_OK);
	if (c->dsn == NULL)
		return slcli_fail(c, SLCL_ERR_ARG, "no connection string given");
	if (c->unsure || !c->committed.have || c->downloading)
	{
		/* what an earlier attempt did must be in the state first */
		r = slcli_read_to_head(c);
		if (r != SLCL_OK)
			return retired_check(c, r);
		c->unsure = 0;
	}
	ask_limits(c);
	rows = calloc(BATCH_ROWS, sizeof(wrow));
	if (rows == NULL)
		return slcli_fail(c, SLCL_ERR_NOMEM, "out of memory");
	for (;;)
	{
		int			n = load_batch(c, rows, alone > 0 ? 1 : BATCH_ROWS);
		char		st[6];

		if (n <= 0)
		{
			r = n < 0 ? SLCL_ERR_IO : SLCL_OK;
			break;
		}
		if (slcli_interrupted(c))
		{
			r = slcli_fail(c, SLCL_ERR_INTERRUPTED, "interrupted");
			break;
		}
		if (rows[0].damaged)
		{
			r = fail_row(c, &rows[0], "XX001", "the queued mutation is damaged in the local database");
			if (r != SLCL_OK)
				break;
			refused++;
			alone -= alone > 0;
			continue;
		}
		r = send_rows(c, rows, n, st);
		if (r == SLCL_OK)
		{
			slcli_debug_hook(c, "submit-sent");
			c->sent_upto = rows[n - 1].last_seq;
			alone -= alone > 0;
			for (int i = 0; i < n; i++)
			{
				slcl_event	ev;

				memset(&ev, 0, sizeof(ev));
				ev.type = SLCL_EV_SUBMITTED;
				ev.seq = rows[i].seq;
				ev.lsn = rows[i].lsn;
				ev.total_rows = ev.total_bytes = -1;
				slcli_emit(c, &ev, "submitted seq=%lld lsn=%lld", (long long) rows[i].seq, (long long) rows[i].lsn);
			}
			continue;
		}
		if (r == SLCL_ERR_NOMEM || r == SLCL_ERR_INTERRUPTED || retryable(st))
		{
			/* the outcome is unknown: read the log before sending again */
			c->unsure = 1;
			break;
		}
		if (n > 1)
		{
			/* nothing of the batch was committed: find the refused one alone */
			alone = n;
			r = SLCL_OK;
			continue;
		}
		{
			char		msg[sizeof(c->err)];

			memcpy(msg, c->err, sizeof(msg));
			r = fail_row(c, &rows[0], st, msg);
			if (r != SLCL_OK)
				break;
			refused++;
			alone -= alone > 0;
		}
	}
	for (int i = 0; i < BATCH_ROWS; i++)
	{
		free(rows[i].delta.p);
		free(rows[i].parts);
	}
	free(rows);
	c->refused_n = refused;
	if (r == SLCL_OK && refused > 0)
		r = slcli_fail(c, SLCL_ERR_REFUSED, "the server refused %d mutation(s): see the failed list", refused);
	return retired_check(c, r);
}

/* After queueing: send now; a failure to send is for slcl_sync to retry. */
static slcl_rc
send_queued(slcl_client *c, int warn)
{
	slcl_rc		r;

	if (c->dsn == NULL)
		return SLCL_OK;
	r = slcl_flush(c);
	if (r != SLCL_OK && r != SLCL_ERR_REFUSED && r != SLCL_ERR_RETIRED)
	{
		if (warn)
			slcli_emit_simple(c, SLCL_EV_WARNING, "mutation queued, not sent yet: %s", c->err);
		return SLCL_OK;
	}
	return r;
}

slcl_rc
slcl_submit_seq(slcl_client *c, const uint8_t *delta, size_t len, int64_t seq)
{
	slcl_delta_ref m = {delta, len};
	slcl_rc		r;

	c->err[0] = '\0';
	if (seq < 1)
		return slcli_fail(c, SLCL_ERR_ARG, "client_seq %lld: it must be positive", (long long) seq);
	r = queue_mutations(c, &m, 1, seq, NULL);
	return r != SLCL_OK ? r : send_queued(c, 0);
}

slcl_rc
slcl_submit(slcl_client *c, const uint8_t *delta, size_t len, int64_t *seq)
{
	slcl_delta_ref m = {delta, len};
	slcl_rc		r;

	c->err[0] = '\0';
	r = queue_mutations(c, &m, 1, -1, seq);
	return r != SLCL_OK ? r : send_queued(c, 1);
}

slcl_rc
slcl_enqueue(slcl_client *c, const uint8_t *delta, size_t len, int64_t *seq)
{
	slcl_delta_ref m = {delta, len};

	c->err[0] = '\0';
	return queue_mutations(c, &m, 1, -1, seq);
}

slcl_rc
slcl_submit_batch(slcl_client *c, const slcl_delta_ref *m, int n, int64_t *seqs)
{
	slcl_rc		r;

	c->err[0] = '\0';
	r = queue_mutations(c, m, n, -1, seqs);
	return r != SLCL_OK ? r : send_queued(c, 1);
}

int64_t
slcl_next_seq(slcl_client *c)
{
	return least_seq(c);
}

int
slcl_pending(const slcl_client *c)
{
	return c->pending_n;
}

slcl_rc
slcl_queue_list(slcl_client *c, slcl_mutation_fn fn, void *arg)
{
	static const char *const sql[2] = {
		"SELECT seq, last_seq, delta, queued, NULL, NULL FROM pending WHERE seq > ?1 ORDER BY seq",
		"SELECT seq, last_seq, delta, at, sqlstate, message FROM failed ORDER BY seq",
	};

	for (int f = 0; f < 2; f++)
	{
		sqlite3_stmt *s = NULL;
		int			rc;

		if (c->qdb == NULL)
			return slcli_fail(c, SLCL_ERR_STATE, "the queue database is not open");
		if (sqlite3_prepare_v2(c->qdb, sql[f], -1, &s, NULL) != SQLITE_OK)
			return q_fail(c, "could not read the queue");
		if (f == 0)
			sqlite3_bind_int64(s, 1, c->own_wm_seq);	/* confirmed rows not yet removed */
		while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		{
			slcl_mutation m;
			const void *d = sqlite3_column_blob(s, 2);

			memset(&m, 0, sizeof(m));
			m.seq = sqlite3_column_int64(s, 0);
			m.last_seq = sqlite3_column_int64(s, 1);
			m.delta = d ? d : (const uint8_t *) "";
			m.dlen = (size_t) sqlite3_column_bytes(s, 2);
			m.at = sqlite3_column_double(s, 3);
			m.failed = f;
			m.sqlstate = f ? (const char *) sqlite3_column_text(s, 4) : NULL;
			m.message = f ? (const char *) sqlite3_column_text(s, 5) : NULL;
			if (fn(arg, &m) != 0)
			{
				sqlite3_finalize(s);
				return SLCL_OK;
			}
		}
		sqlite3_finalize(s);
		if (rc != SQLITE_DONE)
			return q_fail(c, "could not read the queue");
	}
	return SLCL_OK;
}
