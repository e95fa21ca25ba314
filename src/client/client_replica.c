/*
 * client_replica.c
 *
 * The replica on disk: the `state` file (the materialized state at a
 * position, with its running hash) and the local `log` of what was pulled
 * from the server after that position (entries and switch-overs).
 * Checkpointing writes a new state and starts a fresh log; opening loads
 * the state and replays the log on top of it.
 *
 * Owns: the records of `state` ('P', 'I', 'Z') and of `log` ('H', 'E',
 * 'S'), slcli_checkpoint, slcli_load_state, slcli_log_open_replay, and
 * the append and fdatasync of the local log.
 * Must never: apply a logged entry with anything but the shared core
 * (slc_state_apply_entry), trust a state file whose items do not rebuild
 * its stored running hash, replay a log of another generation than the
 * state's, or replace `log` before the new `state` is renamed into place.
 * A torn or inconsistent tail of `log` is cut off and reported as a
 * repair; a damaged `state` is reported to the caller, who discards it.
 */
#define _GNU_SOURCE
#include "client_int.h"

#include <unistd.h>

/* Forget the replica in memory: an empty state, at no position. */
void
slcli_state_reset(slcl_client *c)
{
	slc_state_free(c->state);
	c->state = slc_state_new();
	c->have_state = 0;
	c->log_id[0] = '\0';
	c->lsn = 0;
}

typedef struct item_writer
{
	FILE	   *f;
	buf	   *b;
	int64_t		n;
	int			err;
} item_writer;

int
slcli_rec_item(buf *b, uint8_t ns, const uint8_t *key, size_t klen,
			   const uint8_t *val, size_t vlen)
{
	b->len = 0;
	if (klen > UINT32_MAX)
		return -1;
	return buf_u8(b, 'I') || buf_u8(b, ns) || buf_u32(b, (uint32_t) klen) ||
		buf_put(b, key, klen) || buf_put(b, val, vlen);
}

static int
write_item(void *arg, uint8_t ns, const uint8_t *key, size_t klen,
		   const uint8_t *val, size_t vlen)
{
	item_writer *w = arg;

	if (slcli_rec_item(w->b, ns, key, klen, val, vlen) != 0 || slcli_rec_write(w->f, w->b) != 0)
	{
		w->err = 1;
		return 1;
	}
	w->n++;
	return 0;
}

static int
rec_log_header(buf *b, uint64_t gen)
{
	b->len = 0;
	return buf_u8(b, 'H') || buf_u64(b, gen);
}

/*
 * Write the state at the current position as a new generation: state.tmp,
 * fsync, rename, fsync dir; then a fresh log continuing it.  origin is the
 * download id for a state that completes a download, else 0.
 */
slcl_rc
slcli_checkpoint(slcl_client *c, uint64_t origin)
{
	char		path[4096];
	char		tmp[4096];
	uint8_t		h[SLC_HASH_LEN];
	uint64_t	gen = slcli_random64();
	FILE	   *f;
	item_writer w;
	buf		   *b = &c->rec;

	slcli_path_of(c, "state", path, sizeof(path));
	slcli_tmp_of(c, "state", tmp, sizeof(tmp));
	f = fopen(tmp, "wb");
	if (f == NULL)
		return slcli_fail_errno(c, "could not create", tmp);
	setvbuf(f, NULL, _IOFBF, 1 << 20);
	slc_hash_serialize(slc_state_hash(c->state), h);
	b->len = 0;
	if (buf_u8(b, 'P') || buf_u64(b, gen) || buf_u64(b, origin) ||
		buf_u64(b, (uint64_t) c->lsn) || buf_put(b, h, SLC_HASH_LEN) ||
		buf_u64(b, (uint64_t) slc_state_count(c->state)) ||
		buf_lp(b, c->log_id, strlen(c->log_id)) || buf_lp(b, c->doc, c->doclen))
	{
		fclose(f);
		unlink(tmp);
		return slcli_fail(c, SLCL_ERR_NOMEM, "out of memory");
	}
	w.f = f;
	w.b = b;
	w.n = 0;
	w.err = 0;
	if (fwrite(MAGIC_STATE, 1, MAGIC_LEN, f) != MAGIC_LEN || slcli_rec_write(f, b) != 0)
		w.err = 1;
	if (!w.err)
		slc_state_foreach(c->state, write_item, &w);
	b->len = 0;
	if (!w.err && (buf_u8(b, 'Z') || buf_u64(b, (uint64_t) w.n)))
		w.err = 1;
	if (w.err || slcli_rec_write(f, b) != 0 || fflush(f) != 0 || fsync(fileno(f)) != 0)
	{
		slcli_fail_errno(c, "could not write", tmp);
		fclose(f);
		unlink(tmp);
		return SLCL_ERR_IO;
	}
	if (fclose(f) != 0)
	{
		unlink(tmp);
		return slcli_fail_errno(c, "could not write", tmp);
	}
	slcli_debug_hook(c, "checkpoint-written");
	if (rename(tmp, path) != 0 || slcli_fsync_dir(c->dir) != 0)
		return slcli_fail_errno(c, "could not install", path);
	slcli_debug_hook(c, "checkpoint-renamed");

	/* The old log is contained in the new state: replace it. */
	if (c->logf)
	{
		fclose(c->logf);
		c->logf = NULL;
	}
	if (rec_log_header(b, gen) != 0)
		return slcli_fail(c, SLCL_ERR_NOMEM, "out of memory");
	c->logf = slcli_create_framed(c, "log", MAGIC_LOG, b);
	if (c->logf == NULL)
		return SLCL_ERR_IO;
	c->gen = gen;
	c->log_bytes = MAGIC_LEN + FRAME_HDR + (int64_t) b->len;
	c->log_dirty = 0;
	c->stats.checkpoints++;
	slcli_emit_simple(c, SLCL_EV_CHECKPOINT, "state at log %s lsn %lld written (%zu items), new local log",
					  c->log_id, (long long) c->lsn, slc_state_count(c->state));
	return SLCL_OK;
}

