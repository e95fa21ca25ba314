/*
 * client_repair.c
 *
 * The ways to the server's state other than the log and the snapshot
 * (PROTOCOL.md sections 6a and 6b, README "Catching up"), and the choice
 * between all four:
 *   catch-up      the latest value (or absence) of every item changed
 *                 between the replica's position (or the empty state) and
 *                 a target the server fixes (synclog.catch_up_target),
 *                 read page by page with synclog.catch_up;
 *   range repair  the items of the buckets whose range hashes differ
 *                 between the replica (its kept range hashes, or those of
 *                 its rows' values when the open check found damage) and
 *                 the server's head, the target catch_up_target fixes
 *                 (synclog.range_hashes and synclog.range at that
 *                 position), so that the position after it is the target.
 * Both build the new state beside the old one: the new values go to the
 * `stage` table, page by page, each page committed with the progress in
 * the `job` row (so a restart resumes with the same target).  The swap
 * applies the stage to the live generation (or, from the empty state, to
 * a new one) in ONE SQLite transaction, and only when the hash of the
 * result is the target's: a kill at any point leaves the old state or the
 * new one, and readers in other processes see one or the other.
 *
 * The choice (slcli_cost_check, slcli_choose): a retained position that
 * verifies replays the log when synclog.sync_cost says its bytes are at
 * most the catch-up's, else catches up; a collected or unknown log,
 * SL006, a marker whose hash differs or local rows that fail their check
 * are repaired by range whenever there is a state (unless the differing
 * buckets hold more bytes than the whole head state: then a catch-up from
 * the empty state, beside the live one); no state catches up from the
 * empty state or downloads, whichever sync_cost says is smaller.
 * A server without the functions (or a protocol version 1 one) gets
 * today's way: the log, and a download when the protocol says so.
 *
 * Owns: the job and stage tables, slcli_range_hashes_local, the swap (and
 * what it changes in the kept range hashes), the PATH events and the
 * per-path counters of catch-up and range repair.
 * Must never: change the live generation before the swap, commit a swap
 * whose resulting hash is not the target's, keep a job whose base is not
 * the live state, or resume a job against another target.
 */
#define _GNU_SOURCE
#include "client_int.h"

#include <stdarg.h>

#include <xxhash.h>

/* verifications failed in a row before a repair gives way to a download */
#define JOB_MAX_FAILURES 2

/* A non-NULL pointer for zero-length blobs (NULL would bind SQL NULL). */
static const uint8_t empty_blob[1] = {0};

/* Replay a log tail of at most this many bytes, whatever a catch-up costs. */
#define SLCLI_REPLAY_ALWAYS		(256 * 1024)

static const void *
nn(const void *p)
{
	return p ? p : empty_blob;
}

/* A binary int2 (len 2) or int4 (len 4) column: big-endian, signed. */
static int
col_int(const PGresult *res, int row, int col, int len, int32_t *out)
{
	const uint8_t *p;
	uint32_t	v = 0;

	if (PQgetisnull(res, row, col) || PQgetlength(res, row, col) != len)
		return -1;
	p = (const uint8_t *) PQgetvalue(res, row, col);
	for (int i = 0; i < len; i++)
		v = (v << 8) | p[i];
	*out = len == 2 ? (int32_t) (int16_t) v : (int32_t) v;
	return 0;
}

static int64_t
ms_since(double t0)
{
	return (int64_t) ((slcli_now_s() - t0) * 1000.0 + 0.5);
}

void
slcli_path_event(slcl_client *c, slcl_path p, slcl_reason r, const char *fmt,...)
{
	char		detail[512];
	va_list		ap;
	slcl_event	ev;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	c->stats.last_path = p;
	c->stats.last_reason = r;
	memset(&ev, 0, sizeof(ev));
	ev.type = SLCL_EV_PATH;
	ev.path = p;
	ev.reason = r;
	ev.log_id = c->committed.have ? c->committed.log_id : NULL;
	ev.lsn = c->committed.lsn;
	ev.total_rows = ev.total_bytes = -1;
	slcli_emit(c, &ev, "path=%s reason=%s%s%s", slcl_path_name(p),
			   r == SLCL_DL_NONE ? "cheaper" : slcl_reason_name(r), detail[0] ? " " : "", detail);
}

/*
 * The range hashes of generation gen from its rows (rh: SLC_BUCKETS of
 * them) and their sum (*total).  Every item's hash is computed from its
 * value, not taken from its stored item hash, so that damaged rows show
 * as the buckets they damage.
 */
