/*
 * client_download.c
 *
 * The snapshot download (PROTOCOL.md section 6): fetch the current log's
 * snapshot page by page, write each page to the `download` file before
 * asking for the next, check the rebuilt state against the server's
 * snapshot hash, and install it as a new replica.  A download interrupted
 * by a crash resumes from that file after the last complete row.
 *
 * Owns: the `download` file ('D' target record, 'I' rows), slcli_download
 * with its restarts when the target log goes away, and the resume of an
 * interrupted download (slcli_dl_peek, slcli_load_download).
 * Must never: remove the old `state` and `log` before the target is
 * recorded durably in `download`, install a state whose hash differs from
 * the server's snapshot_hash, or remove `download` before the new `state`
 * is in place.
 */
#define _GNU_SOURCE
#include "client_int.h"

#include <errno.h>

/* downloads started over in a row before slcli_download gives up */
#define DL_MAX_ATTEMPTS 5

/* The download id in `download`: 1 (found), 0 (no file), -1 (unreadable). */
int
slcli_dl_peek(slcl_client *c, uint64_t *id)
{
	char		path[4096];
	rdr			r;
	int			rc;

	slcli_path_of(c, "download", path, sizeof(path));
	rc = slcli_rdr_open(&r, path, MAGIC_DOWNLOAD);
	if (rc == 1)
	{
		rc = slcli_rdr_next(&r);
		if (rc == 1 && r.rec.len >= 9 && r.rec.p[0] == 'D')
			*id = get_u64(r.rec.p + 1);
		else
			rc = -1;
	}
	else if (rc == -2)
		rc = -1;
	slcli_rdr_close(&r);
	return rc;
}

/*
 * Load `download`.  Returns 1 (loaded into c->state and dl_*), 0 (none), -1
 * (unusable: removed), -2 (error in c->err).
 */
int
slcli_load_download(slcl_client *c)
{
	char		path[4096];
	rdr			r;
	int			rc;
	int64_t		good;

	slcli_path_of(c, "download", path, sizeof(path));
	rc = slcli_rdr_open(&r, path, MAGIC_DOWNLOAD);
	if (rc == 0)
		return 0;
	if (rc == -2)
	{
		slcli_fail_errno(c, "could not read", path);
		slcli_rdr_close(&r);
		return -2;
	}
	if (rc == 1)
		rc = slcli_rdr_next(&r);
	if (rc != 1 || r.rec.len < 1 || r.rec.p[0] != 'D')
	{
		slcli_rdr_close(&r);
		return -1;
	}
	{
		cur			k = {r.rec.p, r.rec.len, 1, 0};
		const uint8_t *hp;
		const uint8_t *lp;
		const uint8_t *dp;
		size_t		ll,
					dl;

		c->dl_id = cur_u64(&k);
		c->dl_base = (int64_t) cur_u64(&k);
		hp = cur_take(&k, SLC_HASH_LEN);
		c->dl_reason = (slcl_reason) cur_u8(&k);
		lp = cur_lp(&k, &ll);
		dp = cur_lp(&k, &dl);
		if (k.bad || ll == 0 || ll > SLCL_LOG_ID_MAX)
		{
			slcli_rdr_close(&r);
			return -1;
		}
		if (dl != c->doclen || memcmp(dp, c->doc, dl) != 0)
		{
			slcli_rdr_close(&r);
			slcli_fail(c, SLCL_ERR_ARG, "directory \"%s\" holds a download of another document", c->dir);
			return -2;
		}
		memcpy(c->dl_hash, hp, SLC_HASH_LEN);
		memcpy(c->dl_log, lp, ll);
		c->dl_log[ll] = '\0';
	}
	slcli_state_reset(c);
	c->dl_rows = 0;
	c->dl_bytes = 0;
	c->dl_have_after = 0;
	good = r.pos;
	for (;;)
	{
		rc = slcli_rdr_next(&r);
		if (rc != 1)
			break;
		if (r.rec.len >= 1 && r.rec.p[0] == 'I')
		{
			cur			k = {r.rec.p, r.rec.len, 1, 0};
			uint8_t		ns = cur_u8(&k);
			uint32_t	klen = cur_u32(&k);
			const uint8_t *key = cur_take(&k, klen);
			size_t		vlen;
			const uint8_t *val = cur_rest(&k, &vlen);

			if (k.bad || ns != SLC_NS_DATA)
			{
				rc = -1;
				break;
			}
			if (slc_state_put(c->state, ns, key, klen, val ? val : (const uint8_t *) "", vlen) != SLC_OK)
			{
				rc = -2;
				break;
			}
			c->dl_after.len = 0;
			if (buf_put(&c->dl_after, key, klen) != 0)
			{
				rc = -2;
				break;
			}
			c->dl_have_after = 1;
			c->dl_rows++;
			c->dl_bytes += (int64_t) (klen + vlen);
			good = r.pos;
			continue;
		}
		rc = -1;
		break;
	}
	{
		int64_t		size = r.size;

		slcli_rdr_close(&r);
		if (rc == -2)
		{
			slcli_fail(c, SLCL_ERR_NOMEM, "out of memory loading \"%s\"", path);
			return -2;
		}
		if (good < size)
		{
			if (slcli_truncate_file(c, "download", good) != 0)
				return -2;
			c->stats.repairs++;
			slcli_emit_simple(c, SLCL_EV_REPAIR, "download: torn tail at offset %lld: truncated %lld bytes",
							  (long long) good, (long long) (size - good));
		}
	}
	c->dlf = fopen(path, "ab");
	if (c->dlf == NULL)
	{
		slcli_fail_errno(c, "could not open", path);
		return -2;
	}
	c->downloading = 1;
	return 1;
}

