/*
 * client_verify.c
 *
 * slcl_verify: check a replica against itself (the running hash against a
 * hash recomputed from the stored items, each item against its stored item
 * hash) and against the server, by rebuilding the server's state at the
 * replica's position independently (the snapshot of its log plus the
 * entries up to its LSN) in a generation of its own in the replica
 * database, and comparing hash and every item in key order.  The
 * generation is deleted afterwards (or at the next open, after a crash).
 * And slcl_debug_tamper and slcl_debug_damage, which alter a replica on
 * purpose so that tests can see verification, the marker check and the
 * open check catch it.
 *
 * Owns: slcl_verify, slcl_debug_tamper, slcl_debug_damage.
 * Must never: change the live generation while verifying, hold the server's
 * state in memory (it is as large as the replica), or report the server
 * checked when a log went away before the rebuild was complete.
 */
#define _GNU_SOURCE
#include "client_int.h"

/* Delete the verification's generation (and any other garbage). */
static void
drop_gen(slcl_client *c)
{
	int			left = 1;

	while (left)
		if (slcli_store_retire(c, &left) != SLCL_OK)
			break;
}

/*
 * Compare generations a and b item by item, in key order.  *same = 1 when
 * equal; otherwise detail says the first difference.  *n counts items.
 */
static slcl_rc
compare_gens(slcl_client *c, int64_t a, int64_t b, int *same, int64_t *n, char *detail,
			 size_t detaillen)
{
	static const char *sql = "SELECT ns, key, val FROM item WHERE gen = ?1 ORDER BY ns, key";
	sqlite3_stmt *x = slcli_store_prepare(c, sql);
	sqlite3_stmt *y = slcli_store_prepare(c, sql);
	int			rx,
				ry;
	slcl_rc		rc = SLCL_OK;

	*same = 0;
	*n = 0;
	if (x == NULL || y == NULL)
	{
		sqlite3_finalize(x);
		sqlite3_finalize(y);
		return SLCL_ERR_IO;
	}
	sqlite3_bind_int64(x, 1, a);
	sqlite3_bind_int64(y, 1, b);
	for (;;)
	{
		size_t		kx,
					ky,
					vx,
					vy;

		rx = sqlite3_step(x);
		ry = sqlite3_step(y);
		if (rx != SQLITE_ROW || ry != SQLITE_ROW)
			break;
		(*n)++;
		kx = (size_t) sqlite3_column_bytes(x, 1);
		ky = (size_t) sqlite3_column_bytes(y, 1);
		vx = (size_t) sqlite3_column_bytes(x, 2);
		vy = (size_t) sqlite3_column_bytes(y, 2);
		if (sqlite3_column_int(x, 0) != sqlite3_column_int(y, 0) || kx != ky ||
			(kx && memcmp(sqlite3_column_blob(x, 1), sqlite3_column_blob(y, 1), kx) != 0))
		{
			snprintf(detail, detaillen, "item %lld: ns %d key of %zu bytes locally, ns %d key of %zu bytes on the server",
					 (long long) *n, sqlite3_column_int(x, 0), kx, sqlite3_column_int(y, 0), ky);
			goto out;
		}
		if (vx != vy || (vx && memcmp(sqlite3_column_blob(x, 2), sqlite3_column_blob(y, 2), vx) != 0))
		{
			snprintf(detail, detaillen, "item ns %d (key of %zu bytes) differs: %zu bytes local, %zu on the server",
					 sqlite3_column_int(x, 0), kx, vx, vy);
			goto out;
		}
	}
	if (rx == SQLITE_ROW || ry == SQLITE_ROW)
		snprintf(detail, detaillen, "%s has more items than the %lld both have",
				 rx == SQLITE_ROW ? "the replica" : "the server", (long long) *n);
	else if (rx != SQLITE_DONE || ry != SQLITE_DONE)
		rc = slcli_db_fail(c, "could not compare the items");
	else
		*same = 1;
out:
	sqlite3_finalize(x);
	sqlite3_finalize(y);
	return rc;
}

