/*
 * client_verify.c
 *
 * slcl_verify: check a replica against itself (the running hash against a
 * full rehash) and against the server, by rebuilding the server's state
 * at the replica's position independently (the snapshot of its log plus
 * the entries up to its LSN) and comparing hash and items.  And
 * slcl_debug_tamper, which damages a replica on purpose so that tests can
 * see verification and the marker check catch it.
 *
 * Owns: slcl_verify and slcl_debug_tamper.
 * Must never: change the replica while verifying (the server's state is
 * rebuilt in a state of its own), or report the server checked when a log
 * went away before the rebuild was complete.
 */
#define _GNU_SOURCE
#include "client_int.h"

typedef struct cmp_ctx
{
	const slc_state *other;
	int64_t		n;
	int			diff;
	char	   *detail;
	size_t		detaillen;
} cmp_ctx;

static int
cmp_item(void *arg, uint8_t ns, const uint8_t *key, size_t klen,
		 const uint8_t *val, size_t vlen)
{
	cmp_ctx    *x = arg;
	const uint8_t *ov;
	size_t		ol;

	x->n++;
	if (!slc_state_get(x->other, ns, key, klen, &ov, &ol))
	{
		x->diff = 1;
		snprintf(x->detail, x->detaillen, "item ns %d (key of %zu bytes) is local only", ns, klen);
		return 1;
	}
	if (ol != vlen || (vlen && memcmp(ov, val, vlen) != 0))
	{
		x->diff = 1;
		snprintf(x->detail, x->detaillen, "item ns %d (key of %zu bytes) differs: %zu bytes local, %zu on the server",
				 ns, klen, vlen, ol);
		return 1;
	}
	return 0;
}

