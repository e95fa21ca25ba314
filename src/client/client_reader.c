/*
 * client_reader.c
 *
 * Reading a replica: slcl_reader_* over a read-only SQLite connection of
 * the reader's own to dir/replica.db, with dir/queue.db (the pending
 * queue, client_write.c) attached as "q" when it exists.  WAL mode lets it
 * read while a
 * follower (this process or another) writes, without any lock of the
 * library: each statement reads the newest committed state, and between
 * slcl_reader_begin and slcl_reader_end every call reads the one snapshot
 * taken at begin (the queue's snapshot first, then the state's: a row
 * leaves the queue only after a state holding it is committed, so a
 * mutation is always in one or the other; queue rows at or below the
 * client's own watermark in the state are skipped).
 *
 * Owns: struct slcl_reader, slcl_reader_open/close/begin/end/position/
 * get/scan, the rebased view (get/scan_rebased: the pending queue's
 * deltas laid over the state, in seq order, from the same snapshot), and
 * slcl_client_reader (the follower's own reader).
 * Must never: write to the database, take the directory's lock, or mix
 * two committed states in one answer (an item lookup and a scan each run
 * in one snapshot: their own, or begin's).
 */
#define _GNU_SOURCE
#include "client_int.h"

#include <errno.h>
#include <stdarg.h>
#include <sys/stat.h>

struct slcl_reader
{
	sqlite3    *db;
	sqlite3_stmt *get;
	sqlite3_stmt *pos;
	sqlite3_stmt *qfirst;		/* q.writer's client id: takes the queue's snapshot */
	int			has_q;			/* queue.db attached (else an old replica's own tables) */
	char		client_id[256];	/* from q.writer at the last snapshot */
	int			in_snap;
	char		log_id[SLCL_LOG_ID_MAX + 1];
	buf			val;
	char		err[1024];
};

static slcl_rc
rfail(slcl_reader *r, slcl_rc rc, const char *fmt,...) SLCLI_PRINTF(3, 4);

static slcl_rc
rfail(slcl_reader *r, slcl_rc rc, const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(r->err, sizeof(r->err), fmt, ap);
	va_end(ap);
	slcli_one_line(r->err);
	return rc;
}

static slcl_rc
rdb_fail(slcl_reader *r, const char *what)
{
	int			code = sqlite3_errcode(r->db) & 0xff;

	return rfail(r, code == SQLITE_NOMEM ? SLCL_ERR_NOMEM : SLCL_ERR_IO,
				 "replica database: %s: %s", what, sqlite3_errmsg(r->db));
}

void
slcl_reader_close(slcl_reader *r)
{
	if (r == NULL)
		return;
	if (r->in_snap)
		(void) sqlite3_exec(r->db, "COMMIT", NULL, NULL, NULL);
	sqlite3_finalize(r->get);
	sqlite3_finalize(r->pos);
	sqlite3_finalize(r->qfirst);
	sqlite3_close(r->db);
	free(r->val.p);
	free(r);
}

const char *
slcl_reader_errmsg(const slcl_reader *r)
{
	return r ? r->err : slcl_open_error();
}

