/*
 * client_follow.c
 *
 * Following the document (PROTOCOL.md sections 3 to 5): slcl_sync reads
 * the log after the local position page by page, applies and logs each
 * entry, checks an end-log marker against the local running hash and
 * switches to the next log when they match, and turns to a download when
 * the protocol says so.
 *
 * Owns: slcl_sync and the read loop, the decision that a download is
 * needed (and why), and when to checkpoint.
 * Must never: apply an entry out of LSN order, act on a marker before the
 * entries before it are durable, switch logs without a byte-for-byte hash
 * match, or acknowledge a page before it is durable.
 */
#define _GNU_SOURCE
#include "client_int.h"

static void
want_download(slcl_client *c, slcl_reason r)
{
	if (c->need_download == SLCL_DL_NONE)
		c->need_download = r;
}

/* One page.  *rows gets the number of rows processed (0: caught up). */
static slcl_rc
read_page(slcl_client *c, int *rows)
{
	char		lsnbuf[32],
				entbuf[16],
				bytbuf[16];
	const char *vals[5];
	PGresult   *res;
	slcl_rc		rc;
	char		st[6];
	int			n;

	*rows = 0;
	snprintf(lsnbuf, sizeof(lsnbuf), "%lld", (long long) c->lsn);
	snprintf(entbuf, sizeof(entbuf), "%d", c->opt.page_entries);
	snprintf(bytbuf, sizeof(bytbuf), "%d", c->opt.page_bytes);
	vals[0] = c->doc;
	vals[1] = c->log_id;
	vals[2] = lsnbuf;
	vals[3] = entbuf;
	vals[4] = bytbuf;
	res = slcli_query(c, "SELECT lsn, kind, delta, client_id, client_seq, next_log_id, snapshot_hash "
					  "FROM synclog.read($1, $2, $3::bigint, $4::integer, $5::integer)",
					  5, vals, NULL, NULL, &rc, st);
	if (res == NULL)
	{
		slcl_reason r = slcli_reason_of(st);

		if (r == SLCL_DL_NONE && strcmp(st, "22023") == 0)
			r = SLCL_DL_INCONSISTENT;
		if (r != SLCL_DL_NONE)
		{
			want_download(c, r);
			return SLCL_OK;
		}
		return rc;
	}
	n = PQntuples(res);
	if (PQnfields(res) != 7)
	{
		PQclear(res);
		return slcli_fail(c, SLCL_ERR_PROTOCOL, "synclog.read returned %d columns", PQnfields(res));
	}
	for (int i = 0; i < n && c->need_download == SLCL_DL_NONE; i++)
	{
		int64_t		lsn;
		const char *kind = PQgetvalue(res, i, 1);
		int			rb = slcli_row_bytes(res, i);

		if (slcli_col_i8(res, i, 0, &lsn) != 0)
		{
			PQclear(res);
			return slcli_fail(c, SLCL_ERR_PROTOCOL, "synclog.read returned a NULL lsn");
		}
		c->stats.bytes_log += rb;
		(*rows)++;
		if (strcmp(kind, "delta") == 0)
		{
			const char *cid = NULL;
			size_t		cidlen = 0;
			int64_t		seq = 0;
			slc_status	s;

			if (lsn != c->lsn + 1)
			{
				want_download(c, SLCL_DL_INCONSISTENT);
				break;
			}
			if (!PQgetisnull(res, i, 3))
			{
				cid = PQgetvalue(res, i, 3);
				cidlen = (size_t) PQgetlength(res, i, 3);
				if (slcli_col_i8(res, i, 4, &seq) != 0)
				{
					PQclear(res);
					return slcli_fail(c, SLCL_ERR_PROTOCOL, "entry %lld has a client id but no client_seq",
									  (long long) lsn);
				}
			}
			s = slc_state_apply_any(c->state, (const uint8_t *) PQgetvalue(res, i, 2),
									(size_t) PQgetlength(res, i, 2), lsn, cid, cidlen, seq);
			if (s != SLC_OK)
			{
				PQclear(res);
				if (s == SLC_ERR_NOMEM)
					return slcli_fail(c, SLCL_ERR_NOMEM, "out of memory");
				return slcli_fail(c, SLCL_ERR_PROTOCOL, "entry %lld of log %s does not decode: %s",
								  (long long) lsn, c->log_id, slc_status_message(s));
			}
			if (slcli_rec_entry(&c->rec, lsn, seq, cid, cidlen, (const uint8_t *) PQgetvalue(res, i, 2),
								(size_t) PQgetlength(res, i, 2)) != 0)
			{
				PQclear(res);
				return slcli_fail(c, SLCL_ERR_NOMEM, "out of memory");
			}
			c->lsn = lsn;
			rc = slcli_log_append(c);
			if (rc != SLCL_OK)
			{
				PQclear(res);
				return rc;
			}
			c->stats.entries_applied++;
		}
		else if (strcmp(kind, "end") == 0)
		{
			char		next[SLCL_LOG_ID_MAX + 1];
			uint8_t		local[SLC_HASH_LEN];
			const uint8_t *server;
			int			hl;
			int			ok;
			slcl_event	ev;
			char		lhx[2 * SLC_HASH_LEN + 1],
						shx[2 * SLC_HASH_LEN + 1];

			c->stats.bytes_marker += rb;
			if (lsn != c->lsn)
			{
				want_download(c, SLCL_DL_INCONSISTENT);
				break;
			}
			hl = PQgetisnull(res, i, 6) ? 0 : PQgetlength(res, i, 6);
			server = (const uint8_t *) PQgetvalue(res, i, 6);
			if (slcli_col_log_id(res, i, 5, next) != 0 || hl < 1)
			{
				PQclear(res);
				return slcli_fail(c, SLCL_ERR_PROTOCOL, "malformed end-log marker in log %s", c->log_id);
			}
			if (server[0] != SLC_HASH_ALGO_XXH3SUM || hl != SLC_HASH_LEN)
			{
				/* we cannot check a hash of an unknown algorithm */
				want_download(c, SLCL_DL_BAD_HASH_ALGO);
				break;
			}
			/* all entries before the marker must be durable before we act on it */
			rc = slcli_log_sync(c);
			if (rc != SLCL_OK)
			{
				PQclear(res);
				return rc;
			}
			slc_hash_serialize(slc_state_hash(c->state), local);
			ok = memcmp(local, server, SLC_HASH_LEN) == 0;
			slcli_hex(local, SLC_HASH_LEN, lhx);
			slcli_hex(server, SLC_HASH_LEN, shx);
			memset(&ev, 0, sizeof(ev));
			ev.type = SLCL_EV_MARKER;
			ev.log_id = c->log_id;
			ev.next_log_id = next;
			ev.lsn = lsn;
			ev.ok = ok;
			ev.local_hash = local;
			ev.server_hash = server;
			ev.bytes = rb;
			ev.total_rows = ev.total_bytes = -1;
			if (ok)
				slcli_emit(c, &ev, "log=%s lsn=%lld next=%s hash=ok %s", c->log_id, (long long) lsn, next, lhx);
			else
				slcli_emit(c, &ev, "log=%s lsn=%lld next=%s hash=MISMATCH local=%s server=%s",
						   c->log_id, (long long) lsn, next, lhx, shx);
			if (!ok)
			{
				c->stats.markers_mismatch++;
				want_download(c, SLCL_DL_MISMATCH);
				break;
			}
			slcli_debug_hook(c, "switch-verified");
			if (slcli_rec_switch(&c->rec, lsn, local, c->log_id, next) != 0)
			{
				PQclear(res);
				return slcli_fail(c, SLCL_ERR_NOMEM, "out of memory");
			}
			rc = slcli_log_append(c);
			if (rc == SLCL_OK)
				rc = slcli_log_sync(c);
			if (rc != SLCL_OK)
			{
				PQclear(res);
				return rc;
			}
			slcli_debug_hook(c, "switch-logged");
			ev.type = SLCL_EV_SWITCH;
			slcli_emit(c, &ev, "from=%s to=%s lsn=%lld marker_bytes=%d snapshot_bytes=0",
					   c->log_id, next, (long long) lsn, rb);
			snprintf(c->log_id, sizeof(c->log_id), "%s", next);
			c->stats.switches_marker++;
			rc = slcli_maybe_ack(c, 1);
			if (rc != SLCL_OK)
			{
				PQclear(res);
				return rc;
			}
		}
		else
		{
			PQclear(res);
			return slcli_fail(c, SLCL_ERR_PROTOCOL, "unknown row kind \"%s\" from synclog.read", kind);
		}
	}
	PQclear(res);
	if (c->log_dirty)
		slcli_debug_hook(c, "page-applied");
	rc = slcli_log_sync(c);
	if (rc != SLCL_OK)
		return rc;
	if (c->need_download == SLCL_DL_NONE && c->log_bytes >= c->opt.checkpoint_bytes &&
		(uint64_t) c->log_bytes >= slc_state_hash(c->state)->bytes / 2)
	{
		rc = slcli_checkpoint(c, 0);
		if (rc != SLCL_OK)
			return rc;
	}
	return SLCL_OK;
}

slcl_rc
slcl_sync(slcl_client *c)
{
	slcl_rc		rc;

	c->err[0] = '\0';
	rc = slcli_ensure_conn(c);
	if (rc != SLCL_OK)
		return rc;
	for (;;)
	{
		int			rows;

		if (slcli_interrupted(c))
			return slcli_fail(c, SLCL_ERR_INTERRUPTED, "interrupted");
		if (c->downloading || !c->have_state || c->need_download != SLCL_DL_NONE)
		{
			rc = slcli_download(c);
			if (rc != SLCL_OK)
				return rc;
			continue;
		}
		rc = read_page(c, &rows);
		if (rc != SLCL_OK)
			return rc;
		if (c->need_download != SLCL_DL_NONE)
			continue;
		if (rows == 0)
			break;
		rc = slcli_maybe_ack(c, 0);
		if (rc != SLCL_OK)
			return rc;
	}
	return slcli_maybe_ack(c, 0);
}
