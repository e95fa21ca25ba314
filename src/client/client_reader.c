/*
 * client_reader.c
 *
 * Reading a replica: slcl_reader_* over a read-only SQLite connection of
 * the reader's own to dir/replica.db.  WAL mode lets it read while a
 * follower (this process or another) writes, without any lock of the
 * library: each statement reads the newest committed state, and between
 * slcl_reader_begin and slcl_reader_end every call reads the one snapshot
 * taken at begin.
 *
 * Owns: struct slcl_reader, slcl_reader_open/close/begin/end/position/
 * get/scan, and slcl_client_reader (the follower's own reader).
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
	/* a deferred transaction takes its snapshot at its first read */
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
