/*
 * client_follow.c
 *
 * Following the document (PROTOCOL.md sections 3 to 5): slcl_sync reads
 * the log after the local position page by page, applies each entry to
 * the replica database in one transaction per page (client_store.c),
 * checks an end-log marker against the local running hash and switches to
 * the next log when they match, and turns to client_repair.c (range
 * repair, catch-up or download) when the protocol says so or sync_cost
 * finds the log dearer than a catch-up.
 *
 * Owns: slcl_sync (reading, then the queue: client_write.c) and the read loop, the decision that a download is
 * needed (and why).
 * Must never: apply an entry out of LSN order, act on a marker before the
 * entries before it are committed, switch logs without a byte-for-byte
 * hash match, or acknowledge a page before it is committed.
 */
#define _GNU_SOURCE
#include "client_int.h"

static void
want_download(slcl_client *c, slcl_reason r)
{
	if (c->need_download == SLCL_DL_NONE)
		c->need_download = r;
}

/*
 * A position reached by protocol version 1 (or converted from an old
 * replica) has no chain value: take the server's once, unverified, as
 * version 1 trusted every position (PROTOCOL.md section 4a), and commit it.
 */
static slcl_rc
adopt_chain(slcl_client *c)
{
	char		lsnbuf[32];
	const char *vals[3];
	PGresult   *res;
	slcl_rc		rc;
	char		st[6];
	uint8_t		chain[SLCL_CHAIN_LEN];

	snprintf(lsnbuf, sizeof(lsnbuf), "%lld", (long long) c->cur.lsn);
	vals[0] = c->doc;
	vals[1] = c->cur.log_id;
	vals[2] = lsnbuf;
	res = slcli_query(c, "SELECT synclog.chain_at($1, $2, $3::bigint)", 3, vals, NULL, NULL, &rc, st);
	if (res == NULL)
	{
		slcl_reason r = slcli_position_reason(st);

		if (r == SLCL_DL_NONE)
			return rc;
		want_download(c, r);
		return SLCL_OK;
	}
	if (PQntuples(res) != 1 || PQgetlength(res, 0, 0) != SLCL_CHAIN_LEN)
	{
		PQclear(res);
		return slcli_fail(c, SLCL_ERR_PROTOCOL, "malformed chain value of log %s", c->cur.log_id);
	}
	memcpy(chain, PQgetvalue(res, 0, 0), SLCL_CHAIN_LEN);
	PQclear(res);
	rc = slcli_store_begin(c);
	if (rc == SLCL_OK)
		rc = slcli_store_set_position(c, c->cur.log_id, c->cur.lsn, chain);
	if (rc == SLCL_OK)
		rc = slcli_store_commit(c);
	if (rc == SLCL_OK)
		slcli_emit_simple(c, SLCL_EV_WARNING, "log=%s lsn=%lld: took the server's chain value for a position reached by protocol version 1",
						  c->cur.log_id, (long long) c->cur.lsn);
	return rc;
}

/* One page.  *rows gets the number of rows processed (0: caught up).  The
 * entries are applied in the open transaction; the caller commits. */