/* Give up the download in progress and its file. */
static slcl_rc
dl_abort(slcl_client *c)
{
	if (c->dlf)
	{
		fclose(c->dlf);
		c->dlf = NULL;
	}
	c->downloading = 0;
	slcli_state_reset(c);
	if (slcli_remove_file(c, "download") != 0)
		return SLCL_ERR_IO;
	if (slcli_fsync_dir(c->dir) != 0)
		return slcli_fail_errno(c, "could not fsync", c->dir);
	return SLCL_OK;
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
	buf		   *b = &c->rec;
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

	/* 1. record the target durably */
	c->dl_id = slcli_random64();
	b->len = 0;
	if (buf_u8(b, 'D') || buf_u64(b, c->dl_id) || buf_u64(b, (uint64_t) base) ||
		buf_put(b, hash, SLC_HASH_LEN) || buf_u8(b, (uint8_t) reason) ||
		buf_lp(b, log_id, strlen(log_id)) || buf_lp(b, c->doc, c->doclen))
		return slcli_fail(c, SLCL_ERR_NOMEM, "out of memory");
	if (c->dlf)
	{
		fclose(c->dlf);
		c->dlf = NULL;
	}
	c->dlf = slcli_create_framed(c, "download", MAGIC_DOWNLOAD, b);
	if (c->dlf == NULL)
		return SLCL_ERR_IO;

	/* 2. then drop the old replica */
	if (c->logf)
	{
		fclose(c->logf);
		c->logf = NULL;
	}
	if (slcli_remove_file(c, "state") != 0 || slcli_remove_file(c, "log") != 0)
		return SLCL_ERR_IO;
	if (slcli_fsync_dir(c->dir) != 0)
		return slcli_fail_errno(c, "could not fsync", c->dir);
	slcli_state_reset(c);
	c->need_download = SLCL_DL_NONE;
	c->downloading = 1;
	c->dl_reason = reason;
	snprintf(c->dl_log, sizeof(c->dl_log), "%s", log_id);
	c->dl_base = base;
	memcpy(c->dl_hash, hash, SLC_HASH_LEN);
	c->dl_have_after = 0;
	c->dl_rows = 0;
	c->dl_bytes = 0;
	if (!restart)
	{
		c->stats.downloads++;
		if (reason == SLCL_DL_INITIAL)
			c->stats.downloads_initial++;
		c->dl_attempts = 0;
	}
	memset(&ev, 0, sizeof(ev));
	ev.type = SLCL_EV_DOWNLOAD_START;
	ev.log_id = c->dl_log;
	ev.lsn = base;
	ev.reason = reason;
	ev.server_hash = c->dl_hash;
	ev.total_rows = c->dl_total_rows;
	ev.total_bytes = c->dl_total_bytes;
	slcli_emit(c, &ev, "log=%s base=%lld reason=%s head=%lld%s", c->dl_log, (long long) base,
			   slcl_reason_name(reason), (long long) head, restart ? " (restart)" : "");

	/*
	 * Tell the server where we are going, so that retention keeps the log
	 * for us while we download it (PROTOCOL.md section 8).
	 */
	return slcli_ack_at(c, c->dl_log, c->dl_base);
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
	int64_t		nclients = 0;
	slcl_event	ev;

	*restart = 0;
	snprintf(rowsbuf, sizeof(rowsbuf), "%d", c->opt.snapshot_rows);
	vals[0] = c->doc;
	vals[1] = c->dl_log;
	vals[3] = rowsbuf;
	for (;;)
	{
		int			n;

		if (slcli_interrupted(c))
			return slcli_fail(c, SLCL_ERR_INTERRUPTED, "interrupted");
		vals[2] = c->dl_have_after ? (const char *) c->dl_after.p : NULL;
		lens[2] = c->dl_have_after ? (int) c->dl_after.len : 0;
		if (c->dl_have_after && c->dl_after.len == 0)
			vals[2] = "";		/* the empty key: not NULL */
		res = slcli_query(c, "SELECT key, value FROM synclog.snapshot($1, $2, $3::bytea, $4::integer)",
						  4, vals, lens, fmts, &rc, st);
		if (res == NULL)
			return dl_target_gone(c, st, restart) ? SLCL_OK : rc;
		n = PQntuples(res);
		for (int i = 0; i < n; i++)
		{
			const uint8_t *k = (const uint8_t *) PQgetvalue(res, i, 0);
			size_t		kl = (size_t) PQgetlength(res, i, 0);
			const uint8_t *v = (const uint8_t *) PQgetvalue(res, i, 1);
			size_t		vl = (size_t) PQgetlength(res, i, 1);

			if (PQgetisnull(res, i, 0) || PQgetisnull(res, i, 1) || kl > SLC_KEY_MAX)
			{
				PQclear(res);
				return slcli_fail(c, SLCL_ERR_PROTOCOL, "malformed snapshot row");
			}
			if (slc_state_put(c->state, SLC_NS_DATA, k, kl, v, vl) != SLC_OK ||
				slcli_rec_item(&c->rec, SLC_NS_DATA, k, kl, v, vl) != 0)
			{
				PQclear(res);
				return slcli_fail(c, SLCL_ERR_NOMEM, "out of memory");
			}
			if (slcli_rec_write(c->dlf, &c->rec) != 0)
			{
				PQclear(res);
				return slcli_fail(c, SLCL_ERR_IO, "could not write the download file: %s", strerror(errno));
			}
			c->dl_after.len = 0;
			if (buf_put(&c->dl_after, k, kl) != 0)
			{
				PQclear(res);
				return slcli_fail(c, SLCL_ERR_NOMEM, "out of memory");
			}
			c->dl_have_after = 1;
			c->dl_rows++;
			c->dl_bytes += (int64_t) (kl + vl);
			c->stats.bytes_snapshot += slcli_row_bytes(res, i);
		}
		PQclear(res);
		if (slcli_flush_sync(c->dlf) != 0)
			return slcli_fail(c, SLCL_ERR_IO, "could not fsync the download file: %s", strerror(errno));
		memset(&ev, 0, sizeof(ev));
		ev.type = SLCL_EV_DOWNLOAD_PROGRESS;
		ev.log_id = c->dl_log;
		ev.lsn = c->dl_base;
		ev.reason = c->dl_reason;
		ev.rows = c->dl_rows;
		ev.bytes = c->dl_bytes;
		ev.total_rows = c->dl_total_rows;
		ev.total_bytes = c->dl_total_bytes;
		slcli_emit(c, &ev, "log=%s keys=%lld bytes=%lld", c->dl_log, (long long) c->dl_rows,
				   (long long) c->dl_bytes);
		slcli_debug_hook(c, "download-page");
		if (n < c->opt.snapshot_rows)
			break;
	}

	/* the watermarks, in one call */
	res = slcli_query(c, "SELECT client_id, client_seq, client_lsn FROM synclog.snapshot_clients($1, $2)",
					  2, vals, NULL, NULL, &rc, st);
	if (res == NULL)
		return dl_target_gone(c, st, restart) ? SLCL_OK : rc;
	for (int i = 0; i < PQntuples(res); i++)
	{
		int64_t		seq,
					lsn;
		uint8_t		wm[SLC_WATERMARK_LEN];
		int			cl = PQgetlength(res, i, 0);

		if (PQgetisnull(res, i, 0) || cl < 1 || slcli_col_i8(res, i, 1, &seq) != 0 ||
			slcli_col_i8(res, i, 2, &lsn) != 0)
		{
			PQclear(res);
			return slcli_fail(c, SLCL_ERR_PROTOCOL, "malformed snapshot_clients row");
		}
		slc_watermark_encode(seq, lsn, wm);
		if (slc_state_put(c->state, SLC_NS_CLIENT, (const uint8_t *) PQgetvalue(res, i, 0),
						  (size_t) cl, wm, SLC_WATERMARK_LEN) != SLC_OK)
		{
			PQclear(res);
			return slcli_fail(c, SLCL_ERR_NOMEM, "out of memory");
		}
		c->stats.bytes_snapshot += slcli_row_bytes(res, i);
		nclients++;
	}
	PQclear(res);

	/* verify */
	slc_hash_serialize(slc_state_hash(c->state), local);
	memset(&ev, 0, sizeof(ev));
	ev.type = SLCL_EV_DOWNLOAD_DONE;
	ev.log_id = c->dl_log;
	ev.lsn = c->dl_base;
	ev.reason = c->dl_reason;
	ev.ok = memcmp(local, c->dl_hash, SLC_HASH_LEN) == 0;
	ev.local_hash = local;
	ev.server_hash = c->dl_hash;
	ev.rows = c->dl_rows;
	ev.bytes = c->dl_bytes;
	ev.total_rows = c->dl_total_rows;
	ev.total_bytes = c->dl_total_bytes;
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
		*restart = 1;
		return SLCL_OK;
	}
	slcli_debug_hook(c, "download-verified");

	/* install: new state (tagged with the download id), then drop `download` */
	snprintf(c->log_id, sizeof(c->log_id), "%s", c->dl_log);
	c->lsn = c->dl_base;
	c->have_state = 1;
	rc = slcli_checkpoint(c, c->dl_id);
	if (rc != SLCL_OK)
	{
		c->have_state = 0;
		return rc;
	}
	fclose(c->dlf);
	c->dlf = NULL;
	c->downloading = 0;
	if (slcli_remove_file(c, "download") != 0)
		return SLCL_ERR_IO;
	if (slcli_fsync_dir(c->dir) != 0)
		return slcli_fail_errno(c, "could not fsync", c->dir);
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