slcl_rc
slcl_verify(slcl_client *c, slcl_verify_result *r)
{
	slc_hash	vh;
	uint8_t		a[SLC_HASH_LEN],
				b[SLC_HASH_LEN],
				snap[SLC_HASH_LEN];
	const char *vals[5];
	int			lens[5] = {0, 0, 0, 0, 0};
	int			fmts[5] = {0, 0, 0, 0, 0};
	char		st[6];
	slcl_rc		rc;
	PGresult   *res;
	int64_t		base;
	int64_t		vgen = -1;
	char		cur_log[SLCL_LOG_ID_MAX + 1];
	int64_t		cur_base;
	buf			after = {0};
	int			have_after = 0;
	int			ok;
	char		nbuf[16],
				lsnbuf[32],
				bytbuf[16];
	const slcli_pos *p = &c->committed;

	memset(r, 0, sizeof(*r));
	if (!p->have || c->downloading || c->in_txn)
	{
		snprintf(r->detail, sizeof(r->detail), "no complete local state");
		return slcli_fail(c, SLCL_ERR_STATE, "no complete local state to verify");
	}
	rc = slcli_store_check(c, p->gen, &p->hash, NULL, &ok, r->detail, sizeof(r->detail));
	if (rc != SLCL_OK)
		return rc;
	r->local_ok = ok;
	slc_hash_serialize(&p->hash, b);

	/* where is the server? */
	vals[0] = c->doc;
	res = slcli_query(c, "SELECT log_id, base_lsn, snapshot_hash FROM synclog.current_log($1)",
					  1, vals, NULL, NULL, &rc, st);
	if (res == NULL)
		return rc;
	if (PQntuples(res) != 1 || slcli_col_log_id(res, 0, 0, cur_log) != 0 ||
		slcli_col_i8(res, 0, 1, &cur_base) != 0 || PQgetlength(res, 0, 2) != SLC_HASH_LEN)
	{
		PQclear(res);
		return slcli_fail(c, SLCL_ERR_PROTOCOL, "unexpected result from synclog.current_log");
	}
	r->at_current_base = strcmp(cur_log, p->log_id) == 0 && cur_base == p->lsn;
	if (r->at_current_base)
		r->current_hash_ok = memcmp(PQgetvalue(res, 0, 2), b, SLC_HASH_LEN) == 0;
	PQclear(res);

	/* rebuild the server's state at our position, independently, on disk */
	vals[1] = p->log_id;
	res = slcli_query(c, "SELECT base_lsn, snapshot_hash FROM synclog.snapshot_info($1, $2)",
					  2, vals, NULL, NULL, &rc, st);
	if (res == NULL)
	{
		if (slcli_reason_of(st) != SLCL_DL_NONE)
		{
			snprintf(r->detail, sizeof(r->detail), "log %s is gone on the server (%s): cannot rebuild its state at lsn %lld",
					 p->log_id, st, (long long) p->lsn);
			return SLCL_OK;
		}
		return rc;
	}
	if (PQntuples(res) != 1 || slcli_col_i8(res, 0, 0, &base) != 0 ||
		PQgetlength(res, 0, 1) != SLC_HASH_LEN)
	{
		PQclear(res);
		return slcli_fail(c, SLCL_ERR_PROTOCOL, "unexpected result from synclog.snapshot_info");
	}
	memcpy(snap, PQgetvalue(res, 0, 1), SLC_HASH_LEN);
	PQclear(res);
	slc_hash_init(&vh);
	snprintf(nbuf, sizeof(nbuf), "%d", c->opt.snapshot_rows);
	vals[3] = nbuf;
	fmts[2] = 1;
	rc = slcli_store_begin(c);
	if (rc != SLCL_OK)
		return rc;
	vgen = slcli_store_new_gen(c);
	rc = slcli_store_commit(c);
	if (rc != SLCL_OK)
		return rc;
	for (;;)
	{
		int			n;

		vals[2] = have_after ? (after.len ? (const char *) after.p : "") : NULL;
		lens[2] = have_after ? (int) after.len : 0;
		res = slcli_query(c, "SELECT key, value FROM synclog.snapshot($1, $2, $3::bytea, $4::integer)",
						  4, vals, lens, fmts, &rc, st);
		if (res == NULL)
			goto gone;
		n = PQntuples(res);
		rc = slcli_store_begin(c);
		for (int i = 0; i < n && rc == SLCL_OK; i++)
		{
			rc = slcli_store_insert(c, vgen, &vh, SLC_NS_DATA, (const uint8_t *) PQgetvalue(res, i, 0),
									PQgetlength(res, i, 0), (const uint8_t *) PQgetvalue(res, i, 1),
									PQgetlength(res, i, 1));
			after.len = 0;
			if (rc == SLCL_OK && buf_put(&after, PQgetvalue(res, i, 0), PQgetlength(res, i, 0)) != 0)
				rc = slcli_fail(c, SLCL_ERR_NOMEM, "out of memory");
			have_after = 1;
		}
		PQclear(res);
		if (rc == SLCL_OK)
			rc = slcli_store_commit(c);
		if (rc != SLCL_OK)
			goto out;
		if (n < c->opt.snapshot_rows)
			break;
	}
	res = slcli_query(c, "SELECT client_id, client_seq, client_lsn FROM synclog.snapshot_clients($1, $2)",
					  2, vals, NULL, NULL, &rc, st);
	if (res == NULL)
		goto gone;
	rc = slcli_store_begin(c);
	for (int i = 0; i < PQntuples(res) && rc == SLCL_OK; i++)
	{
		int64_t		seq = 0,
					lsn = 0;
		uint8_t		wm[SLC_WATERMARK_LEN];

		slcli_col_i8(res, i, 1, &seq);
		slcli_col_i8(res, i, 2, &lsn);
		slc_watermark_encode(seq, lsn, wm);
		rc = slcli_store_insert(c, vgen, &vh, SLC_NS_CLIENT, (const uint8_t *) PQgetvalue(res, i, 0),
								PQgetlength(res, i, 0), wm, SLC_WATERMARK_LEN);
	}
	PQclear(res);
	if (rc == SLCL_OK)
		rc = slcli_store_commit(c);
	if (rc != SLCL_OK)
		goto out;
	slc_hash_serialize(&vh, a);
	if (memcmp(a, snap, SLC_HASH_LEN) != 0)
	{
		r->server_checked = 1;
		snprintf(r->detail, sizeof(r->detail), "the server's snapshot of log %s does not match its own snapshot_hash",
				 p->log_id);
		goto out;
	}
	/* entries (base, lsn] */
	{
		int64_t		at = base;

		snprintf(bytbuf, sizeof(bytbuf), "%d", c->opt.page_bytes);
		vals[4] = bytbuf;
		while (at < p->lsn)
		{
			int			n;
			int64_t		prev = at;

			snprintf(lsnbuf, sizeof(lsnbuf), "%lld", (long long) at);
			vals[2] = lsnbuf;
			res = slcli_query(c, "SELECT lsn, kind, delta, client_id, client_seq "
							  "FROM synclog.read($1, $2, $3::bigint, $4::integer, $5::integer)",
							  5, vals, NULL, NULL, &rc, st);
			if (res == NULL)
				goto gone;
			n = PQntuples(res);
			if (n == 0)
			{
				PQclear(res);
				break;
			}
			rc = slcli_store_begin(c);
			for (int i = 0; i < n && at < p->lsn && rc == SLCL_OK; i++)
			{
				slcli_entry e = {0, NULL, 0, NULL, 0, 0};
				int			hascid = !PQgetisnull(res, i, 3);

				slcli_col_i8(res, i, 0, &e.lsn);
				if (strcmp(PQgetvalue(res, i, 1), "delta") != 0)
					break;
				if (hascid)
				{
					slcli_col_i8(res, i, 4, &e.seq);
					e.cid = PQgetvalue(res, i, 3);
					e.cidlen = (size_t) PQgetlength(res, i, 3);
				}
				e.delta = (const uint8_t *) PQgetvalue(res, i, 2);
				e.dlen = (size_t) PQgetlength(res, i, 2);
				if (e.lsn != at + 1)
					rc = slcli_fail(c, SLCL_ERR_PROTOCOL, "could not rebuild the server state at lsn %lld", (long long) e.lsn);
				else
					rc = slcli_store_apply_entry(c, vgen, &vh, &e, 0);
				if (rc == SLCL_OK)
					at = e.lsn;
			}
			PQclear(res);
			if (rc == SLCL_OK)
				rc = slcli_store_commit(c);
			if (rc != SLCL_OK)
				goto out;
			if (at == prev)
				break;
		}
		if (at != p->lsn)
		{
			r->server_checked = 1;
			snprintf(r->detail, sizeof(r->detail), "the server's log %s ends at lsn %lld, before the replica's lsn %lld",
					 p->log_id, (long long) at, (long long) p->lsn);
			goto out;
		}
	}
	r->server_checked = 1;
	slc_hash_serialize(&vh, a);
	if (memcmp(a, b, SLC_HASH_LEN) != 0)
	{
		snprintf(r->detail, sizeof(r->detail), "hash differs from the server's state at log %s lsn %lld",
				 p->log_id, (long long) p->lsn);
		goto out;
	}
	rc = compare_gens(c, p->gen, vgen, &ok, &r->items, r->detail, sizeof(r->detail));
	if (rc != SLCL_OK || !ok)
		goto out;
	r->server_ok = 1;
	snprintf(r->detail, sizeof(r->detail), "server state at log %s lsn %lld rebuilt from its snapshot (base %lld) and %lld entries: hash and %lld items equal",
			 p->log_id, (long long) p->lsn, (long long) base, (long long) (p->lsn - base),
			 (long long) r->items);
	goto out;

gone:
	if (slcli_reason_of(st) != SLCL_DL_NONE)
	{
		rc = SLCL_OK;
		r->server_checked = 0;
		snprintf(r->detail, sizeof(r->detail), "log %s went away on the server (%s) while verifying",
				 p->log_id, st);
	}
out:
	slcli_store_rollback(c);
	free(after.p);
	if (vgen >= 0)
		drop_gen(c);
	return rc;
}