slcl_rc
slcli_range_hashes_local(slcl_client *c, int64_t gen, slc_hash *rh, slc_hash *total)
{
	sqlite3_stmt *s;
	int			rc;

	for (int b = 0; b < SLC_BUCKETS; b++)
		slc_hash_init(&rh[b]);
	slc_hash_init(total);
	s = slcli_store_prepare(c, "SELECT ns, key, val FROM item WHERE gen = ?1");
	if (s == NULL)
		return SLCL_ERR_IO;
	sqlite3_bind_int64(s, 1, gen);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
	{
		uint8_t		ns = (uint8_t) sqlite3_column_int(s, 0);
		const uint8_t *k = nn(sqlite3_column_blob(s, 1));
		size_t		kl = (size_t) sqlite3_column_bytes(s, 1);
		const uint8_t *v = nn(sqlite3_column_blob(s, 2));
		size_t		vl = (size_t) sqlite3_column_bytes(s, 2);
		uint64_t	lo,
					hi;

		slc_item_hash(ns, k, kl, v, vl, &lo, &hi);
		slc_hash_add_item(&rh[slc_bucket(ns, k, kl)], lo, hi, (uint64_t) kl + (uint64_t) vl);
		slc_hash_add_item(total, lo, hi, (uint64_t) kl + (uint64_t) vl);
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return slcli_db_fail(c, "could not read the items");
	return SLCL_OK;
}

/*
 * Stage the new value of an item (val NULL: it goes), in the open
 * transaction; a later row for the same item replaces an earlier one.
 */
slcl_rc
slcli_stage_put(slcl_client *c, uint8_t ns, const uint8_t *key, size_t klen,
				const uint8_t *val, size_t vlen)
{
	sqlite3_stmt *s;
	uint64_t	lo,
				hi;
	int			rc;

	if ((ns != SLC_NS_DATA && ns != SLC_NS_CLIENT) || klen > SLC_KEY_MAX ||
		(ns == SLC_NS_CLIENT && (klen == 0 || (val != NULL && vlen != SLC_WATERMARK_LEN))))
		return slcli_fail(c, SLCL_ERR_PROTOCOL, "malformed item (ns %d, key of %zu bytes, value of %zu bytes)",
						  ns, klen, vlen);
	if (c->job_gen < 0)
	{
		/* from the empty state: straight into the new generation */
		if (val == NULL)
			return SLCL_OK;		/* absent in the empty state already */
		return slcli_store_insert(c, c->job_sgen, &c->job_base, ns, key, klen, val, vlen);
	}
	if (c->stage_ins == NULL)
	{
		c->stage_ins = slcli_store_prepare(c, "INSERT OR REPLACE INTO stage (ns, key, hlo, hhi, val) "
										   "VALUES (?1, ?2, ?3, ?4, ?5)");
		if (c->stage_ins == NULL)
			return SLCL_ERR_IO;
	}
	s = c->stage_ins;
	sqlite3_bind_int(s, 1, ns);
	sqlite3_bind_blob(s, 2, nn(key), (int) klen, SQLITE_STATIC);
	if (val != NULL)
	{
		slc_item_hash(ns, nn(key), klen, nn(val), vlen, &lo, &hi);
		sqlite3_bind_int64(s, 3, (int64_t) lo);
		sqlite3_bind_int64(s, 4, (int64_t) hi);
		sqlite3_bind_blob(s, 5, nn(val), (int) vlen, SQLITE_STATIC);
	}
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (rc != SQLITE_DONE)
		return slcli_db_fail(c, "could not stage an item");
	return SLCL_OK;
}

/* Checksum of the job row. */
static int64_t
job_chk(const slcl_client *c)
{
	buf			b = {0};
	uint8_t		h[SLC_HASH_LEN];
	uint64_t	v = 0;

	slc_hash_serialize(&c->job_base, h);
	if (!(buf_u8(&b, (uint8_t) c->job_kind) || buf_u8(&b, (uint8_t) c->job_reason) ||
		  buf_u64(&b, (uint64_t) c->job_gen) || buf_u64(&b, (uint64_t) c->job_sgen) ||
		  buf_lp(&b, c->job_from_log, strlen(c->job_from_log)) ||
		  buf_u64(&b, (uint64_t) c->job_from_lsn) || buf_put(&b, c->job_from_chain, SLCL_CHAIN_LEN) ||
		  buf_lp(&b, c->job_log, strlen(c->job_log)) || buf_u64(&b, (uint64_t) c->job_lsn) ||
		  buf_put(&b, c->job_chain, SLCL_CHAIN_LEN) || buf_put(&b, c->job_hash, SLC_HASH_LEN) ||
		  buf_put(&b, h, SLC_HASH_LEN) || buf_lp(&b, c->job_buckets.p, c->job_buckets.len) ||
		  buf_u8(&b, (uint8_t) c->job_have_after) ||
		  (c->job_have_after &&
		   (buf_u8(&b, (uint8_t) c->job_after_ns) || buf_lp(&b, c->job_after.p, c->job_after.len))) ||
		  buf_u64(&b, (uint64_t) c->job_rows) || buf_u64(&b, (uint64_t) c->job_bytes) ||
		  buf_u64(&b, (uint64_t) c->job_ms)))
		v = XXH3_64bits(b.p, b.len);
	free(b.p);
	return (int64_t) v;
}

/* Write the job row (in the open transaction). */
slcl_rc
slcli_job_save(slcl_client *c)
{
	sqlite3_stmt *s;
	uint8_t		h[SLC_HASH_LEN];
	int			rc;

	s = slcli_store_prepare(c, "INSERT OR REPLACE INTO job (id, kind, reason, gen, from_log, from_lsn, "
							"from_chain, log_id, lsn, chain, hash, base, buckets, after_ns, "
							"after, rows, bytes, ms, chk, sgen) VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
							"?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)");
	if (s == NULL)
		return SLCL_ERR_IO;
	slc_hash_serialize(&c->job_base, h);
	sqlite3_bind_int(s, 1, c->job_kind);
	sqlite3_bind_int(s, 2, (int) c->job_reason);
	sqlite3_bind_int64(s, 3, c->job_gen);
	sqlite3_bind_text(s, 4, c->job_from_log, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 5, c->job_from_lsn);
	sqlite3_bind_blob(s, 6, c->job_from_chain, SLCL_CHAIN_LEN, SQLITE_STATIC);
	sqlite3_bind_text(s, 7, c->job_log, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 8, c->job_lsn);
	sqlite3_bind_blob(s, 9, c->job_chain, SLCL_CHAIN_LEN, SQLITE_STATIC);
	sqlite3_bind_blob(s, 10, c->job_hash, SLC_HASH_LEN, SQLITE_STATIC);
	sqlite3_bind_blob(s, 11, h, SLC_HASH_LEN, SQLITE_STATIC);
	sqlite3_bind_blob(s, 12, nn(c->job_buckets.p), (int) c->job_buckets.len, SQLITE_STATIC);
	if (c->job_have_after)
	{
		sqlite3_bind_int(s, 13, c->job_after_ns);
		sqlite3_bind_blob(s, 14, nn(c->job_after.p), (int) c->job_after.len, SQLITE_STATIC);
	}
	sqlite3_bind_int64(s, 15, c->job_rows);
	sqlite3_bind_int64(s, 16, c->job_bytes);
	sqlite3_bind_int64(s, 17, c->job_ms);
	sqlite3_bind_int64(s, 18, job_chk(c));
	sqlite3_bind_int64(s, 19, c->job_sgen);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return slcli_db_fail(c, "could not save the progress of a catch-up or repair");
	return SLCL_OK;
}

/* Drop the job and its stage (in the open transaction). */
static slcl_rc
job_drop_rows(slcl_client *c)
{
	slcl_rc		r = slcli_store_exec(c, "DELETE FROM job");

	if (r == SLCL_OK)
		r = slcli_store_exec(c, "DELETE FROM stage");
	return r;
}

/* Give up the job in progress, in its own transaction; the rows of its
 * generation (from the empty state) are deleted afterwards in batches. */
slcl_rc
slcli_job_clear(slcl_client *c)
{
	slcl_rc		r = slcli_store_begin(c);
	int			left = 1;

	if (r == SLCL_OK)
		r = slcli_store_finish(c, job_drop_rows(c));
	if (r != SLCL_OK)
		return r;
	c->job_kind = 0;
	while (r == SLCL_OK && left)
		r = slcli_store_retire(c, &left);
	return r;
}

static int
copy_text(const unsigned char *t, char out[SLCL_LOG_ID_MAX + 1])
{
	size_t		l = t ? strlen((const char *) t) : 0;

	if (l > SLCL_LOG_ID_MAX)
		return -1;
	memcpy(out, t ? (const char *) t : "", l + 1);
	return 0;
}

/*
 * Load the job row into c->job_*.  1: a job in progress; 0: none; -1: a
 * damaged row (the caller drops it); -2: an error (c->err).
 */
int
slcli_job_load(slcl_client *c)
{
	sqlite3_stmt *s;
	int			rc;
	int			result = 1;

	c->job_kind = 0;
	s = slcli_store_prepare(c, "SELECT kind, reason, gen, from_log, from_lsn, from_chain, log_id, lsn, "
							"chain, hash, base, buckets, after_ns, after, rows, bytes, ms, "
							"chk, sgen FROM job WHERE id = 1");
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
		slcli_db_fail(c, "could not read the progress of a catch-up or repair");
		sqlite3_finalize(s);
		return -2;
	}
	c->job_kind = sqlite3_column_int(s, 0);
	c->job_reason = (slcl_reason) sqlite3_column_int(s, 1);
	c->job_gen = sqlite3_column_int64(s, 2);
	c->job_sgen = sqlite3_column_int64(s, 18);
	c->job_from_lsn = sqlite3_column_int64(s, 4);
	c->job_lsn = sqlite3_column_int64(s, 7);
	c->job_have_after = sqlite3_column_type(s, 12) != SQLITE_NULL;
	c->job_after_ns = sqlite3_column_int(s, 12);
	c->job_rows = sqlite3_column_int64(s, 14);
	c->job_bytes = sqlite3_column_int64(s, 15);
	c->job_ms = sqlite3_column_int64(s, 16);
	c->job_buckets.len = 0;
	c->job_after.len = 0;
	if ((c->job_kind != SLCLI_JOB_CATCH_UP && c->job_kind != SLCLI_JOB_RANGE) ||
		copy_text(sqlite3_column_text(s, 3), c->job_from_log) != 0 ||
		sqlite3_column_bytes(s, 5) != SLCL_CHAIN_LEN ||
		copy_text(sqlite3_column_text(s, 6), c->job_log) != 0 || c->job_log[0] == '\0' ||
		sqlite3_column_bytes(s, 8) != SLCL_CHAIN_LEN || sqlite3_column_bytes(s, 9) != SLC_HASH_LEN ||
		slc_hash_parse(sqlite3_column_blob(s, 10), (size_t) sqlite3_column_bytes(s, 10),
					   &c->job_base) != SLC_OK ||
		sqlite3_column_bytes(s, 11) % 2 != 0)
		result = -1;
	else
	{
		memcpy(c->job_from_chain, sqlite3_column_blob(s, 5), SLCL_CHAIN_LEN);
		memcpy(c->job_chain, sqlite3_column_blob(s, 8), SLCL_CHAIN_LEN);
		memcpy(c->job_hash, sqlite3_column_blob(s, 9), SLC_HASH_LEN);
		if (buf_put(&c->job_buckets, nn(sqlite3_column_blob(s, 11)), (size_t) sqlite3_column_bytes(s, 11)) ||
			(c->job_have_after &&
			 buf_put(&c->job_after, nn(sqlite3_column_blob(s, 13)), (size_t) sqlite3_column_bytes(s, 13))))
		{
			slcli_fail(c, SLCL_ERR_NOMEM, "out of memory");
			result = -2;
		}
		else if (sqlite3_column_int64(s, 17) != job_chk(c))
			result = -1;
	}
	sqlite3_finalize(s);
	if (result != 1)
		c->job_kind = 0;
	return result;
}