/*
 * Load `state`.  Returns 1 (loaded: c->state, position, gen set), 0 (no
 * file), -1 (damaged: *why says how), or -2 (another error, in c->err).
 */
int
slcli_load_state(slcl_client *c, uint64_t *origin, char *why, size_t whylen, slcl_rc *err)
{
	char		path[4096];
	rdr			r;
	int			rc;
	int64_t		nitems = 0;
	uint64_t	count_hdr;
	uint8_t		stored[SLC_HASH_LEN];
	uint8_t		rebuilt[SLC_HASH_LEN];
	int			result = -1;

	slcli_path_of(c, "state", path, sizeof(path));
	rc = slcli_rdr_open(&r, path, MAGIC_STATE);
	if (rc == 0)
		return 0;
	if (rc == -2)
	{
		*err = slcli_fail_errno(c, "could not read", path);
		slcli_rdr_close(&r);
		return -2;
	}
	if (rc == -1)
	{
		snprintf(why, whylen, "bad magic or short file");
		slcli_rdr_close(&r);
		return -1;
	}

	rc = slcli_rdr_next(&r);
	if (rc != 1 || r.rec.len < 1 || r.rec.p[0] != 'P')
	{
		snprintf(why, whylen, "damaged header record at offset %lld", (long long) r.pos);
		goto out;
	}
	{
		cur			k = {r.rec.p, r.rec.len, 1, 0};
		const uint8_t *hp;
		const uint8_t *lp;
		const uint8_t *dp;
		size_t		ll,
					dl;

		c->gen = cur_u64(&k);
		*origin = cur_u64(&k);
		c->lsn = (int64_t) cur_u64(&k);
		hp = cur_take(&k, SLC_HASH_LEN);
		count_hdr = cur_u64(&k);
		lp = cur_lp(&k, &ll);
		dp = cur_lp(&k, &dl);
		if (k.bad || ll == 0 || ll > SLCL_LOG_ID_MAX || c->lsn < 0)
		{
			snprintf(why, whylen, "malformed header record");
			goto out;
		}
		if (dl != c->doclen || memcmp(dp, c->doc, dl) != 0)
		{
			*err = slcli_fail(c, SLCL_ERR_ARG, "directory \"%s\" holds a replica of another document (\"%.*s\")",
				 c->dir, (int) (dl > 200 ? 200 : dl), (const char *) dp);
			result = -2;
			goto out;
		}
		memcpy(stored, hp, SLC_HASH_LEN);
		memcpy(c->log_id, lp, ll);
		c->log_id[ll] = '\0';
	}
	for (;;)
	{
		rc = slcli_rdr_next(&r);
		if (rc == -2)
		{
			*err = slcli_fail(c, SLCL_ERR_NOMEM, "out of memory reading \"%s\"", path);
			result = -2;
			goto out;
		}
		if (rc != 1)
		{
			snprintf(why, whylen, "damaged or missing record at offset %lld", (long long) r.pos);
			goto out;
		}
		if (r.rec.len >= 1 && r.rec.p[0] == 'Z')
		{
			cur			k = {r.rec.p, r.rec.len, 1, 0};
			uint64_t	n = cur_u64(&k);

			if (k.bad || n != (uint64_t) nitems || n != count_hdr)
			{
				snprintf(why, whylen, "item count mismatch");
				goto out;
			}
			break;
		}
		if (r.rec.len >= 1 && r.rec.p[0] == 'I')
		{
			cur			k = {r.rec.p, r.rec.len, 1, 0};
			uint8_t		ns = cur_u8(&k);
			uint32_t	klen = cur_u32(&k);
			const uint8_t *key = cur_take(&k, klen);
			size_t		vlen;
			const uint8_t *val = cur_rest(&k, &vlen);

			if (k.bad || (ns != SLC_NS_DATA && ns != SLC_NS_CLIENT))
			{
				snprintf(why, whylen, "malformed item at offset %lld", (long long) r.pos);
				goto out;
			}
			if (slc_state_put(c->state, ns, key, klen, val ? val : (const uint8_t *) "", vlen) != SLC_OK)
			{
				*err = slcli_fail(c, SLCL_ERR_NOMEM, "out of memory loading \"%s\"", path);
				result = -2;
				goto out;
			}
			nitems++;
			continue;
		}
		snprintf(why, whylen, "unknown record at offset %lld", (long long) r.pos);
		goto out;
	}
	if (slcli_rdr_next(&r) != 0)
	{
		snprintf(why, whylen, "data after the end record");
		goto out;
	}
	slc_hash_serialize(slc_state_hash(c->state), rebuilt);
	if (memcmp(rebuilt, stored, SLC_HASH_LEN) != 0)
	{
		snprintf(why, whylen, "items do not match the stored running hash");
		goto out;
	}
	result = 1;
out:
	slcli_rdr_close(&r);
	return result;
}