/* The value of a live data item into *out; 1 found, 0 not, -1 error. */
static int
live_value(slcl_client *c, const uint8_t *key, size_t klen, buf *out, uint8_t *first_key,
		   size_t *first_klen)
{
	sqlite3_stmt *s;
	int			rc;
	int			found = 0;

	if (key)
		s = slcli_store_prepare(c, "SELECT key, val FROM item WHERE gen = ?1 AND ns = 1 AND key = ?2");
	else
		s = slcli_store_prepare(c, "SELECT key, val FROM item WHERE gen = ?1 AND ns = 1 ORDER BY key LIMIT 1");
	if (s == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, c->committed.gen);
	if (key)
		sqlite3_bind_blob(s, 2, key, (int) klen, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
	{
		size_t		kl = (size_t) sqlite3_column_bytes(s, 0);

		found = 1;
		out->len = 0;
		if (buf_put(out, sqlite3_column_blob(s, 1), (size_t) sqlite3_column_bytes(s, 1)) != 0)
			found = -1;
		if (first_key && kl <= SLC_KEY_MAX)
		{
			memcpy(first_key, kl ? sqlite3_column_blob(s, 0) : "", kl);
			*first_klen = kl;
		}
	}
	else if (rc != SQLITE_DONE)
	{
		slcli_db_fail(c, "could not read an item");
		found = -1;
	}
	sqlite3_finalize(s);
	return found;
}

slcl_rc
slcl_debug_tamper(slcl_client *c, char *what, size_t whatlen)
{
	/* a key no writer uses, so that no later entry can mask the damage */
	static const uint8_t key[] = "\xffsynclog-tamper";
	buf			old = {0};
	uint8_t		val[64];
	size_t		vlen = 1;
	int			f;
	slcl_rc		rc;

	if (!c->committed.have || c->downloading)
		return slcli_fail(c, SLCL_ERR_STATE, "no complete local state to tamper with");
	val[0] = 'x';
	f = live_value(c, key, sizeof(key) - 1, &old, NULL, NULL);
	if (f < 0)
	{
		free(old.p);
		return SLCL_ERR_IO;
	}
	if (f == 1 && old.len < sizeof(val))
	{
		memcpy(val, old.len ? old.p : (uint8_t *) "x", old.len ? old.len : 1);
		val[0] ^= 0x01;
		vlen = old.len ? old.len : 1;
	}
	free(old.p);
	rc = slcli_store_begin(c);
	if (rc == SLCL_OK)
		rc = slcli_store_put(c, c->cur.gen, &c->cur.hash, SLC_NS_DATA, key, sizeof(key) - 1, val, vlen, 1);
	if (rc == SLCL_OK)
		rc = slcli_store_commit(c);
	else
		slcli_store_rollback(c);
	if (rc == SLCL_OK)
		snprintf(what, whatlen, "set the data key \"\\xffsynclog-tamper\" at log %s lsn %lld",
				 c->committed.log_id, (long long) c->committed.lsn);
	return rc;
}

slcl_rc
slcl_debug_damage(slcl_client *c, char *what, size_t whatlen)
{
	uint8_t		key[SLC_KEY_MAX];
	size_t		klen = 0;
	buf			val = {0};
	int			f;
	sqlite3_stmt *s;
	int			rc;

	if (!c->committed.have || c->downloading)
		return slcli_fail(c, SLCL_ERR_STATE, "no complete local state to damage");
	f = live_value(c, NULL, 0, &val, key, &klen);
	if (f <= 0)
	{
		free(val.p);
		return f < 0 ? SLCL_ERR_IO : slcli_fail(c, SLCL_ERR_STATE, "no data item to damage");
	}
	if (val.len == 0)
		buf_u8(&val, 0x20);
	else
		val.p[val.len / 2] ^= 0x20;
	/* the value only: the item hash and the running hash stay as they were */
	s = slcli_store_prepare(c, "UPDATE item SET val = ?3 WHERE gen = ?1 AND ns = 1 AND key = ?2");
	if (s == NULL)
	{
		free(val.p);
		return SLCL_ERR_IO;
	}
	sqlite3_bind_int64(s, 1, c->committed.gen);
	sqlite3_bind_blob(s, 2, klen ? (const void *) key : "", (int) klen, SQLITE_STATIC);
	sqlite3_bind_blob(s, 3, val.p ? (const void *) val.p : "", (int) val.len, SQLITE_STATIC);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	free(val.p);
	if (rc != SQLITE_DONE)
		return slcli_db_fail(c, "could not damage an item");
	snprintf(what, whatlen, "flipped a bit of the value of the first data item (key of %zu bytes) at log %s lsn %lld",
			 klen, c->committed.log_id, (long long) c->committed.lsn);
	return SLCL_OK;
}