/* Run a statement whose only parameter is a generation. */
static slcl_rc
exec_gen(slcl_client *c, const char *sql, int64_t gen, const char *what)
{
	sqlite3_stmt *s = slcli_store_prepare(c, sql);
	int			rc;

	if (s == NULL)
		return SLCL_ERR_IO;
	sqlite3_bind_int64(s, 1, gen);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? SLCL_OK : slcli_db_fail(c, what);
}

/*
 * Delete the items the stage removes (val NULL) from generation gen, one
 * lookup each: the stage is small, the generation may be the whole state.
 */
static slcl_rc
delete_staged(slcl_client *c, int64_t gen)
{
	sqlite3_stmt *s = slcli_store_prepare(c, "SELECT ns, key FROM stage WHERE val IS NULL");
	sqlite3_stmt *del = s ? slcli_store_prepare(c, "DELETE FROM item WHERE gen = ?1 AND ns = ?2 AND key = ?3") : NULL;
	slcl_rc		r = SLCL_OK;
	int			rc = SQLITE_DONE;

	if (del == NULL)
	{
		sqlite3_finalize(s);
		return SLCL_ERR_IO;
	}
	sqlite3_bind_int64(del, 1, gen);
	while (r == SLCL_OK && (rc = sqlite3_step(s)) == SQLITE_ROW)
	{
		sqlite3_bind_int(del, 2, sqlite3_column_int(s, 0));
		sqlite3_bind_blob(del, 3, nn(sqlite3_column_blob(s, 1)), sqlite3_column_bytes(s, 1), SQLITE_STATIC);
		if (sqlite3_step(del) != SQLITE_DONE)
			r = slcli_db_fail(c, "could not replace the staged items");
		sqlite3_reset(del);
	}
	if (r == SLCL_OK && rc != SQLITE_DONE)
		r = slcli_db_fail(c, "could not read the staged items");
	sqlite3_finalize(s);
	sqlite3_finalize(del);
	return r;
}

/* The job's differing buckets as flags (1 each), or NULL (out of memory). */
static uint8_t *
job_bucket_flags(const slcl_client *c)
{
	uint8_t    *in = calloc(SLC_BUCKETS, 1);

	if (in != NULL)
		for (size_t i = 0; i + 1 < c->job_buckets.len; i += 2)
			in[(c->job_buckets.p[i] | (c->job_buckets.p[i + 1] << 8)) % SLC_BUCKETS] = 1;
	return in;
}

/*
 * A range repair replaces every local item of the differing buckets: the
 * stage holds the server's items; the local items it does not name must
 * go too.  The replica's range hashes count the local items per bucket
 * (those the repair compared: the rows' values' after a damage, else the
 * kept ones), so only a bucket with more local items than the staged ones
 * it has locally needs its keys looked for, in one pass over the keys
 * (staged for deletion).  In the open transaction.
 */
static slcl_rc
stage_extras(slcl_client *c, int64_t gen, const slcli_buckets *k)
{
	const slc_hash *counted = slcli_check_valid(c) ? c->check_rh : k->rh;
	uint8_t    *in = job_bucket_flags(c);
	uint64_t   *present = calloc(SLC_BUCKETS, sizeof(uint64_t));
	sqlite3_stmt *s = NULL,
			   *ins = NULL;
	int			more = 0;
	int			rc = SQLITE_DONE;
	slcl_rc		r = SLCL_OK;

	if (in == NULL || present == NULL)
	{
		r = slcli_fail(c, SLCL_ERR_NOMEM, "out of memory");
		goto out;
	}
	/* CROSS JOIN: the stage drives (the planner would scan the items) */
	s = slcli_store_prepare(c, "SELECT s.ns, s.key FROM stage s CROSS JOIN item i "
							"ON i.gen = ?1 AND i.ns = s.ns AND i.key = s.key");
	if (s == NULL)
	{
		r = SLCL_ERR_IO;
		goto out;
	}
	sqlite3_bind_int64(s, 1, gen);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		present[slc_bucket((uint8_t) sqlite3_column_int(s, 0), nn(sqlite3_column_blob(s, 1)),
						   (size_t) sqlite3_column_bytes(s, 1))]++;
	sqlite3_finalize(s);
	s = NULL;
	if (rc != SQLITE_DONE)
	{
		r = slcli_db_fail(c, "could not read the staged items");
		goto out;
	}
	for (int b = 0; b < SLC_BUCKETS; b++)
		if (in[b] && counted[b].count != present[b])
		{
			in[b] = 2;
			more = 1;
		}
	if (!more)
		goto out;
	s = slcli_store_prepare(c, "SELECT ns, key FROM item WHERE gen = ?1");
	ins = s ? slcli_store_prepare(c, "INSERT OR IGNORE INTO stage (ns, key) VALUES (?1, ?2)") : NULL;
	if (ins == NULL)
	{
		r = SLCL_ERR_IO;
		goto out;
	}
	sqlite3_bind_int64(s, 1, gen);
	while (r == SLCL_OK && (rc = sqlite3_step(s)) == SQLITE_ROW)
	{
		int			ns = sqlite3_column_int(s, 0);
		const uint8_t *key = nn(sqlite3_column_blob(s, 1));
		size_t		kl = (size_t) sqlite3_column_bytes(s, 1);

		if (in[slc_bucket((uint8_t) ns, key, kl)] != 2)
			continue;
		/* any ns and key: damaged rows go too */
		sqlite3_bind_int(ins, 1, ns);
		sqlite3_bind_blob(ins, 2, key, (int) kl, SQLITE_STATIC);
		if (sqlite3_step(ins) != SQLITE_DONE)
			r = slcli_db_fail(c, "could not stage an item");
		sqlite3_reset(ins);
	}
	if (r == SLCL_OK && rc != SQLITE_DONE)
		r = slcli_db_fail(c, "could not read the items");
out:
	sqlite3_finalize(s);
	sqlite3_finalize(ins);
	free(in);
	free(present);
	return r;
}