int
slcli_rec_entry(buf *b, int64_t lsn, int64_t seq, const char *cid, size_t cidlen,
				const uint8_t *delta, size_t dlen)
{
	b->len = 0;
	return buf_u8(b, 'E') || buf_u64(b, (uint64_t) lsn) || buf_u64(b, (uint64_t) seq) ||
		buf_u32(b, cid ? (uint32_t) cidlen : UINT32_MAX) ||
		(cid ? buf_put(b, cid, cidlen) : 0) || buf_put(b, delta, dlen);
}

int
slcli_rec_switch(buf *b, int64_t lsn, const uint8_t *hash, const char *from, const char *to)
{
	b->len = 0;
	return buf_u8(b, 'S') || buf_u64(b, (uint64_t) lsn) || buf_put(b, hash, SLC_HASH_LEN) ||
		buf_lp(b, from, strlen(from)) || buf_lp(b, to, strlen(to));
}

slcl_rc
slcli_log_append(slcl_client *c)
{
	if (slcli_rec_write(c->logf, &c->rec) != 0)
	{
		char		path[4096];

		slcli_path_of(c, "log", path, sizeof(path));
		return slcli_fail_errno(c, "could not append to", path);
	}
	c->log_bytes += FRAME_HDR + (int64_t) c->rec.len;
	c->log_dirty = 1;
	return SLCL_OK;
}

slcl_rc
slcli_log_sync(slcl_client *c)
{
	if (!c->log_dirty)
		return SLCL_OK;
	if (slcli_flush_sync(c->logf) != 0)
	{
		char		path[4096];

		slcli_path_of(c, "log", path, sizeof(path));
		return slcli_fail_errno(c, "could not fsync", path);
	}
	c->log_dirty = 0;
	return SLCL_OK;
}

/*
 * Open `log` after the state was loaded: replay its records on top of the
 * state, cut a torn or inconsistent tail, or replace a stale log.
 */
