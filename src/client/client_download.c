/*
 * client_download.c
 *
 * The snapshot download (PROTOCOL.md section 6): fetch the current log's
 * snapshot page by page into a new generation of items, beside the live
 * state, committing each page with the download's progress row before
 * asking for the next; add the watermarks, check the hash of what was
 * received against the server's snapshot hash, and install it: the new
 * generation becomes live in one transaction, and the old one is deleted
 * afterwards in batches.  A download interrupted by a crash resumes after
 * the last committed row.
 *
 * Owns: slcli_download with its restarts when the target log goes away or
 * the hash differs, the download's progress in c->dl_*, and the order:
 * target recorded, pages, verify, install, retire the old generation.
 * Must never: touch the live state before the new one is verified and
 * installed, install a state whose hash differs from the server's
 * snapshot_hash, or acknowledge a downloaded position before its install
 * is committed.
 */
#define _GNU_SOURCE
#include "client_int.h"

#include <errno.h>

/* downloads started over in a row before slcli_download gives up */
#define DL_MAX_ATTEMPTS 5

/* An event about the download in progress, its fields filled in. */
void
slcli_dl_event(slcl_client *c, slcl_event *ev, slcl_event_type t)
{
	memset(ev, 0, sizeof(*ev));
	ev->type = t;
	ev->log_id = c->dl_log;
	ev->lsn = c->dl_base;
	ev->reason = c->dl_reason;
	ev->rows = c->dl_rows;
	ev->bytes = c->dl_bytes;
	ev->total_rows = c->dl_total_rows;
	ev->total_bytes = c->dl_total_bytes;
}

/* Delete what old generations remain, a batch per transaction. */
static slcl_rc
retire_all(slcl_client *c)
{
	int			left = 1;
	int			batches = 0;
	slcl_rc		rc;

	while (left)
	{
		rc = slcli_store_retire(c, &left);
		if (rc != SLCL_OK)
			return rc;
		if (left && ++batches == 1)
			slcli_debug_hook(c, "retire-batch");
	}
	return SLCL_OK;
}

/* Give up the download in progress: its rows become garbage. */
static slcl_rc
dl_abort(slcl_client *c)
{
	slcl_rc		rc = slcli_store_begin(c);

	if (rc == SLCL_OK)
		rc = slcli_store_clear_download(c);
	if (rc != SLCL_OK)
	{
		slcli_store_rollback(c);
		return rc;
	}
	c->downloading = 0;
	rc = slcli_store_commit(c);
	if (rc != SLCL_OK)
	{
		c->downloading = 1;
		return rc;
	}
	return retire_all(c);
}