/*
 * Apply the stage: in ONE transaction, compute the hash of the result
 * (the job's base, minus the current rows of the staged items hashed from
 * their values, plus the staged rows), and only when it is the target's,
 * replace the staged items of the live generation (from the empty state:
 * fill a new generation and install it), move to the target position and
 * drop the job.  The kept range hashes follow: a catch-up changes the
 * buckets of the items it replaces; a range repair makes each differing
 * bucket the server's items.  *matched = 0 (and nothing changed) when the
 * hash differs.
 */
slcl_rc
slcli_stage_swap(slcl_client *c, int *matched)
{
	sqlite3_stmt *s;
	slc_hash	h = c->job_base;
	int64_t		gen = c->job_gen;
	int64_t		tgen;
	int64_t		n = 0;
	int			bad = 0;
	int			track;
	int			range = c->job_kind == SLCLI_JOB_RANGE;
	int			rc;
	uint8_t		got[SLC_HASH_LEN];
	slcli_buckets *k = NULL;
	uint8_t    *in = NULL;		/* a range repair's differing buckets */
	slcl_rc		r;

	*matched = 0;
	r = slcli_store_begin(c);
	if (r == SLCL_OK && gen >= 0)
		r = slcli_bk_get(c, gen, &c->committed.hash, &k);
	if (r == SLCL_OK && range && gen >= 0)
	{
		r = stage_extras(c, gen, k);
		in = job_bucket_flags(c);
		if (r == SLCL_OK && in == NULL)
			r = slcli_fail(c, SLCL_ERR_NOMEM, "out of memory");
		for (int b = 0; r == SLCL_OK && b < SLC_BUCKETS; b++)
		{
			/*
			 * What the repair compared becomes what is kept; each differing
			 * bucket is then the sum of the staged items (below).
			 */
			slc_hash	empty;

			slc_hash_init(&empty);
			if (in[b])
				slcli_bk_set(k, b, &empty);
			else if (slcli_check_valid(c) && !slc_hash_equal(&k->rh[b], &c->check_rh[b]))
				slcli_bk_set(k, b, &c->check_rh[b]);
		}
	}
	if (r != SLCL_OK)
	{
		free(in);
		slcli_store_rollback(c);
		return r;
	}
	track = gen >= 0 && c->cur.have && gen == c->cur.gen &&
		((c->opt.changes && c->opt.on_event) || c->opt.page_file);
	s = slcli_store_prepare(c, "SELECT s.ns, s.key, s.hlo, s.hhi, s.val, i.val FROM stage s "
							"LEFT JOIN item i ON i.gen = ?1 AND i.ns = s.ns AND i.key = s.key "
							"ORDER BY s.ns, s.key");
	if (s == NULL)
	{
		free(in);
		slcli_store_rollback(c);
		return SLCL_ERR_IO;
	}
	sqlite3_bind_int64(s, 1, gen);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
	{
		uint8_t		ns = (uint8_t) sqlite3_column_int(s, 0);
		const uint8_t *key = nn(sqlite3_column_blob(s, 1));
		int			whole = in != NULL && in[slc_bucket(ns, key, (size_t) sqlite3_column_bytes(s, 1))];
		size_t		kl = (size_t) sqlite3_column_bytes(s, 1);
		int			has_new = sqlite3_column_type(s, 4) != SQLITE_NULL;
		int			has_old = sqlite3_column_type(s, 5) != SQLITE_NULL;
		uint64_t	olo = 0,
					ohi = 0,
					nlo = 0,
					nhi = 0;
		size_t		ovl = 0,
					nvl = 0;

		n++;
		if (has_old)
		{
			ovl = (size_t) sqlite3_column_bytes(s, 5);
			slc_item_hash(ns, key, kl, nn(sqlite3_column_blob(s, 5)), ovl, &olo, &ohi);
			slc_hash_remove_item(&h, olo, ohi, (uint64_t) kl + (uint64_t) ovl);
			if (k != NULL && !whole)
				slcli_bk_item(k, ns, key, kl, -1, olo, ohi, (uint64_t) kl + (uint64_t) ovl);
		}
		if (has_new)
		{
			nvl = (size_t) sqlite3_column_bytes(s, 4);
			slc_item_hash(ns, key, kl, nn(sqlite3_column_blob(s, 4)), nvl, &nlo, &nhi);
			if (nlo != (uint64_t) sqlite3_column_int64(s, 2) || nhi != (uint64_t) sqlite3_column_int64(s, 3))
				bad = 1;		/* a damaged stage row: never swapped in */
			slc_hash_add_item(&h, nlo, nhi, (uint64_t) kl + (uint64_t) nvl);
			if (k != NULL)
				slcli_bk_item(k, ns, key, kl, 1, nlo, nhi, (uint64_t) kl + (uint64_t) nvl);
		}
		if (track && (has_old != has_new || olo != nlo || ohi != nhi || ovl != nvl) &&
			slcli_changes_key(c, ns, key, kl, !has_new) != 0)
		{
			sqlite3_finalize(s);
			free(in);
			slcli_store_rollback(c);
			return slcli_fail(c, SLCL_ERR_NOMEM, "out of memory");
		}
	}
	sqlite3_finalize(s);
	free(in);
	if (rc != SQLITE_DONE)
	{
		r = slcli_db_fail(c, "could not read the staged items");
		slcli_store_rollback(c);
		return r;
	}
	slc_hash_serialize(&h, got);
	if (bad || memcmp(got, c->job_hash, SLC_HASH_LEN) != 0)
	{
		/* (the rollback forgets the kept range hashes changed above) */
		slcli_store_rollback(c);
		return SLCL_OK;
	}
	*matched = 1;

	/* from the empty state the rows are in their generation already */
	tgen = gen >= 0 ? gen : c->job_sgen;
	r = SLCL_OK;
	if (gen >= 0)
		r = exec_gen(c, "INSERT OR REPLACE INTO item (gen, ns, key, hlo, hhi, val) "
					 "SELECT ?1, ns, key, hlo, hhi, val FROM stage WHERE val IS NOT NULL",
					 tgen, "could not add the staged items");
	if (r == SLCL_OK && gen >= 0)
		r = delete_staged(c, gen);
	if (r == SLCL_OK)
		r = job_drop_rows(c);
	if (r == SLCL_OK)
	{
		if (gen >= 0)
		{
			c->cur.hash = h;
			r = slcli_store_set_position(c, c->job_log, c->job_lsn, c->job_chain);
		}
		else
			r = slcli_store_install(c, tgen, c->job_log, c->job_lsn, c->job_chain, &h);
	}
	if (r == SLCL_OK && track && slcli_changes_group_end(c, c->job_lsn) != 0)
		r = slcli_fail(c, SLCL_ERR_NOMEM, "out of memory");
	if (r != SLCL_OK)
	{
		slcli_store_rollback(c);
		return r;
	}
	slcli_debug_hook(c, c->job_kind == SLCLI_JOB_RANGE ? "repair-staged" : "catchup-staged");
	return SLCL_OK;
}

/* May the client take path p (slcl_options.paths)? */
static int
allowed(const slcl_client *c, slcl_path p)
{
	return c->opt.paths == 0 || (c->opt.paths & SLCL_PATH_BIT(p)) != 0;
}

/* Does the server have the catch-up and range functions?  Asked once per
 * connection. */