slcl_rc
slcl_verify(slcl_client *c, slcl_verify_result *r)
{
	slc_hash	re;
	uint8_t		a[SLC_HASH_LEN],
				b[SLC_HASH_LEN],
				snap[SLC_HASH_LEN];
	const char *vals[5];
	int			lens[5] = {0, 0, 0, 0, 0};
	int			fmts[5] = {0, 0, 0, 0, 0};
	char		st[6];
	slcl_rc		rc;
	PGresult   *res;
	slc_state  *srv = NULL;
	int64_t		base;
	char		cur_log[SLCL_LOG_ID_MAX + 1];
	int64_t		cur_base;
	buf			after = {0};
	int			have_after = 0;
	char		nbuf[16],
				lsnbuf[32],
				bytbuf[16];

	memset(r, 0, sizeof(*r));
	if (!c->have_state || c->downloading)
	{
		snprintf(r->detail, sizeof(r->detail), "no complete local state");
		return slcli_fail(c, SLCL_ERR_STATE, "no complete local state to verify");
	}
	slc_state_rehash(c->state, &re);
	slc_hash_serialize(&re, a);
	slc_hash_serialize(slc_state_hash(c->state), b);
	r->local_ok = memcmp(a, b, SLC_HASH_LEN) == 0;

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
	r->at_current_base = strcmp(cur_log, c->log_id) == 0 && cur_base == c->lsn;
	if (r->at_current_base)
		r->current_hash_ok = memcmp(PQgetvalue(res, 0, 2), b, SLC_HASH_LEN) == 0;
	PQclear(res);

	/* rebuild the server's state at our position, independently */
	vals[1] = c->log_id;
	res = slcli_query(c, "SELECT base_lsn, snapshot_hash FROM synclog.snapshot_info($1, $2)",
					  2, vals, NULL, NULL, &rc, st);
	if (res == NULL)
	{
		if (slcli_reason_of(st) != SLCL_DL_NONE)
		{
			snprintf(r->detail, sizeof(r->detail), "log %s is gone on the server (%s): cannot rebuild its state at lsn %lld",
					 c->log_id, st, (long long) c->lsn);
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
	srv = slc_state_new();
	if (srv == NULL)
		return slcli_fail(c, SLCL_ERR_NOMEM, "out of memory");
	snprintf(nbuf, sizeof(nbuf), "%d", c->opt.snapshot_rows);
	vals[3] = nbuf;
	fmts[2] = 1;
	rc = SLCL_OK;
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
		for (int i = 0; i < n; i++)
		{
			after.len = 0;
			if (slc_state_put(srv, SLC_NS_DATA, (const uint8_t *) PQgetvalue(res, i, 0),
							  PQgetlength(res, i, 0), (const uint8_t *) PQgetvalue(res, i, 1),
							  PQgetlength(res, i, 1)) != SLC_OK ||
				buf_put(&after, PQgetvalue(res, i, 0), PQgetlength(res, i, 0)) != 0)
			{
				PQclear(res);
				rc = slcli_fail(c, SLCL_ERR_NOMEM, "out of memory");
				goto out;
			}
			have_after = 1;
		}
		PQclear(res);
		if (n < c->opt.snapshot_rows)
			break;
	}
	res = slcli_query(c, "SELECT client_id, client_seq, client_lsn FROM synclog.snapshot_clients($1, $2)",
					  2, vals, NULL, NULL, &rc, st);
	if (res == NULL)
		goto gone;
	for (int i = 0; i < PQntuples(res); i++)
	{
		int64_t		seq = 0,
					lsn = 0;
		uint8_t		wm[SLC_WATERMARK_LEN];

		slcli_col_i8(res, i, 1, &seq);
		slcli_col_i8(res, i, 2, &lsn);
		slc_watermark_encode(seq, lsn, wm);
		if (slc_state_put(srv, SLC_NS_CLIENT, (const uint8_t *) PQgetvalue(res, i, 0),
						  PQgetlength(res, i, 0), wm, SLC_WATERMARK_LEN) != SLC_OK)
		{
			PQclear(res);
			rc = slcli_fail(c, SLCL_ERR_NOMEM, "out of memory");
			goto out;
		}
	}
	PQclear(res);
	slc_hash_serialize(slc_state_hash(srv), a);
	if (memcmp(a, snap, SLC_HASH_LEN) != 0)
	{
		r->server_checked = 1;
		snprintf(r->detail, sizeof(r->detail), "the server's snapshot of log %s does not match its own snapshot_hash",
				 c->log_id);
		goto out;
	}
	/* entries (base, lsn] */
	{
		int64_t		at = base;

		snprintf(bytbuf, sizeof(bytbuf), "%d", c->opt.page_bytes);
		vals[4] = bytbuf;
		while (at < c->lsn)
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
			for (int i = 0; i < n && at < c->lsn; i++)
			{
				int64_t		lsn = 0,
							seq = 0;
				int			hascid = !PQgetisnull(res, i, 3);

				slcli_col_i8(res, i, 0, &lsn);
				if (strcmp(PQgetvalue(res, i, 1), "delta") != 0)
					break;
				if (hascid)
					slcli_col_i8(res, i, 4, &seq);
				if (lsn != at + 1 ||
					slc_state_apply_entry(srv, (const uint8_t *) PQgetvalue(res, i, 2),
										  PQgetlength(res, i, 2), lsn,
										  hascid ? PQgetvalue(res, i, 3) : NULL,
										  hascid ? PQgetlength(res, i, 3) : 0, seq) != SLC_OK)
				{
					PQclear(res);
					rc = slcli_fail(c, SLCL_ERR_PROTOCOL, "could not rebuild the server state at lsn %lld", (long long) lsn);
					goto out;
				}
				at = lsn;
			}
			PQclear(res);
			if (at == prev)
				break;
		}
		if (at != c->lsn)
		{
			r->server_checked = 1;
			snprintf(r->detail, sizeof(r->detail), "the server's log %s ends at lsn %lld, before the replica's lsn %lld",
					 c->log_id, (long long) at, (long long) c->lsn);
			goto out;
		}
	}
	r->server_checked = 1;
	slc_hash_serialize(slc_state_hash(srv), a);
	if (memcmp(a, b, SLC_HASH_LEN) != 0)
	{
		snprintf(r->detail, sizeof(r->detail), "hash differs from the server's state at log %s lsn %lld",
				 c->log_id, (long long) c->lsn);
		goto out;
	}
	if (slc_state_count(srv) != slc_state_count(c->state))
	{
		snprintf(r->detail, sizeof(r->detail), "%zu items locally, %zu on the server",
				 slc_state_count(c->state), slc_state_count(srv));
		goto out;
	}
	{
		cmp_ctx		x = {srv, 0, 0, r->detail, sizeof(r->detail)};

		slc_state_foreach(c->state, cmp_item, &x);
		r->items = x.n;
		if (x.diff)
			goto out;
	}
	r->server_ok = 1;
	snprintf(r->detail, sizeof(r->detail), "server state at log %s lsn %lld rebuilt from its snapshot (base %lld) and %lld entries: hash and %lld items equal",
			 c->log_id, (long long) c->lsn, (long long) base, (long long) (c->lsn - base),
			 (long long) r->items);
	goto out;

gone:
	if (slcli_reason_of(st) != SLCL_DL_NONE)
	{
		rc = SLCL_OK;
		r->server_checked = 0;
		snprintf(r->detail, sizeof(r->detail), "log %s went away on the server (%s) while verifying",
				 c->log_id, st);
	}
out:
	free(after.p);
	slc_state_free(srv);
	return rc;
}

slcl_rc
slcl_debug_tamper(slcl_client *c, char *what, size_t whatlen)
{
	/* a key no writer uses, so that no later entry can mask the damage */
	static const uint8_t key[] = "\xffsynclog-tamper";
	const uint8_t *old;
	size_t		oldlen;
	uint8_t		val[64];
	size_t		vlen = 1;
	slcl_rc		rc;

	if (!c->have_state || c->downloading)
		return slcli_fail(c, SLCL_ERR_STATE, "no complete local state to tamper with");
	val[0] = 'x';
	if (slc_state_get(c->state, SLC_NS_DATA, key, sizeof(key) - 1, &old, &oldlen) &&
		oldlen < sizeof(val))
	{
		memcpy(val, old, oldlen);
		val[0] ^= 0x01;
		vlen = oldlen ? oldlen : 1;
	}
	if (slc_state_put(c->state, SLC_NS_DATA, key, sizeof(key) - 1, val, vlen) != SLC_OK)
		return slcli_fail(c, SLCL_ERR_NOMEM, "out of memory");
	snprintf(what, whatlen, "set the data key \"\\xffsynclog-tamper\" at log %s lsn %lld",
			 c->log_id, (long long) c->lsn);
	rc = slcli_log_sync(c);
	if (rc == SLCL_OK)
		rc = slcli_checkpoint(c, 0);
	return rc;
}