static slcl_rc
reader_open(const char *dir, const char *doc, slcl_reader **out, char *err, size_t errlen)
{
	char		path[4096];
	struct stat st;
	slcl_reader *r;
	sqlite3_stmt *s = NULL;
	int			rc;

	*out = NULL;
	if (dir == NULL || doc == NULL || strlen(dir) > 3000)
	{
		snprintf(err, errlen, "dir and doc are required");
		return SLCL_ERR_ARG;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, SLCLI_DB_NAME);
	if (stat(path, &st) != 0)
	{
		snprintf(err, errlen, "no replica in directory \"%.900s\": %s", dir, strerror(errno));
		return errno == ENOENT ? SLCL_ERR_STATE : SLCL_ERR_IO;
	}
	r = calloc(1, sizeof(*r));
	if (r == NULL)
	{
		snprintf(err, errlen, "out of memory");
		return SLCL_ERR_NOMEM;
	}
	rc = sqlite3_open_v2(path, &r->db, SQLITE_OPEN_READONLY, NULL);
	if (rc == SQLITE_OK)
	{
		sqlite3_busy_timeout(r->db, 10000);
		rc = sqlite3_prepare_v2(r->db, "SELECT doc FROM meta WHERE id = 1", -1, &s, NULL);
	}
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc != SQLITE_ROW)
	{
		snprintf(err, errlen, "could not read the replica database \"%.900s\": %s", path,
				 r->db ? sqlite3_errmsg(r->db) : "out of memory");
		sqlite3_finalize(s);
		slcl_reader_close(r);
		return SLCL_ERR_IO;
	}
	if ((size_t) sqlite3_column_bytes(s, 0) != strlen(doc) ||
		memcmp(sqlite3_column_blob(s, 0), doc, strlen(doc)) != 0)
	{
		snprintf(err, errlen, "directory \"%s\" holds a replica of another document", dir);
		sqlite3_finalize(s);
		slcl_reader_close(r);
		return SLCL_ERR_ARG;
	}
	sqlite3_finalize(s);
	s = NULL;
	snprintf(path, sizeof(path), "%s/%s", dir, SLCLI_QUEUE_NAME);
	if (stat(path, &st) == 0)
	{
		/* read-only like the main database */
		rc = sqlite3_prepare_v2(r->db, "ATTACH DATABASE ?1 AS q", -1, &s, NULL);
		if (rc == SQLITE_OK)
		{
			sqlite3_bind_text(s, 1, path, -1, SQLITE_STATIC);
			rc = sqlite3_step(s) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
		}
		if (rc == SQLITE_OK)
			rc = sqlite3_prepare_v2(r->db, "SELECT client_id FROM q.writer WHERE id = 1", -1, &r->qfirst, NULL);
		if (rc != SQLITE_OK)
		{
			snprintf(err, errlen, "could not read the queue database \"%.900s\": %s", path, sqlite3_errmsg(r->db));
			sqlite3_finalize(s);
			slcl_reader_close(r);
			return SLCL_ERR_IO;
		}
		sqlite3_finalize(s);
		r->has_q = 1;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, SLCLI_DB_NAME);
	if (sqlite3_prepare_v2(r->db, "SELECT val FROM item WHERE gen = (SELECT gen FROM meta WHERE id = 1) "
						   "AND ns = 1 AND key = ?1", -1, &r->get, NULL) != SQLITE_OK ||
		sqlite3_prepare_v2(r->db, "SELECT gen, log_id, lsn, chain, hash FROM meta WHERE id = 1",
						   -1, &r->pos, NULL) != SQLITE_OK)
	{
		snprintf(err, errlen, "could not read the replica database \"%.900s\": %s", path, sqlite3_errmsg(r->db));
		slcl_reader_close(r);
		return SLCL_ERR_IO;
	}
	*out = r;
	return SLCL_OK;
}

slcl_rc
slcl_reader_open(const char *dir, const char *doc, slcl_reader **out)
{
	char		err[1024];
	slcl_rc		rc = reader_open(dir, doc, out, err, sizeof(err));

	if (rc != SLCL_OK)
		slcli_set_open_error(err);
	return rc;
}

slcl_reader *
slcl_client_reader(slcl_client *c)
{
	char		err[1024];

	if (c->reader == NULL && reader_open(c->dir, c->doc, &c->reader, err, sizeof(err)) != SLCL_OK)
		slcli_fail(c, SLCL_ERR_IO, "%s", err);
	return c->reader;
}