static slcl_rc
have_v11(slcl_client *c, int *yes)
{
	PGresult   *res;
	slcl_rc		rc;
	char		st[6];

	*yes = 0;
	if (c->proto < 2)
		return SLCL_OK;
	if (c->srv_v11 == 0)
	{
		res = slcli_query(c, "SELECT to_regprocedure('synclog.sync_cost(text,text,bigint,bytea)') IS NOT NULL "
						  "AND to_regprocedure('synclog.catch_up_target(text)') IS NOT NULL "
						  "AND to_regprocedure('synclog.catch_up(text,text,bigint,bytea,text,bigint,smallint,bytea,integer)') IS NOT NULL "
						  "AND to_regprocedure('synclog.range_hashes(text,text,bigint)') IS NOT NULL "
						  "AND to_regprocedure('synclog.range(text,text,integer[],smallint,bytea,integer,bigint)') IS NOT NULL",
						  0, NULL, NULL, NULL, &rc, st);
		if (res == NULL)
		{
			if (rc == SLCL_ERR_CONN)
				return rc;
			c->srv_v11 = 2;
			return SLCL_OK;
		}
		c->srv_v11 = (PQntuples(res) == 1 && PQgetlength(res, 0, 0) == 1 &&
					  PQgetvalue(res, 0, 0)[0] != 0) ? 1 : 2;
		PQclear(res);
	}
	*yes = c->srv_v11 == 1;
	return SLCL_OK;
}

/* The job's fields for a new job of kind on the committed state. */
static void
job_init(slcl_client *c, int kind, slcl_reason reason, int from_empty)
{
	const slcli_pos *p = &c->committed;
	slcli_pos	none;

	if (from_empty)
	{
		/* build the whole state beside the live one, as from no state */
		memset(&none, 0, sizeof(none));
		p = &none;
	}

	c->job_kind = kind;
	c->job_reason = reason;
	c->job_gen = p->have ? p->gen : -1;
	c->job_sgen = -1;
	snprintf(c->job_from_log, sizeof(c->job_from_log), "%s", p->have ? p->log_id : "");
	c->job_from_lsn = p->have ? p->lsn : -1;
	memcpy(c->job_from_chain, p->chain, SLCL_CHAIN_LEN);
	c->job_buckets.len = 0;
	c->job_have_after = 0;
	c->job_after.len = 0;
	c->job_after_ns = 0;
	c->job_rows = 0;
	c->job_bytes = 0;
	c->job_ms = 0;
	if (p->have)
		c->job_base = p->hash;
	else
		slc_hash_init(&c->job_base);
}

/* The job's progress event. */
void
slcli_job_event(slcl_client *c, const char *what)
{
	slcl_event	ev;

	memset(&ev, 0, sizeof(ev));
	ev.type = SLCL_EV_STAGED;
	ev.path = c->job_kind == SLCLI_JOB_RANGE ? SLCL_PATH_RANGE_REPAIR : SLCL_PATH_CATCH_UP;
	ev.reason = c->job_reason;
	ev.log_id = c->job_log;
	ev.lsn = c->job_lsn;
	ev.rows = c->job_rows;
	ev.bytes = c->job_bytes;
	ev.total_rows = ev.total_bytes = -1;
	slcli_emit(c, &ev, "%s %s target=%s lsn=%lld rows=%lld bytes=%lld buckets=%zu", slcl_path_name(ev.path),
			   what, c->job_log, (long long) c->job_lsn, (long long) c->job_rows,
			   (long long) c->job_bytes, c->job_buckets.len / 2);
}

/*
 * The server's head now (synclog.catch_up_target) as the target of the
 * job being started; *bytes gets the row's bytes.
 */
static slcl_rc
job_target(slcl_client *c, int64_t *bytes)
{
	const char *vals[1] = {c->doc};
	PGresult   *res;
	slcl_rc		rc;
	char		st[6];

	*bytes = 0;
	res = slcli_query(c, "SELECT log_id, lsn, chain, snapshot_hash FROM synclog.catch_up_target($1)",
					  1, vals, NULL, NULL, &rc, st);
	if (res == NULL)
		return rc;
	if (PQntuples(res) != 1 || slcli_col_log_id(res, 0, 0, c->job_log) != 0 ||
		slcli_col_i8(res, 0, 1, &c->job_lsn) != 0 || PQgetlength(res, 0, 2) != SLCL_CHAIN_LEN ||
		PQgetlength(res, 0, 3) != SLC_HASH_LEN)
	{
		PQclear(res);
		return slcli_fail(c, SLCL_ERR_PROTOCOL, "unexpected result from synclog.catch_up_target");
	}
	memcpy(c->job_chain, PQgetvalue(res, 0, 2), SLCL_CHAIN_LEN);
	memcpy(c->job_hash, PQgetvalue(res, 0, 3), SLC_HASH_LEN);
	*bytes = slcli_row_bytes(res, 0);
	PQclear(res);
	return SLCL_OK;
}

/* A catch-up to the server's head. */
static slcl_rc
start_catch_up(slcl_client *c, slcl_reason reason, int from_empty)
{
	slcl_rc		rc;
	int64_t		bytes;
	double		t0 = slcli_now_s();

	job_init(c, SLCLI_JOB_CATCH_UP, reason, from_empty);
	rc = job_target(c, &bytes);
	if (rc != SLCL_OK)
	{
		c->job_kind = 0;
		return rc;
	}
	c->stats.catch_up_bytes += bytes;
	c->job_bytes += bytes;
	rc = slcli_store_begin(c);
	if (rc == SLCL_OK)
		rc = job_drop_rows(c);
	if (rc == SLCL_OK && c->job_gen < 0)
		c->job_sgen = slcli_store_new_gen(c);	/* committed with next_gen */
	c->stats.catch_up_ms += ms_since(t0);
	if (rc == SLCL_OK)
		rc = slcli_job_save(c);
	rc = slcli_store_finish(c, rc);
	if (rc != SLCL_OK)
		c->job_kind = 0;
	return rc;
}

static int	ask_cost(slcl_client *c, int from_empty, int64_t *replay, int64_t *catch_up,
					 int64_t *snapshot, slcl_reason *reason, slcl_rc *rc);

/*
 * The replica's range hashes to compare with the server's (loc): the kept
 * ones, or those of the rows' values when the open check found damaged
 * rows (check_rh); after a repair that did not verify, those of the rows'
 * values computed now from every row (and kept as check_rh for the swap).
 */
static slcl_rc
local_hashes(slcl_client *c, slc_hash *loc)
{
	slcli_buckets *k;
	slc_hash	total;
	slcl_rc		rc;

	if (c->job_failures > 0 && !slcli_check_valid(c))
	{
		slc_hash   *rh = malloc(sizeof(slc_hash) * SLC_BUCKETS);

		if (rh == NULL)
			return slcli_fail(c, SLCL_ERR_NOMEM, "out of memory");
		rc = slcli_range_hashes_local(c, c->committed.gen, rh, &total);
		if (rc != SLCL_OK)
		{
			free(rh);
			return rc;
		}
		slcli_check_keep(c, rh);
	}
	if (slcli_check_valid(c))
	{
		memcpy(loc, c->check_rh, sizeof(slc_hash) * SLC_BUCKETS);
		return SLCL_OK;
	}
	rc = slcli_bk_get(c, c->committed.gen, &c->committed.hash, &k);
	if (rc == SLCL_OK)
		memcpy(loc, k->rh, sizeof(slc_hash) * SLC_BUCKETS);
	return rc;
}