static slcl_rc
dl_start(slcl_client *c, slcl_reason reason, int restart)
{
	const char *vals[2];
	PGresult   *res;
	slcl_rc		rc;
	char		st[6];
	char		log_id[SLCL_LOG_ID_MAX + 1];
	int64_t		base,
				head;
	uint8_t		hash[SLC_HASH_LEN];
	slcl_event	ev;

	vals[0] = c->doc;
	res = slcli_query(c, "SELECT log_id, base_lsn, head_lsn, snapshot_hash FROM synclog.current_log($1)",
					  1, vals, NULL, NULL, &rc, st);
	if (res == NULL)
		return rc;
	if (PQntuples(res) != 1 || slcli_col_log_id(res, 0, 0, log_id) != 0 ||
		slcli_col_i8(res, 0, 1, &base) != 0 || slcli_col_i8(res, 0, 2, &head) != 0 ||
		PQgetisnull(res, 0, 3) || PQgetlength(res, 0, 3) != SLC_HASH_LEN)
	{
		PQclear(res);
		return slcli_fail(c, SLCL_ERR_PROTOCOL, "unexpected result from synclog.current_log");
	}
	memcpy(hash, PQgetvalue(res, 0, 3), SLC_HASH_LEN);
	PQclear(res);

	c->dl_total_rows = c->dl_total_bytes = -1;
	if (c->opt.want_totals)
	{
		vals[1] = log_id;
		res = slcli_query(c, "SELECT key_count, key_bytes FROM synclog.snapshot_info($1, $2)",
						  2, vals, NULL, NULL, &rc, st);
		if (res && PQntuples(res) == 1)
		{
			slcli_col_i8(res, 0, 0, &c->dl_total_rows);
			slcli_col_i8(res, 0, 1, &c->dl_total_bytes);
		}
		if (res)
			PQclear(res);
		else if (rc == SLCL_ERR_CONN || rc == SLCL_ERR_DOC_GONE)
			return rc;
		/* otherwise the snapshot calls below report the problem */
	}

	/*
	 * Record the target, in a new generation of its own; the live state
	 * (if any) stays as it is, readable, until the new one is installed.
	 */
	rc = slcli_store_begin(c);
	if (rc != SLCL_OK)
		return rc;
	c->dl_gen = slcli_store_new_gen(c);
	c->dl_id = slcli_random64();
	c->dl_reason = reason;
	snprintf(c->dl_log, sizeof(c->dl_log), "%s", log_id);
	c->dl_base = base;
	memcpy(c->dl_hash, hash, SLC_HASH_LEN);
	slc_hash_init(&c->dl_sum);
	c->dl_have_after = 0;
	c->dl_after.len = 0;
	c->dl_rows = 0;
	c->dl_bytes = 0;
	if (!restart)
	{
		c->stats.downloads++;
		if (reason == SLCL_DL_INITIAL)
			c->stats.downloads_initial++;
		c->dl_attempts = 0;
	}
	rc = slcli_store_finish(c, slcli_store_save_download(c));
	if (rc != SLCL_OK)
		return rc;
	c->need_download = SLCL_DL_NONE;
	c->downloading = 1;
	slcli_dl_event(c, &ev, SLCL_EV_DOWNLOAD_START);
	ev.server_hash = c->dl_hash;
	slcli_emit(c, &ev, "log=%s base=%lld reason=%s head=%lld%s", c->dl_log, (long long) base,
			   slcl_reason_name(reason), (long long) head, restart ? " (restart)" : "");

	/*
	 * Tell the server where we are going, so that retention keeps the log
	 * for us while we download it (PROTOCOL.md section 8).
	 */
	return slcli_ack_at(c, c->dl_log, c->dl_base, NULL);
}

/*
 * After a snapshot call failed with sqlstate: if the log being downloaded
 * went away on the server (collected, or unknown to it), set *restart and
 * report it, and return 1; otherwise return 0 (the failure stands).
 */
static int
dl_target_gone(slcl_client *c, const char *sqlstate, int *restart)
{
	slcl_reason r = slcli_reason_of(sqlstate);

	if (r != SLCL_DL_COLLECTED && r != SLCL_DL_UNKNOWN_LOG)
		return 0;
	*restart = 1;
	slcli_emit_simple(c, SLCL_EV_DOWNLOAD_RESTART, "log=%s went away mid-download (%s): starting over with the current log",
					  c->dl_log, sqlstate);
	return 1;
}

/* A page (or the watermarks) failed to commit: go back to what is stored. */
static slcl_rc
dl_reload(slcl_client *c, slcl_rc rc)
{
	slcli_store_rollback(c);
	if (slcli_store_load_download(c) != 1)
		c->downloading = 0;		/* gone or damaged: the next sync starts over */
	return rc;
}

/* One page of snapshot rows into the download's generation, committed
 * with the progress row.  *n gets the rows. */
static slcl_rc
dl_page(slcl_client *c, const char *const *vals, const int *lens, const int *fmts,
		int *n, int *restart)
{
	PGresult   *res;
	slcl_rc		rc;
	char		st[6];

	res = slcli_query(c, "SELECT key, value FROM synclog.snapshot($1, $2, $3::bytea, $4::integer)",
					  4, vals, lens, fmts, &rc, st);
	if (res == NULL)
		return dl_target_gone(c, st, restart) ? SLCL_OK : rc;
	*n = PQntuples(res);
	rc = slcli_store_begin(c);
	for (int i = 0; i < *n && rc == SLCL_OK; i++)
	{
		const uint8_t *k = (const uint8_t *) PQgetvalue(res, i, 0);
		size_t		kl = (size_t) PQgetlength(res, i, 0);
		const uint8_t *v = (const uint8_t *) PQgetvalue(res, i, 1);
		size_t		vl = (size_t) PQgetlength(res, i, 1);

		if (PQgetisnull(res, i, 0) || PQgetisnull(res, i, 1) || kl > SLC_KEY_MAX)
		{
			rc = slcli_fail(c, SLCL_ERR_PROTOCOL, "malformed snapshot row");
			break;
		}
		rc = slcli_store_insert(c, c->dl_gen, &c->dl_sum, SLC_NS_DATA, k, kl, v, vl);
		if (rc == SLCL_OK && i + 1 == *n)
		{
			c->dl_after.len = 0;
			if (buf_put(&c->dl_after, k, kl) != 0)
				rc = slcli_fail(c, SLCL_ERR_NOMEM, "out of memory");
			c->dl_have_after = 1;
		}
		c->dl_rows++;
		c->dl_bytes += (int64_t) (kl + vl);
		c->stats.bytes_snapshot += slcli_row_bytes(res, i);
	}
	PQclear(res);
	if (rc == SLCL_OK)
		rc = slcli_store_save_download(c);
	if (rc == SLCL_OK)
		rc = slcli_store_commit(c);
	if (rc != SLCL_OK)
		return dl_reload(c, rc);
	return SLCL_OK;
}