static slcl_rc
read_page(slcl_client *c, int *rows)
{
	char		lsnbuf[32],
				entbuf[16],
				bytbuf[16];
	const char *vals[6];
	int			lens[6] = {0, 0, 0, SLCL_CHAIN_LEN, 0, 0};
	int			fmts[6] = {0, 0, 0, 1, 0, 0};
	PGresult   *res;
	slcl_rc		rc;
	char		st[6];
	int			n;
	int			v2 = c->proto >= 2;
	int			col_next = v2 ? 8 : 5;
	int			col_hash = col_next + 1;
	int			open_group = 0;	/* entries of a group applied, its end not yet */

	*rows = 0;
	if (v2 && !c->cur.chain_known)
	{
		rc = adopt_chain(c);
		if (rc != SLCL_OK || c->need_download != SLCL_DL_NONE)
			return rc;
	}
	snprintf(lsnbuf, sizeof(lsnbuf), "%lld", (long long) c->cur.lsn);
	snprintf(entbuf, sizeof(entbuf), "%d", c->opt.page_entries);
	snprintf(bytbuf, sizeof(bytbuf), "%d", c->opt.page_bytes);
	vals[0] = c->doc;
	vals[1] = c->cur.log_id;
	vals[2] = lsnbuf;
	if (v2)
	{
		/* PROTOCOL.md section 3a: the position with its chain value */
		vals[3] = (const char *) c->cur.chain;
		vals[4] = entbuf;
		vals[5] = bytbuf;
		/* compressed deltas as the server stores them (PROTOCOL.md section 10) */
		res = slcli_query(c, "SELECT lsn, kind, delta, client_id, client_seq, chain, group_lsn, "
						  "group_end, next_log_id, snapshot_hash "
						  "FROM synclog.read2($1, $2, $3::bigint, $4::bytea, $5::integer, $6::integer, "
						  "'{zstd}')",
						  6, vals, lens, fmts, &rc, st);
	}
	else
	{
		vals[3] = entbuf;
		vals[4] = bytbuf;
		res = slcli_query(c, "SELECT lsn, kind, delta, client_id, client_seq, next_log_id, snapshot_hash "
						  "FROM synclog.read($1, $2, $3::bigint, $4::integer, $5::integer)",
						  5, vals, NULL, NULL, &rc, st);
	}
	if (res == NULL)
	{
		slcl_reason r = slcli_position_reason(st);

		if (r != SLCL_DL_NONE)
		{
			want_download(c, r);
			return SLCL_OK;
		}
		return rc;
	}
	n = PQntuples(res);
	if (PQnfields(res) != (v2 ? 10 : 7))
	{
		int			nf = PQnfields(res);

		PQclear(res);
		return slcli_fail(c, SLCL_ERR_PROTOCOL, "synclog.read returned %d columns", nf);
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
			slcli_entry e = {lsn, NULL, 0, NULL, 0, 0};
			uint8_t		chain[SLCL_CHAIN_LEN];
			int			group_end;
			uint8_t    *owned = NULL;	/* a compressed delta, decoded */

			if (lsn != c->cur.lsn + 1)
			{
				want_download(c, SLCL_DL_INCONSISTENT);
				break;
			}
			if (!PQgetisnull(res, i, 3))
			{
				e.cid = PQgetvalue(res, i, 3);
				e.cidlen = (size_t) PQgetlength(res, i, 3);
				if (slcli_col_i8(res, i, 4, &e.seq) != 0)
				{
					PQclear(res);
					return slcli_fail(c, SLCL_ERR_PROTOCOL, "entry %lld has a client id but no client_seq",
									  (long long) lsn);
				}
			}
			e.delta = (const uint8_t *) PQgetvalue(res, i, 2);
			e.dlen = (size_t) PQgetlength(res, i, 2);
			if (v2)
			{
				/*
				 * A version 2 (compressed) delta becomes its version 1 bytes,
				 * over which the chain value and the state are defined; the
				 * decoder never allocates more than the announced length.
				 */
				size_t		off = 0;
				slc_status	zs = slc_delta_to_v1(NULL, e.delta, e.dlen, SLC_ZIP_RAW_MAX,
												 UINT32_MAX, &e.delta, &e.dlen, &owned, &off);

				if (zs != SLC_OK)
				{
					PQclear(res);
					if (zs == SLC_ERR_NOMEM)
						return slcli_fail(c, SLCL_ERR_NOMEM, "out of memory");
					return slcli_fail(c, SLCL_ERR_PROTOCOL, "entry %lld of log %s: compressed delta does not decode: %s at byte %zu",
									  (long long) lsn, c->cur.log_id, slc_status_message(zs), off);
				}

				/*
				 * PROTOCOL.md section 4a: our own chain value, which must be
				 * the server's; the group ends where the server says.
				 */
				if (PQgetlength(res, i, 5) != SLCL_CHAIN_LEN || PQgetlength(res, i, 7) != 1)
				{
					free(owned);
					PQclear(res);
					return slcli_fail(c, SLCL_ERR_PROTOCOL, "entry %lld of log %s has a malformed chain value or group end",
									  (long long) lsn, c->cur.log_id);
				}
				slc_chain_next(c->cur.chain, lsn, e.delta, e.dlen, e.cid, e.cidlen,
							   e.cid ? e.seq : -1, chain);
				if (memcmp(chain, PQgetvalue(res, i, 5), SLCL_CHAIN_LEN) != 0)
				{
					char		ours[2 * SLCL_CHAIN_LEN + 1],
								theirs[2 * SLCL_CHAIN_LEN + 1];

					slcli_hex(chain, SLCL_CHAIN_LEN, ours);
					slcli_hex((const uint8_t *) PQgetvalue(res, i, 5), SLCL_CHAIN_LEN, theirs);
					free(owned);
					PQclear(res);
					return slcli_fail(c, SLCL_ERR_PROTOCOL, "entry %lld of log %s: chain value %s, the server says %s",
									  (long long) lsn, c->cur.log_id, ours, theirs);
				}
				group_end = PQgetvalue(res, i, 7)[0] != 0;
			}
			else
			{
				/* protocol version 1: every entry is a group of its own */
				group_end = 1;
			}
			rc = slcli_store_begin(c);
			if (rc == SLCL_OK)
				rc = slcli_store_apply_entry(c, c->cur.gen, &c->cur.hash, &e, group_end);
			free(owned);
			owned = NULL;
			if (rc == SLCL_OK)
				rc = slcli_store_set_position(c, c->cur.log_id, lsn, v2 ? chain : NULL);
			open_group = !group_end;
			if (rc != SLCL_OK)
			{
				PQclear(res);
				if (rc == SLCL_ERR_PROTOCOL)
				{
					char		why[sizeof(c->err)];

					memcpy(why, c->err, sizeof(why));
					return slcli_fail(c, rc, "log %s: %s", c->cur.log_id, why);
				}
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
			if (lsn != c->cur.lsn || open_group)
			{
				want_download(c, SLCL_DL_INCONSISTENT);
				break;
			}
			hl = PQgetisnull(res, i, col_hash) ? 0 : PQgetlength(res, i, col_hash);
			server = (const uint8_t *) PQgetvalue(res, i, col_hash);
			if (v2 && (PQgetlength(res, i, 5) != SLCL_CHAIN_LEN ||
					   memcmp(PQgetvalue(res, i, 5), c->cur.chain, SLCL_CHAIN_LEN) != 0))
			{
				PQclear(res);
				return slcli_fail(c, SLCL_ERR_PROTOCOL, "the end-log marker of log %s carries another chain value than its last entry",
								  c->cur.log_id);
			}
			if (slcli_col_log_id(res, i, col_next, next) != 0 || hl < 1)
			{
				PQclear(res);
				return slcli_fail(c, SLCL_ERR_PROTOCOL, "malformed end-log marker in log %s", c->cur.log_id);
			}
			if (server[0] != SLC_HASH_ALGO_XXH3SUM || hl != SLC_HASH_LEN)
			{
				/* we cannot check a hash of an unknown algorithm */
				want_download(c, SLCL_DL_BAD_HASH_ALGO);
				break;
			}
			/* all entries before the marker must be committed before we act on it */
			rc = slcli_store_commit(c);
			if (rc != SLCL_OK)
			{
				PQclear(res);
				return rc;
			}
			slc_hash_serialize(&c->cur.hash, local);
			ok = memcmp(local, server, SLC_HASH_LEN) == 0;
			slcli_hex(local, SLC_HASH_LEN, lhx);
			slcli_hex(server, SLC_HASH_LEN, shx);
			memset(&ev, 0, sizeof(ev));
			ev.type = SLCL_EV_MARKER;
			ev.log_id = c->cur.log_id;
			ev.next_log_id = next;
			ev.lsn = lsn;
			ev.ok = ok;
			ev.local_hash = local;
			ev.server_hash = server;
			ev.bytes = rb;
			ev.total_rows = ev.total_bytes = -1;
			if (ok)
				slcli_emit(c, &ev, "log=%s lsn=%lld next=%s hash=ok %s", c->cur.log_id, (long long) lsn, next, lhx);
			else
				slcli_emit(c, &ev, "log=%s lsn=%lld next=%s hash=MISMATCH local=%s server=%s",
						   c->cur.log_id, (long long) lsn, next, lhx, shx);
			if (!ok)
			{
				c->stats.markers_mismatch++;
				want_download(c, SLCL_DL_MISMATCH);
				break;
			}
			slcli_debug_hook(c, "switch-verified");
			{
				char		from[SLCL_LOG_ID_MAX + 1];

				/* the switch and the position in the next log: one commit */
				memcpy(from, c->cur.log_id, sizeof(from));
				c->stats.switches_marker++;
				rc = slcli_store_begin(c);
				if (rc == SLCL_OK)
					rc = slcli_store_set_position(c, next, lsn,
												  c->cur.chain_known ? c->cur.chain : NULL);
				if (rc == SLCL_OK)
					rc = slcli_store_commit(c);
				if (rc != SLCL_OK)
				{
					c->stats.switches_marker--;
					PQclear(res);
					return rc;
				}
				slcli_debug_hook(c, "switch-logged");
				ev.type = SLCL_EV_SWITCH;
				ev.log_id = from;
				slcli_emit(c, &ev, "from=%s to=%s lsn=%lld marker_bytes=%d snapshot_bytes=0",
						   from, next, (long long) lsn, rb);
			}
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
	if (open_group)
	{
		/*
		 * Never commit part of a group: a version 2 page ends at a group's
		 * end, so we are here only when the page was cut short (a download
		 * is due).  The group is read again, whole, after it.
		 */
		slcli_store_rollback(c);
		if (c->need_download == SLCL_DL_NONE)
			return slcli_fail(c, SLCL_ERR_PROTOCOL, "a page of log %s ended inside a group",
							  c->cur.log_id);
		return SLCL_OK;
	}
	if (c->in_txn)
	{
		slcli_debug_hook(c, "page-applied");
		rc = slcli_store_commit(c);
		if (rc != SLCL_OK)
			return rc;
		slcli_debug_hook(c, "page-committed");
	}
	return SLCL_OK;
}

/* Read (and download, if due) until the server has nothing more. */
slcl_rc
slcli_read_to_head(slcl_client *c)
{
	slcl_rc		rc;

	rc = slcli_ensure_conn(c);
	if (rc != SLCL_OK)
		return rc;
	for (;;)
	{
		int			rows;
		double		t0;

		if (slcli_interrupted(c))
			return slcli_fail(c, SLCL_ERR_INTERRUPTED, "interrupted");
		if (c->job_kind)
		{
			/* a catch-up or range repair in progress (client_repair.c) */
			rc = slcli_job_run(c);
			if (rc != SLCL_OK)
				return rc;
			continue;
		}
		if (c->downloading)
		{
			double		t0 = slcli_now_s();

			rc = slcli_download(c);
			c->stats.download_ms += (int64_t) ((slcli_now_s() - t0) * 1000.0);
			if (rc != SLCL_OK)
				return rc;
			continue;
		}
		if (!c->cur.have || c->need_download != SLCL_DL_NONE)
		{
			/* range repair, catch-up or download: client_repair.c chooses */
			rc = slcli_choose(c);
			if (rc != SLCL_OK)
				return rc;
			continue;
		}
		if (!c->cost_asked)
		{
			/* replay or catch up: once per connection */
			rc = slcli_cost_check(c);
			if (rc != SLCL_OK)
				return rc;
			if (c->job_kind || c->need_download != SLCL_DL_NONE)
				continue;
		}
		t0 = slcli_now_s();
		rc = read_page(c, &rows);
		c->stats.replay_ms += (int64_t) ((slcli_now_s() - t0) * 1000.0);
		if (rc != SLCL_OK)
		{
			/* whatever the page applied and did not commit goes */
			slcli_store_rollback(c);
			return rc;
		}
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

/*
 * Read to the head, send the pending mutations (client_write.c) and read
 * again, so that what the server took is confirmed as soon as it is in
 * the log.
 */
slcl_rc
slcl_sync(slcl_client *c)
{
	slcl_rc		rc;

	c->err[0] = '\0';
	rc = slcli_read_to_head(c);
	if (rc == SLCL_OK && slcl_pending(c) > 0)
	{
		rc = slcl_flush(c);
		if (rc == SLCL_OK || rc == SLCL_ERR_REFUSED)
		{
			slcl_rc		r2 = slcli_read_to_head(c);

			if (r2 != SLCL_OK)
				rc = r2;
		}
	}
	else if (rc == SLCL_OK)
		rc = slcl_flush(c);		/* reports an SL007 found while reading */
	return rc;
}