slcl_rc
slcli_log_open_replay(slcl_client *c)
{
	char		path[4096];
	rdr			r;
	int			rc;
	int64_t		good;
	int64_t		replayed = 0;
	const char *stop = NULL;
	buf		   *b = &c->rec;

	slcli_path_of(c, "log", path, sizeof(path));
	rc = slcli_rdr_open(&r, path, MAGIC_LOG);
	if (rc == -2)
	{
		slcli_rdr_close(&r);
		return slcli_fail_errno(c, "could not read", path);
	}
	if (rc == 1)
	{
		rc = slcli_rdr_next(&r);
		if (rc == 1 && r.rec.len == 9 && r.rec.p[0] == 'H' &&
			get_u64(r.rec.p + 1) == c->gen)
			rc = 1;
		else
			rc = -1;
	}
	if (rc != 1)
	{
		/* missing, or left from an older generation: state holds it all */
		int			existed = (rc == -1);

		slcli_rdr_close(&r);
		if (existed)
		{
			c->stats.repairs++;
			slcli_emit_simple(c, SLCL_EV_REPAIR, "local log of an older checkpoint discarded (the state file contains it)");
		}
		if (rec_log_header(b, c->gen) != 0)
			return slcli_fail(c, SLCL_ERR_NOMEM, "out of memory");
		c->logf = slcli_create_framed(c, "log", MAGIC_LOG, b);
		if (c->logf == NULL)
			return SLCL_ERR_IO;
		c->log_bytes = MAGIC_LEN + FRAME_HDR + (int64_t) b->len;
		return SLCL_OK;
	}

	good = r.pos;
	for (;;)
	{
		rc = slcli_rdr_next(&r);
		if (rc == 0)
			break;
		if (rc == -2)
		{
			slcli_rdr_close(&r);
			return slcli_fail(c, SLCL_ERR_NOMEM, "out of memory replaying \"%s\"", path);
		}
		if (rc == -1)
		{
			stop = "torn or damaged record";
			break;
		}
		if (r.rec.len >= 1 && r.rec.p[0] == 'E')
		{
			cur			k = {r.rec.p, r.rec.len, 1, 0};
			int64_t		lsn = (int64_t) cur_u64(&k);
			int64_t		seq = (int64_t) cur_u64(&k);
			uint32_t	cl = cur_u32(&k);
			const uint8_t *cid = cl == UINT32_MAX ? NULL : cur_take(&k, cl);
			size_t		dl;
			const uint8_t *delta = cur_rest(&k, &dl);
			slc_status	st;

			if (k.bad || lsn != c->lsn + 1)
			{
				stop = "entry out of sequence";
				break;
			}
			st = slc_state_apply_any(c->state, delta, dl, lsn, (const char *) cid,
									 cid ? cl : 0, seq);
			if (st == SLC_ERR_NOMEM)
			{
				slcli_rdr_close(&r);
				return slcli_fail(c, SLCL_ERR_NOMEM, "out of memory replaying \"%s\"", path);
			}
			if (st != SLC_OK)
			{
				stop = "entry does not apply";
				break;
			}
			c->lsn = lsn;
		}
		else if (r.rec.len >= 1 && r.rec.p[0] == 'S')
		{
			cur			k = {r.rec.p, r.rec.len, 1, 0};
			int64_t		lsn = (int64_t) cur_u64(&k);
			const uint8_t *h = cur_take(&k, SLC_HASH_LEN);
			size_t		fl,
						tl;
			const uint8_t *from = cur_lp(&k, &fl);
			const uint8_t *to = cur_lp(&k, &tl);
			uint8_t		local[SLC_HASH_LEN];

			slc_hash_serialize(slc_state_hash(c->state), local);
			if (k.bad || lsn != c->lsn || tl == 0 || tl > SLCL_LOG_ID_MAX ||
				fl != strlen(c->log_id) || memcmp(from, c->log_id, fl) != 0 ||
				memcmp(h, local, SLC_HASH_LEN) != 0)
			{
				stop = "switch record does not fit";
				break;
			}
			memcpy(c->log_id, to, tl);
			c->log_id[tl] = '\0';
		}
		else
		{
			stop = "unknown record";
			break;
		}
		replayed++;
		good = r.pos;
	}
	{
		int64_t		size = r.size;

		slcli_rdr_close(&r);
		if (stop != NULL)
		{
			if (slcli_truncate_file(c, "log", good) != 0)
				return SLCL_ERR_IO;
			c->stats.repairs++;
			slcli_emit_simple(c, SLCL_EV_REPAIR, "local log: %s at offset %lld: truncated %lld bytes, resuming from lsn %lld",
							  stop, (long long) good, (long long) (size - good), (long long) c->lsn);
		}
	}
	c->stats.replayed += replayed;
	c->logf = fopen(path, "ab");
	if (c->logf == NULL)
		return slcli_fail_errno(c, "could not open", path);
	c->log_bytes = good;
	return SLCL_OK;
}