/* Returns SLCL_OK when complete, or an error; *restart set when it must
 * start over with a new target. */
static slcl_rc
dl_run(slcl_client *c, int *restart)
{
	char		rowsbuf[16];
	const char *vals[4];
	int			lens[4] = {0, 0, 0, 0};
	int			fmts[4] = {0, 0, 1, 0};
	PGresult   *res;
	slcl_rc		rc;
	char		st[6];
	uint8_t		local[SLC_HASH_LEN];
	uint8_t		base_chain[SLCL_CHAIN_LEN] = {0};	/* version 1: zeros */
	int64_t		nclients = 0;
	int64_t		old_gen;
	slc_hash	sum;
	slcl_event	ev;

	*restart = 0;
	snprintf(rowsbuf, sizeof(rowsbuf), "%d", c->opt.snapshot_rows);
	vals[0] = c->doc;
	vals[1] = c->dl_log;
	vals[3] = rowsbuf;
	for (;;)
	{
		int			n = 0;

		if (slcli_interrupted(c))
			return slcli_fail(c, SLCL_ERR_INTERRUPTED, "interrupted");
		vals[2] = c->dl_have_after ? (const char *) c->dl_after.p : NULL;
		lens[2] = c->dl_have_after ? (int) c->dl_after.len : 0;
		if (c->dl_have_after && c->dl_after.len == 0)
			vals[2] = "";		/* the empty key: not NULL */
		rc = dl_page(c, vals, lens, fmts, &n, restart);
		if (rc != SLCL_OK || *restart)
			return rc;
		slcli_dl_event(c, &ev, SLCL_EV_DOWNLOAD_PROGRESS);
		slcli_emit(c, &ev, "log=%s keys=%lld bytes=%lld", c->dl_log, (long long) c->dl_rows,
				   (long long) c->dl_bytes);
		slcli_debug_hook(c, "download-page");
		if (n < c->opt.snapshot_rows)
			break;
	}

	/*
	 * Protocol version 2: the chain value at the snapshot's base, where the
	 * downloaded state stands (PROTOCOL.md section 6).
	 */
	if (c->proto >= 2)
	{
		res = slcli_query(c, "SELECT synclog.base_chain($1, $2)", 2, vals, NULL, NULL, &rc, st);
		if (res == NULL)
			return dl_target_gone(c, st, restart) ? SLCL_OK : rc;
		if (PQntuples(res) != 1 || PQgetlength(res, 0, 0) != SLCL_CHAIN_LEN)
		{
			PQclear(res);
			return slcli_fail(c, SLCL_ERR_PROTOCOL, "malformed base chain value of log %s", c->dl_log);
		}
		memcpy(base_chain, PQgetvalue(res, 0, 0), SLCL_CHAIN_LEN);
		PQclear(res);
	}

	/* the watermarks, in one call, and the install in the same transaction */
	res = slcli_query(c, "SELECT client_id, client_seq, client_lsn FROM synclog.snapshot_clients($1, $2)",
					  2, vals, NULL, NULL, &rc, st);
	if (res == NULL)
		return dl_target_gone(c, st, restart) ? SLCL_OK : rc;
	sum = c->dl_sum;
	rc = slcli_store_begin(c);
	for (int i = 0; i < PQntuples(res) && rc == SLCL_OK; i++)
	{
		int64_t		seq,
					lsn;
		uint8_t		wm[SLC_WATERMARK_LEN];
		int			cl = PQgetlength(res, i, 0);

		if (PQgetisnull(res, i, 0) || cl < 1 || slcli_col_i8(res, i, 1, &seq) != 0 ||
			slcli_col_i8(res, i, 2, &lsn) != 0)
		{
			rc = slcli_fail(c, SLCL_ERR_PROTOCOL, "malformed snapshot_clients row");
			break;
		}
		slc_watermark_encode(seq, lsn, wm);
		rc = slcli_store_insert(c, c->dl_gen, &sum, SLC_NS_CLIENT,
								(const uint8_t *) PQgetvalue(res, i, 0), (size_t) cl,
								wm, SLC_WATERMARK_LEN);
		c->stats.bytes_snapshot += slcli_row_bytes(res, i);
		nclients++;
	}
	PQclear(res);
	if (rc != SLCL_OK)
		return dl_reload(c, rc);

	/* verify */
	slc_hash_serialize(&sum, local);
	slcli_dl_event(c, &ev, SLCL_EV_DOWNLOAD_DONE);
	ev.ok = memcmp(local, c->dl_hash, SLC_HASH_LEN) == 0;
	ev.local_hash = local;
	ev.server_hash = c->dl_hash;
	{
		char		hx[2 * SLC_HASH_LEN + 1];

		slcli_hex(local, SLC_HASH_LEN, hx);
		slcli_emit(c, &ev, "log=%s base=%lld keys=%lld clients=%lld bytes=%lld reason=%s hash=%s %s",
				   c->dl_log, (long long) c->dl_base, (long long) c->dl_rows, (long long) nclients,
				   (long long) c->dl_bytes, slcl_reason_name(c->dl_reason),
				   ev.ok ? "ok" : "MISMATCH", hx);
	}
	if (!ev.ok)
	{
		/* "should never happen": report (above), then start over */
		slcli_store_rollback(c);
		*restart = 1;
		return SLCL_OK;
	}
	slcli_debug_hook(c, "download-verified");

	/* install: the new generation goes live with its position, in one commit */
	old_gen = c->cur.have ? c->cur.gen : -1;
	rc = slcli_store_install(c, c->dl_gen, c->dl_log, c->dl_base,
							 c->proto >= 2 ? base_chain : NULL, &sum);
	if (rc == SLCL_OK)
		rc = slcli_store_clear_download(c);
	if (rc != SLCL_OK)
		return dl_reload(c, rc);
	c->stats.bytes_downloaded += c->dl_bytes;
	c->downloading = 0;
	rc = slcli_store_commit(c);
	if (rc != SLCL_OK)
	{
		c->stats.bytes_downloaded -= c->dl_bytes;
		c->downloading = 1;
		return dl_reload(c, rc);
	}
	slcli_debug_hook(c, "download-installed");
	rc = slcli_changes_diff(c, old_gen, c->cur.gen);
	if (rc == SLCL_OK)
		rc = retire_all(c);
	if (rc != SLCL_OK)
		return rc;
	return slcli_maybe_ack(c, 1);
}

slcl_rc
slcli_download(slcl_client *c)
{
	slcl_rc		rc;
	int			restart;

	for (;;)
	{
		if (!c->downloading)
		{
			slcl_reason reason = c->need_download != SLCL_DL_NONE ? c->need_download :
				(c->dl_attempts > 0 ? c->dl_reason : SLCL_DL_INITIAL);

			rc = dl_start(c, reason, c->dl_attempts > 0);
			if (rc != SLCL_OK)
				return rc;
		}
		rc = dl_run(c, &restart);
		if (rc != SLCL_OK || !restart)
		{
			if (rc == SLCL_OK)
				c->dl_attempts = 0;
			return rc;
		}
		c->stats.download_restarts++;
		if (++c->dl_attempts >= DL_MAX_ATTEMPTS)
		{
			dl_abort(c);
			c->dl_attempts = 0;
			return slcli_fail(c, SLCL_ERR_PROTOCOL, "snapshot download failed %d times in a row", DL_MAX_ATTEMPTS);
		}
		rc = dl_abort(c);
		if (rc != SLCL_OK)
			return rc;
	}
}