/*
 * A range repair at the head (PROTOCOL.md section 6a): the target is
 * catch_up_target's; compare the replica's range hashes with the server's
 * there, and record the job with the buckets that differ (their items
 * come from synclog.range at the target).  When those buckets' bytes
 * exceed the whole head state's, catch up from the empty state instead.
 */
static slcl_rc
start_range(slcl_client *c, slcl_reason reason)
{
	const char *vals[3];
	char		lsnbuf[32];
	PGresult   *res;
	slcl_rc		rc;
	char		st[6];
	slc_hash   *srv = NULL,
			   *loc = NULL;
	slc_hash	total;
	int64_t		bytes = 0,
				diff_bytes = 0;
	int			nd = 0;
	double		t0 = slcli_now_s();

	job_init(c, SLCLI_JOB_RANGE, reason, 0);
	rc = job_target(c, &bytes);
	if (rc != SLCL_OK)
		goto out;
	srv = malloc(sizeof(slc_hash) * SLC_BUCKETS);
	loc = malloc(sizeof(slc_hash) * SLC_BUCKETS);
	if (srv == NULL || loc == NULL)
	{
		rc = slcli_fail(c, SLCL_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (int b = 0; b < SLC_BUCKETS; b++)
		slc_hash_init(&srv[b]);
	snprintf(lsnbuf, sizeof(lsnbuf), "%lld", (long long) c->job_lsn);
	vals[0] = c->doc;
	vals[1] = c->job_log;
	vals[2] = lsnbuf;
	res = slcli_query(c, "SELECT bucket, hash FROM synclog.range_hashes($1, $2, $3::bigint)",
					  3, vals, NULL, NULL, &rc, st);
	if (res == NULL)
	{
		slcl_reason r = slcli_reason_of(st);

		if (r != SLCL_DL_NONE)
		{
			/* the log went away meanwhile: choose again */
			c->need_download = r;
			rc = SLCL_OK;
		}
		goto out;
	}
	for (int i = 0; i < PQntuples(res); i++)
	{
		int32_t		b;

		if (col_int(res, i, 0, 4, &b) != 0 || b < 0 || b >= SLC_BUCKETS ||
			slc_hash_parse((const uint8_t *) PQgetvalue(res, i, 1), (size_t) PQgetlength(res, i, 1),
						   &srv[b]) != SLC_OK)
		{
			PQclear(res);
			rc = slcli_fail(c, SLCL_ERR_PROTOCOL, "malformed row from synclog.range_hashes");
			goto out;
		}
		bytes += slcli_row_bytes(res, i);
	}
	PQclear(res);

	rc = local_hashes(c, loc);
	if (rc != SLCL_OK)
		goto out;
	slc_hash_init(&total);
	for (int b = 0; b < SLC_BUCKETS; b++)
	{
		uint8_t		u[2];

		slc_hash_combine(&total, &loc[b]);
		if (slc_hash_equal(&srv[b], &loc[b]))
			continue;
		nd++;
		diff_bytes += (int64_t) srv[b].bytes;
		u[0] = (uint8_t) b;
		u[1] = (uint8_t) (b >> 8);
		if (buf_put(&c->job_buckets, u, 2) != 0)
		{
			rc = slcli_fail(c, SLCL_ERR_NOMEM, "out of memory");
			goto out;
		}
	}

	/*
	 * The repair moves the items of the buckets that differ (the server's
	 * range hashes count their bytes).  When that is more than the whole
	 * head state (most of the state differs), a catch-up from the empty
	 * state moves less: take it instead.
	 */
	if (allowed(c, SLCL_PATH_CATCH_UP))
	{
		int64_t		replay,
					head_bytes,
					snapshot;
		slcl_reason gone;
		int			r = ask_cost(c, 1, &replay, &head_bytes, &snapshot, &gone, &rc);

		if (r < 0)
			goto out;
		if (r == 1 && diff_bytes > head_bytes)
		{
			c->job_kind = 0;
			c->stats.range_repair_bytes += bytes;
			c->stats.range_repair_ms += ms_since(t0);
			slcli_path_event(c, SLCL_PATH_CATCH_UP, reason,
							 "catch_up_bytes=%lld range_repair_bytes=%lld (most of the state differs)",
							 (long long) head_bytes, (long long) diff_bytes);
			rc = start_catch_up(c, reason, 1);
			if (rc == SLCL_OK)
				slcli_job_event(c, "started");
			goto out;
		}
	}
	c->job_base = total;

	rc = slcli_store_begin(c);
	if (rc == SLCL_OK)
		rc = job_drop_rows(c);
	c->job_bytes += bytes;
	c->stats.range_repair_bytes += bytes;
	c->stats.range_repair_buckets += nd;
	c->stats.range_repair_ms += ms_since(t0);
	if (rc == SLCL_OK)
		rc = slcli_job_save(c);
	rc = slcli_store_finish(c, rc);
	if (rc != SLCL_OK)
		c->stats.range_repair_buckets -= nd;
	else
		slcli_job_event(c, "started");
out:
	if (rc != SLCL_OK || c->need_download != SLCL_DL_NONE)
		c->job_kind = 0;
	free(srv);
	free(loc);
	return rc;
}

/* The bucket list of the job as an SQL array literal ("{1,2,3}"). */
static int
bucket_array(const slcl_client *c, buf *out)
{
	char		num[16];

	out->len = 0;
	if (buf_u8(out, '{'))
		return -1;
	for (size_t i = 0; i + 1 < c->job_buckets.len; i += 2)
	{
		int			b = c->job_buckets.p[i] | (c->job_buckets.p[i + 1] << 8);

		snprintf(num, sizeof(num), "%s%d", i ? "," : "", b);
		if (buf_put(out, num, strlen(num)))
			return -1;
	}
	return buf_u8(out, '}') || buf_u8(out, '\0');
}

/*
 * One page of the job (catch_up or range rows) into the stage, committed
 * with the progress.  *n: rows received; *gone: the server no longer has
 * the position, the target or the log (c->need_download says why).
 */
static slcl_rc
job_page(slcl_client *c, int *n, int *gone)
{
	char		rowsbuf[16],
				lsn1[32],
				lsn2[32],
				nsbuf[8];
	const char *vals[9];
	int			lens[9] = {0};
	int			fmts[9] = {0};
	PGresult   *res;
	slcl_rc		rc;
	char		st[6];
	buf			arr = {0};
	int			range = c->job_kind == SLCLI_JOB_RANGE;
	int			off = range ? 1 : 0;	/* range rows start with the bucket */
	double		t0 = slcli_now_s();
	int64_t		bytes = 0;

	*n = 0;
	*gone = 0;
	snprintf(rowsbuf, sizeof(rowsbuf), "%d", c->opt.snapshot_rows);
	snprintf(nsbuf, sizeof(nsbuf), "%d", c->job_after_ns);
	vals[0] = c->doc;
	if (range)
	{
		if (bucket_array(c, &arr) != 0)
		{
			free(arr.p);
			return slcli_fail(c, SLCL_ERR_NOMEM, "out of memory");
		}
		snprintf(lsn2, sizeof(lsn2), "%lld", (long long) c->job_lsn);
		vals[1] = c->job_log;
		vals[2] = (const char *) arr.p;
		vals[3] = c->job_have_after ? nsbuf : NULL;
		vals[4] = c->job_have_after ? (const char *) nn(c->job_after.p) : NULL;
		lens[4] = (int) c->job_after.len;
		fmts[4] = 1;
		vals[5] = rowsbuf;
		vals[6] = lsn2;
		res = slcli_query(c, "SELECT bucket, ns, key, value FROM synclog.range($1, $2, $3::integer[], "
						  "$4::smallint, $5::bytea, $6::integer, $7::bigint)",
						  7, vals, lens, fmts, &rc, st);
	}
	else
	{
		int			from = c->job_gen >= 0;

		snprintf(lsn1, sizeof(lsn1), "%lld", (long long) c->job_from_lsn);
		snprintf(lsn2, sizeof(lsn2), "%lld", (long long) c->job_lsn);
		vals[1] = from ? c->job_from_log : NULL;
		vals[2] = from ? lsn1 : NULL;
		vals[3] = from ? (const char *) c->job_from_chain : NULL;
		lens[3] = SLCL_CHAIN_LEN;
		fmts[3] = 1;
		vals[4] = c->job_log;
		vals[5] = lsn2;
		vals[6] = c->job_have_after ? nsbuf : NULL;
		vals[7] = c->job_have_after ? (const char *) nn(c->job_after.p) : NULL;
		lens[7] = (int) c->job_after.len;
		fmts[7] = 1;
		vals[8] = rowsbuf;
		res = slcli_query(c, "SELECT ns, key, value FROM synclog.catch_up($1, $2, $3::bigint, $4::bytea, "
						  "$5, $6::bigint, $7::smallint, $8::bytea, $9::integer)",
						  9, vals, lens, fmts, &rc, st);
	}
	free(arr.p);
	if (res == NULL)
	{
		slcl_reason r = slcli_position_reason(st);

		if (r == SLCL_DL_NONE)
			return rc;
		*gone = 1;
		c->need_download = r;
		return SLCL_OK;
	}
	if (PQnfields(res) != 3 + off)
	{
		PQclear(res);
		return slcli_fail(c, SLCL_ERR_PROTOCOL, "synclog.%s returned unexpected columns",
						  range ? "range" : "catch_up");
	}
	*n = PQntuples(res);
	rc = slcli_store_begin(c);
	for (int i = 0; i < *n && rc == SLCL_OK; i++)
	{
		int32_t		ns;
		int32_t		b = 0;
		const uint8_t *k = (const uint8_t *) PQgetvalue(res, i, off + 1);
		size_t		kl = (size_t) PQgetlength(res, i, off + 1);
		int			isnull = PQgetisnull(res, i, off + 2);

		if (col_int(res, i, off, 2, &ns) != 0 || ns < 1 || ns > 255 || PQgetisnull(res, i, off + 1) ||
			(range && (col_int(res, i, 0, 4, &b) != 0 || isnull ||
					   (uint32_t) b != slc_bucket((uint8_t) ns, k, kl))))
		{
			rc = slcli_fail(c, SLCL_ERR_PROTOCOL, "malformed row from synclog.%s", range ? "range" : "catch_up");
			break;
		}
		rc = slcli_stage_put(c, (uint8_t) ns, k, kl, isnull ? NULL : (const uint8_t *) PQgetvalue(res, i, off + 2),
							 isnull ? 0 : (size_t) PQgetlength(res, i, off + 2));
		if (rc == SLCL_OK && i + 1 == *n)
		{
			c->job_have_after = 1;
			c->job_after_ns = ns;
			c->job_after.len = 0;
			if (buf_put(&c->job_after, k, kl) != 0)
				rc = slcli_fail(c, SLCL_ERR_NOMEM, "out of memory");
		}
		bytes += slcli_row_bytes(res, i);
	}
	PQclear(res);
	c->job_rows += *n;
	c->job_bytes += bytes;
	c->job_ms += ms_since(t0);
	if (range)
	{
		c->stats.range_repair_bytes += bytes;
		c->stats.range_repair_rows += *n;
		c->stats.range_repair_ms += ms_since(t0);
	}
	else
	{
		c->stats.catch_up_bytes += bytes;
		c->stats.catch_up_rows += *n;
		c->stats.catch_up_ms += ms_since(t0);
	}
	if (rc == SLCL_OK)
		rc = slcli_job_save(c);
	if (rc == SLCL_OK)
		rc = slcli_store_commit(c);
	if (rc != SLCL_OK)
	{
		/* back to what is stored (the counters too) */
		slcli_store_rollback(c);
		if (slcli_job_load(c) != 1)
			c->job_kind = 0;
	}
	return rc;
}

/*
 * Run the job in progress to its end: its pages, then the swap.  A
 * verification that fails drops the job: a catch-up turns to a range
 * repair (or, with no state, a download), a range repair tries again and
 * then downloads.
 */
slcl_rc
slcli_job_run(slcl_client *c)
{
	int			kind = c->job_kind;
	int			range = kind == SLCLI_JOB_RANGE;
	int			matched;
	int64_t		old_gen = c->committed.have ? c->committed.gen : -1;
	double		t0;
	slcl_rc		rc;

	for (;;)
	{
		int			n = 0,
					gone = 0;

		if (range && c->job_buckets.len == 0)
			break;				/* nothing differs: the swap moves the position */
		if (slcli_interrupted(c))
			return slcli_fail(c, SLCL_ERR_INTERRUPTED, "interrupted");
		rc = job_page(c, &n, &gone);
		if (rc != SLCL_OK)
			return rc;
		if (gone)
		{
			slcli_emit_simple(c, SLCL_EV_WARNING, "%s: the server no longer has log %s or the position (%s): starting over",
							  slcl_path_name(range ? SLCL_PATH_RANGE_REPAIR : SLCL_PATH_CATCH_UP),
							  c->job_log, slcl_reason_name(c->need_download));
			return slcli_job_clear(c);
		}
		if (n < c->opt.snapshot_rows)
			break;
		slcli_job_event(c, "page");
		slcli_debug_hook(c, range ? "repair-page" : "catchup-page");
	}

	t0 = slcli_now_s();
	if (range)
		c->stats.range_repairs++;
	else
		c->stats.catch_ups++;
	rc = slcli_stage_swap(c, &matched);
	if (rc != SLCL_OK || !matched)
	{
		if (range)
			c->stats.range_repairs--;
		else
			c->stats.catch_ups--;
	}
	if (rc != SLCL_OK)
		return rc;
	if (!matched)
	{
		slcl_reason reason = c->job_reason;

		c->job_failures++;
		slcli_emit_simple(c, SLCL_EV_WARNING, "%s to log %s lsn %lld: the result's hash is not the server's: %s",
						  slcl_path_name(range ? SLCL_PATH_RANGE_REPAIR : SLCL_PATH_CATCH_UP),
						  c->job_log, (long long) c->job_lsn,
						  c->job_failures >= JOB_MAX_FAILURES ? "downloading" : "repairing by range");
		rc = slcli_job_clear(c);
		if (rc != SLCL_OK)
			return rc;
		c->need_download = range ? (reason != SLCL_DL_NONE ? reason : SLCL_DL_MISMATCH) : SLCL_DL_MISMATCH;
		return SLCL_OK;
	}
	/* the state is the server's at the target: whatever was due is done */
	c->job_failures = 0;
	c->suspect = 0;
	slcli_check_forget(c);
	c->need_download = SLCL_DL_NONE;
	if (range)
		c->stats.range_repair_ms += ms_since(t0);
	else
		c->stats.catch_up_ms += ms_since(t0);
	/* the swap is committed with the counters of its own transaction */
	rc = slcli_store_commit(c);
	if (rc != SLCL_OK)
	{
		if (slcli_job_load(c) != 1)
			c->job_kind = 0;
		return rc;
	}
	c->job_kind = kind;
	slcli_job_event(c, "swapped");
	c->job_kind = 0;
	/* at the head the server had at the start: the log goes on from there */
	slcli_debug_hook(c, "swap-done");
	if (old_gen != c->committed.gen)
	{
		int			left = 1;

		rc = slcli_changes_diff(c, old_gen, c->committed.gen);
		while (rc == SLCL_OK && left)
			rc = slcli_store_retire(c, &left);
		if (rc != SLCL_OK)
			return rc;
	}
	return slcli_maybe_ack(c, 1);
}

/* A download, timed. */
static slcl_rc
download(slcl_client *c)
{
	double		t0 = slcli_now_s();
	slcl_rc		rc = slcli_download(c);

	c->stats.download_ms += ms_since(t0);
	return rc;
}

/*
 * sync_cost for the committed position (none: from the empty state).
 * Returns 1 with the figures, 0 when the server says the position is gone
 * (*reason), -1 on another error (c->err, *rc).
 */
static int
ask_cost(slcl_client *c, int from_empty, int64_t *replay, int64_t *catch_up, int64_t *snapshot,
		 slcl_reason *reason, slcl_rc *rc)
{
	char		lsnbuf[32];
	const char *vals[4];
	int			lens[4] = {0, 0, 0, SLCL_CHAIN_LEN};
	int			fmts[4] = {0, 0, 0, 1};
	PGresult   *res;
	char		st[6];
	int			have = c->committed.have && !from_empty;

	*replay = -1;
	*reason = SLCL_DL_NONE;
	snprintf(lsnbuf, sizeof(lsnbuf), "%lld", (long long) c->committed.lsn);
	vals[0] = c->doc;
	vals[1] = have ? c->committed.log_id : NULL;
	vals[2] = have ? lsnbuf : NULL;
	vals[3] = have ? (const char *) c->committed.chain : NULL;
	res = slcli_query(c, "SELECT replay_bytes, catch_up_bytes, snapshot_bytes FROM synclog.sync_cost($1, $2, "
					  "$3::bigint, $4::bytea)", 4, vals, lens, fmts, rc, st);
	if (res == NULL)
	{
		*reason = slcli_position_reason(st);
		return *reason != SLCL_DL_NONE ? 0 : -1;
	}
	if (PQntuples(res) != 1 || slcli_col_i8(res, 0, 1, catch_up) != 0 ||
		slcli_col_i8(res, 0, 2, snapshot) != 0 ||
		(have && slcli_col_i8(res, 0, 0, replay) != 0))
	{
		PQclear(res);
		*rc = slcli_fail(c, SLCL_ERR_PROTOCOL, "unexpected result from synclog.sync_cost");
		return -1;
	}
	c->stats.cost_bytes += slcli_row_bytes(res, 0);
	PQclear(res);
	return 1;
}

/*
 * Once per connection, before reading the log from a retained position:
 * replay it when its bytes are at most the catch-up's, else catch up.  A
 * position the server no longer has sets need_download (repaired by
 * range).
 */
slcl_rc
slcli_cost_check(slcl_client *c)
{
	int64_t		replay,
				catch_up,
				snapshot;
	slcl_reason reason;
	slcl_rc		rc;
	int			yes;
	int			r;

	c->cost_asked = 1;
	if (!c->committed.have || !c->committed.chain_known || c->job_kind || c->downloading ||
		!allowed(c, SLCL_PATH_CATCH_UP))
		return SLCL_OK;
	rc = have_v11(c, &yes);
	if (rc != SLCL_OK || !yes)
		return rc;
	r = ask_cost(c, 0, &replay, &catch_up, &snapshot, &reason, &rc);
	if (r < 0)
		return rc == SLCL_ERR_CONN || rc == SLCL_ERR_DOC_GONE ? rc : SLCL_OK;	/* the log tells */
	if (r == 0)
	{
		c->need_download = reason;
		return SLCL_OK;
	}
	/*
	 * A catch-up costs more round trips and a swap, and its bytes leave
	 * out the framing a replay's include: a short replay stays a replay.
	 */
	if (replay <= catch_up || replay <= SLCLI_REPLAY_ALWAYS)
	{
		if (replay > 0)
		{
			c->stats.replays++;
			slcli_path_event(c, SLCL_PATH_REPLAY, SLCL_DL_NONE, "replay_bytes=%lld catch_up_bytes=%lld snapshot_bytes=%lld",
							 (long long) replay, (long long) catch_up, (long long) snapshot);
		}
		return SLCL_OK;
	}
	slcli_path_event(c, SLCL_PATH_CATCH_UP, SLCL_DL_NONE, "replay_bytes=%lld catch_up_bytes=%lld snapshot_bytes=%lld",
					 (long long) replay, (long long) catch_up, (long long) snapshot);
	rc = start_catch_up(c, SLCL_DL_NONE, 0);
	if (rc == SLCL_OK)
		slcli_job_event(c, "started");
	return rc;
}

/*
 * The replica has no state, or the protocol says its position is no good
 * (need_download): range repair with a state, catch-up or download
 * without; a download when the server lacks the functions.
 */
slcl_rc
slcli_choose(slcl_client *c)
{
	slcl_reason reason = c->need_download != SLCL_DL_NONE ? c->need_download : SLCL_DL_INITIAL;
	int64_t		replay,
				catch_up,
				snapshot;
	slcl_reason gone;
	slcl_rc		rc;
	int			yes;
	int			r;

	rc = have_v11(c, &yes);
	if (rc != SLCL_OK)
		return rc;
	if (!yes || reason == SLCL_DL_BAD_HASH_ALGO || c->job_failures >= JOB_MAX_FAILURES ||
		!allowed(c, c->committed.have ? SLCL_PATH_RANGE_REPAIR : SLCL_PATH_CATCH_UP))
	{
		c->need_download = reason;
		slcli_path_event(c, SLCL_PATH_DOWNLOAD, reason, "%s",
						 !yes ? "(the server has no catch-up or range functions)" :
						 reason == SLCL_DL_BAD_HASH_ALGO ? "(a hash this client cannot check)" :
						 c->job_failures >= JOB_MAX_FAILURES ? "(catch-up or repair did not verify)" :
						 "(the other paths are not allowed)");
		rc = download(c);
		if (rc == SLCL_OK)
			c->job_failures = 0;
		return rc;
	}
	c->need_download = SLCL_DL_NONE;
	if (c->committed.have)
	{
		slcli_path_event(c, SLCL_PATH_RANGE_REPAIR, reason, "%s", "");
		return start_range(c, reason);
	}
	r = ask_cost(c, 0, &replay, &catch_up, &snapshot, &gone, &rc);
	if (r < 0)
		return rc;
	/* a tie downloads: the snapshot is the long-standing path, and acked */
	if (r == 1 && catch_up < snapshot)
	{
		slcli_path_event(c, SLCL_PATH_CATCH_UP, reason, "catch_up_bytes=%lld snapshot_bytes=%lld",
						 (long long) catch_up, (long long) snapshot);
		rc = start_catch_up(c, reason, 0);
		if (rc == SLCL_OK)
			slcli_job_event(c, "started");
		return rc;
	}
	c->need_download = reason;
	slcli_path_event(c, SLCL_PATH_DOWNLOAD, reason, "catch_up_bytes=%lld snapshot_bytes=%lld",
					 (long long) catch_up, (long long) snapshot);
	return download(c);
}