slcl_rc
slcl_reader_begin(slcl_reader *r)
{
	int			rc;

	if (r->in_snap)
		return rfail(r, SLCL_ERR_STATE, "a snapshot is already taken: end it first");
	if (sqlite3_exec(r->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
		return rdb_fail(r, "could not begin");
	/* a deferred transaction takes a file's snapshot at its first read: the queue's first */
	if (r->has_q)
	{
		const unsigned char *id;

		rc = sqlite3_step(r->qfirst);
		id = rc == SQLITE_ROW ? sqlite3_column_text(r->qfirst, 0) : NULL;
		snprintf(r->client_id, sizeof(r->client_id), "%s", id ? (const char *) id : "");
		sqlite3_reset(r->qfirst);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		{
			slcl_rc		e = rdb_fail(r, "could not take a snapshot of the queue");

			(void) sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
			return e;
		}
	}
	rc = sqlite3_step(r->pos);
	sqlite3_reset(r->pos);
	if (rc != SQLITE_ROW)
	{
		slcl_rc		e = rdb_fail(r, "could not take a snapshot");

		(void) sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
		return e;
	}
	r->in_snap = 1;
	return SLCL_OK;
}

void
slcl_reader_end(slcl_reader *r)
{
	if (r == NULL || !r->in_snap)
		return;
	(void) sqlite3_exec(r->db, "COMMIT", NULL, NULL, NULL);
	r->in_snap = 0;
}

slcl_rc
slcl_reader_position(slcl_reader *r, const char **log_id, int64_t *lsn,
					 uint8_t chain[SLCL_CHAIN_LEN], uint8_t hash[SLC_HASH_LEN])
{
	sqlite3_stmt *s = r->pos;
	int			rc = sqlite3_step(s);
	slcl_rc		out = SLCL_OK;

	if (rc != SQLITE_ROW)
	{
		sqlite3_reset(s);
		return rdb_fail(r, "could not read the position");
	}
	if (sqlite3_column_type(s, 0) == SQLITE_NULL)
		out = rfail(r, SLCL_ERR_STATE, "the replica has no state yet");
	else
	{
		const char *l = (const char *) sqlite3_column_text(s, 1);

		snprintf(r->log_id, sizeof(r->log_id), "%s", l ? l : "");
		if (log_id)
			*log_id = r->log_id;
		if (lsn)
			*lsn = sqlite3_column_int64(s, 2);
		if (chain && sqlite3_column_bytes(s, 3) == SLCL_CHAIN_LEN)
			memcpy(chain, sqlite3_column_blob(s, 3), SLCL_CHAIN_LEN);
		if (hash && sqlite3_column_bytes(s, 4) == SLC_HASH_LEN)
			memcpy(hash, sqlite3_column_blob(s, 4), SLC_HASH_LEN);
	}
	sqlite3_reset(s);
	return out;
}

slcl_rc
slcl_reader_get(slcl_reader *r, const uint8_t *key, size_t klen, int *found,
				const uint8_t **val, size_t *vlen)
{
	sqlite3_stmt *s = r->get;
	int			rc;

	*found = 0;
	if (klen > SLC_KEY_MAX)
		return SLCL_OK;			/* no such key can exist */
	sqlite3_bind_blob(s, 1, key ? (const void *) key : "", (int) klen, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
	{
		size_t		n = (size_t) sqlite3_column_bytes(s, 0);

		r->val.len = 0;
		if (buf_put(&r->val, sqlite3_column_blob(s, 0), n) != 0)
		{
			sqlite3_reset(s);
			return rfail(r, SLCL_ERR_NOMEM, "out of memory");
		}
		*found = 1;
		if (val)
			*val = r->val.p ? r->val.p : (const uint8_t *) "";
		if (vlen)
			*vlen = n;
	}
	sqlite3_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return rdb_fail(r, "could not read an item");
	if (!*found)
	{
		/* absent, or no state at all? */
		slcl_rc		p = slcl_reader_position(r, NULL, NULL, NULL, NULL);

		if (p != SLCL_OK)
			return p;
	}
	return SLCL_OK;
}

slcl_rc
slcl_reader_scan(slcl_reader *r, uint8_t ns, const uint8_t *from, size_t fromlen,
				 const uint8_t *to, size_t tolen, slcl_item_fn fn, void *arg)
{
	char		sql[256];
	sqlite3_stmt *s = NULL;
	int			rc;
	int			p = 2;

	snprintf(sql, sizeof(sql),
			 "SELECT key, val FROM item WHERE gen = (SELECT gen FROM meta WHERE id = 1) AND ns = ?1%s%s "
			 "ORDER BY key",
			 from ? " AND key >= ?2" : "", to ? (from ? " AND key < ?3" : " AND key < ?2") : "");
	if (sqlite3_prepare_v2(r->db, sql, -1, &s, NULL) != SQLITE_OK)
		return rdb_fail(r, "could not prepare a scan");
	sqlite3_bind_int(s, 1, ns);
	if (from)
		sqlite3_bind_blob(s, p++, fromlen ? (const void *) from : "", (int) fromlen, SQLITE_STATIC);
	if (to)
		sqlite3_bind_blob(s, p, tolen ? (const void *) to : "", (int) tolen, SQLITE_STATIC);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
	{
		const uint8_t *k = sqlite3_column_blob(s, 0);
		size_t		kl = (size_t) sqlite3_column_bytes(s, 0);
		const uint8_t *v = sqlite3_column_blob(s, 1);
		size_t		vl = (size_t) sqlite3_column_bytes(s, 1);

		if (fn(arg, k ? k : (const uint8_t *) "", kl, v ? v : (const uint8_t *) "", vl) != 0)
		{
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return rdb_fail(r, "could not scan the items");
	return SLCL_OK;
}

/* ------------------------------------------------------------------------
 * The rebased view: the state plus the pending mutations (client_write.c)
 */

/* One change of a pending mutation; ord orders them (seq, then position). */
typedef struct ov_item
{
	const uint8_t *key;
	size_t		klen;
	const uint8_t *val;			/* NULL: deleted */
	size_t		vlen;
	size_t		ord;
} ov_item;

typedef struct overlay
{
	buf			deltas;			/* the queue's deltas, u32 length-prefixed */
	ov_item    *items;
	size_t		n;
} overlay;

/* keys in bytea order: memcmp, a prefix first */
static int
key_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
	int			d = memcmp(a, b, al < bl ? al : bl);

	if (d != 0)
		return d;
	return al < bl ? -1 : (al > bl ? 1 : 0);
}

static int
ov_item_cmp(const void *pa, const void *pb)
{
	const ov_item *a = pa;
	const ov_item *b = pb;
	int			d = key_cmp(a->key, a->klen, b->key, b->klen);

	if (d != 0)
		return d;
	return a->ord < b->ord ? -1 : (a->ord > b->ord ? 1 : 0);
}

/*
 * Load the changes of the queue (in the open snapshot) with from <= key <
 * to (NULL: unbounded), sorted by key, the last change of each key only.
 * Without queue.db (a replica an earlier version wrote): replica.db's own
 * pending table, or none (a replica older than the queue): an empty
 * overlay.
 */
static slcl_rc
overlay_load(slcl_reader *r, const uint8_t *from, size_t fromlen, const uint8_t *to, size_t tolen,
			 overlay *o)
{
	sqlite3_stmt *s = NULL;
	int			rc;
	size_t		cap = 0,
				off = 0,
				ord = 0,
				out = 0;

	memset(o, 0, sizeof(*o));
	if (r->has_q)
	{
		int64_t		wm = -1;

		/* the client's own watermark in the state: rows up to it are in the state */
		if (r->client_id[0] != '\0')
		{
			if (sqlite3_prepare_v2(r->db, "SELECT val FROM item WHERE gen = (SELECT gen FROM meta WHERE id = 1) "
								   "AND ns = 2 AND key = ?1", -1, &s, NULL) != SQLITE_OK)
				return rdb_fail(r, "could not read the client's watermark");
			sqlite3_bind_blob(s, 1, r->client_id, (int) strlen(r->client_id), SQLITE_STATIC);
			rc = sqlite3_step(s);
			if (rc == SQLITE_ROW && sqlite3_column_bytes(s, 0) == SLC_WATERMARK_LEN)
			{
				int64_t		lsn;

				slc_watermark_decode(sqlite3_column_blob(s, 0), &wm, &lsn);
			}
			sqlite3_finalize(s);
			if (rc != SQLITE_ROW && rc != SQLITE_DONE)
				return rdb_fail(r, "could not read the client's watermark");
		}
		if (sqlite3_prepare_v2(r->db, "SELECT delta FROM q.pending WHERE seq > ?1 ORDER BY seq", -1, &s, NULL) != SQLITE_OK)
			return rdb_fail(r, "could not read the queue");
		sqlite3_bind_int64(s, 1, wm);
	}
	else if (sqlite3_prepare_v2(r->db, "SELECT delta FROM pending ORDER BY seq", -1, &s, NULL) != SQLITE_OK)
	{
		if (strstr(sqlite3_errmsg(r->db), "no such table") != NULL)
			return SLCL_OK;
		return rdb_fail(r, "could not read the queue");
	}
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
	{
		size_t		n = (size_t) sqlite3_column_bytes(s, 0);

		if (buf_lp(&o->deltas, n ? sqlite3_column_blob(s, 0) : "", n) != 0)
		{
			sqlite3_finalize(s);
			return rfail(r, SLCL_ERR_NOMEM, "out of memory");
		}
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return rdb_fail(r, "could not read the queue");
	while (off < o->deltas.len)
	{
		size_t		dl = get_u32(o->deltas.p + off);
		const uint8_t *d = o->deltas.p + off + 4;
		slc_delta_reader rd;
		slc_change	ch;
		int			more;

		off += 4 + dl;
		if (slc_delta_reader_init(&rd, d, dl, UINT32_MAX) != SLC_OK)
			return rfail(r, SLCL_ERR_IO, "replica database: a queued mutation does not decode");
		for (;;)
		{
			if (slc_delta_next(&rd, &ch, &more, NULL) != SLC_OK)
				return rfail(r, SLCL_ERR_IO, "replica database: a queued mutation does not decode");
			if (!more)
				break;
			if ((from && key_cmp(ch.key, ch.klen, from, fromlen) < 0) ||
				(to && key_cmp(ch.key, ch.klen, to, tolen) >= 0))
				continue;
			if (o->n == cap)
			{
				ov_item    *q = realloc(o->items, sizeof(ov_item) * (cap ? cap * 2 : 16));

				if (q == NULL)
					return rfail(r, SLCL_ERR_NOMEM, "out of memory");
				o->items = q;
				cap = cap ? cap * 2 : 16;
			}
			o->items[o->n].key = ch.klen ? ch.key : (const uint8_t *) "";
			o->items[o->n].klen = ch.klen;
			o->items[o->n].val = ch.is_delete ? NULL : (ch.vlen ? ch.val : (const uint8_t *) "");
			o->items[o->n].vlen = ch.vlen;
			o->items[o->n].ord = ord++;
			o->n++;
		}
	}
	if (o->n > 1)
		qsort(o->items, o->n, sizeof(ov_item), ov_item_cmp);
	/* keep the last change of each key */
	for (size_t i = 0; i < o->n; i++)
	{
		if (i + 1 < o->n && key_cmp(o->items[i].key, o->items[i].klen,
									o->items[i + 1].key, o->items[i + 1].klen) == 0)
			continue;
		o->items[out++] = o->items[i];
	}
	o->n = out;
	return SLCL_OK;
}

static void
overlay_free(overlay *o)
{
	free(o->deltas.p);
	free(o->items);
}

/* Run fn in the reader's snapshot: begin's, or one of its own. */
static slcl_rc
in_snapshot_begin(slcl_reader *r, int *own)
{
	*own = 0;
	if (r->in_snap)
		return SLCL_OK;
	if (slcl_reader_begin(r) != SLCL_OK)
		return SLCL_ERR_IO;
	*own = 1;
	return SLCL_OK;
}

slcl_rc
slcl_reader_get_rebased(slcl_reader *r, const uint8_t *key, size_t klen, int *found,
						const uint8_t **val, size_t *vlen)
{
	overlay		o;
	int			own;
	slcl_rc		rc;

	*found = 0;
	if (klen > SLC_KEY_MAX)
		return SLCL_OK;
	rc = in_snapshot_begin(r, &own);
	if (rc != SLCL_OK)
		return rc;
	if (key == NULL)
		key = (const uint8_t *) "";
	rc = overlay_load(r, key, klen, NULL, 0, &o);
	if (rc == SLCL_OK)
	{
		if (o.n > 0 && key_cmp(o.items[0].key, o.items[0].klen, key, klen) == 0)
		{
			/* the queue decides: the state's value does not matter */
			if (o.items[0].val != NULL)
			{
				r->val.len = 0;
				if (buf_put(&r->val, o.items[0].val, o.items[0].vlen) != 0)
					rc = rfail(r, SLCL_ERR_NOMEM, "out of memory");
				else
				{
					*found = 1;
					if (val)
						*val = r->val.p ? r->val.p : (const uint8_t *) "";
					if (vlen)
						*vlen = o.items[0].vlen;
				}
			}
			else
				rc = slcl_reader_position(r, NULL, NULL, NULL, NULL);
		}
		else
			rc = slcl_reader_get(r, key, klen, found, val, vlen);
	}
	overlay_free(&o);
	if (own)
		slcl_reader_end(r);
	return rc;
}

typedef struct merge_ctx
{
	overlay    *o;
	size_t		next;			/* first overlay item not yet passed */
	slcl_item_fn fn;
	void	   *arg;
	int			stopped;
} merge_ctx;

/* Emit the overlay's values with keys below (key, klen) (all: key NULL). */
static int
merge_upto(merge_ctx *m, const uint8_t *key, size_t klen)
{
	while (m->next < m->o->n)
	{
		ov_item    *it = &m->o->items[m->next];

		if (key && key_cmp(it->key, it->klen, key, klen) >= 0)
			break;
		m->next++;
		if (it->val && m->fn(m->arg, it->key, it->klen, it->val, it->vlen) != 0)
			return m->stopped = 1;
	}
	return 0;
}

static int
merge_item(void *arg, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
	merge_ctx  *m = arg;

	if (merge_upto(m, key, klen))
		return 1;
	if (m->next < m->o->n &&
		key_cmp(m->o->items[m->next].key, m->o->items[m->next].klen, key, klen) == 0)
	{
		ov_item    *it = &m->o->items[m->next++];

		/* the queue's change replaces the state's item */
		if (it->val && m->fn(m->arg, it->key, it->klen, it->val, it->vlen) != 0)
			return m->stopped = 1;
		return 0;
	}
	if (m->fn(m->arg, key, klen, val, vlen) != 0)
		return m->stopped = 1;
	return 0;
}

slcl_rc
slcl_reader_scan_rebased(slcl_reader *r, const uint8_t *from, size_t fromlen,
						 const uint8_t *to, size_t tolen, slcl_item_fn fn, void *arg)
{
	overlay		o;
	merge_ctx	m;
	int			own;
	slcl_rc		rc;

	rc = in_snapshot_begin(r, &own);
	if (rc != SLCL_OK)
		return rc;
	rc = overlay_load(r, from, fromlen, to, tolen, &o);
	if (rc == SLCL_OK)
	{
		memset(&m, 0, sizeof(m));
		m.o = &o;
		m.fn = fn;
		m.arg = arg;
		rc = slcl_reader_scan(r, SLC_NS_DATA, from, fromlen, to, tolen, merge_item, &m);
		if (rc == SLCL_OK && !m.stopped)
			(void) merge_upto(&m, NULL, 0);
	}
	overlay_free(&o);
	if (own)
		slcl_reader_end(r);
	return rc;
}
