/*
 * client_legacy.c
 *
 * Converting a replica directory of the old file format (before 0.3) into
 * the replica database on open.  The old format: three framed files, each
 * an 8-byte magic then records framed as u32le length, u64le XXH3-64 of the
 * payload seeded with the length, payload (integers little-endian, "lp" a
 * u32 length then the bytes, "rest" the bytes up to the end of the record):
 *   state     "SLCLST01": 'P' gen u64, origin u64 (the download it
 *             completes, or 0), lsn u64, running hash (33), item count u64,
 *             log id lp, doc lp; 'I' ns u8, key length u32, key, value rest
 *             (one per item); 'Z' item count u64
 *   log       "SLCLLG01": 'H' gen u64 (of the state it continues); 'E' lsn
 *             u64, client_seq u64, client id length u32 (UINT32_MAX: none),
 *             client id, delta rest; 'S' lsn u64, running hash, from log id
 *             lp, to log id lp
 *   download  "SLCLDL01": 'D' download id u64, ...; 'I' rows
 * The state and the log after it are converted in one transaction (the
 * items checked against the stored running hash, the log replayed with
 * the same apply as the read loop, up to its first torn or unfitting
 * record); the old files are removed once it is committed.  An old
 * download in progress is not converted: the client downloads again.
 *
 * Owns: reading the old framed files, slcli_legacy_present and
 * slcli_legacy_convert.
 * Must never: remove the old files before the converted state is
 * committed, or convert a state whose items do not add up to its stored
 * hash (that one is reported damaged and downloaded).
 */
#define _GNU_SOURCE
#include "client_int.h"

#include <errno.h>
#include <sys/stat.h>

#include <xxhash.h>

#define MAGIC_LEN		8
#define FRAME_HDR		12

static const char *const old_files[] = {
	"state", "log", "download", "state.tmp", "log.tmp", "download.tmp"
};

/* A framed file being read. */
typedef struct rdr
{
	FILE	   *f;
	int64_t		pos;
	int64_t		size;
	buf			rec;
} rdr;

/* 1 open, 0 missing, -1 wrong magic or short, -2 I/O error. */
static int
rdr_open(rdr *r, const char *path, const char *magic)
{
	struct stat st;
	char		m[MAGIC_LEN];

	memset(r, 0, sizeof(*r));
	r->f = fopen(path, "rb");
	if (r->f == NULL)
		return errno == ENOENT ? 0 : -2;
	if (fstat(fileno(r->f), &st) != 0)
		return -2;
	r->size = st.st_size;
	if (r->size < MAGIC_LEN || fread(m, 1, MAGIC_LEN, r->f) != MAGIC_LEN ||
		memcmp(m, magic, MAGIC_LEN) != 0)
		return -1;
	r->pos = MAGIC_LEN;
	return 1;
}

static void
rdr_close(rdr *r)
{
	if (r->f)
		fclose(r->f);
	free(r->rec.p);
	memset(r, 0, sizeof(*r));
}

/* 1 a record, 0 clean end, -1 torn or damaged, -2 out of memory. */
static int
rdr_next(rdr *r)
{
	uint8_t		hdr[FRAME_HDR];
	uint32_t	len;

	if (r->pos == r->size)
		return 0;
	if (r->size - r->pos < FRAME_HDR || fread(hdr, 1, FRAME_HDR, r->f) != FRAME_HDR)
		return -1;
	len = get_u32(hdr);
	if ((int64_t) len > r->size - r->pos - FRAME_HDR)
		return -1;
	r->rec.len = 0;
	if (buf_reserve(&r->rec, len) != 0)
		return -2;
	if (len && fread(r->rec.p, 1, len, r->f) != len)
		return -1;
	r->rec.len = len;
	if (XXH3_64bits_withSeed(r->rec.p, len, (XXH64_hash_t) len) != get_u64(hdr + 4))
		return -1;
	r->pos += FRAME_HDR + len;
	return 1;
}

int
slcli_legacy_present(slcl_client *c)
{
	for (size_t i = 0; i < sizeof(old_files) / sizeof(old_files[0]); i++)
		if (slcli_file_exists(c, old_files[i]))
			return 1;
	return 0;
}

static slcl_rc
remove_old_files(slcl_client *c)
{
	for (size_t i = 0; i < sizeof(old_files) / sizeof(old_files[0]); i++)
		if (slcli_remove_file(c, old_files[i]) != 0)
			return SLCL_ERR_IO;
	if (slcli_fsync_dir(c->dir) != 0)
		return slcli_fail_errno(c, "could not fsync", c->dir);
	return SLCL_OK;
}

/* The download id of an old `download` file: 1 found, 0 none, -1 unreadable. */
static int
old_download_id(slcl_client *c, uint64_t *id)
{
	char		path[4096];
	rdr			r;
	int			rc;

	slcli_path_of(c, "download", path, sizeof(path));
	rc = rdr_open(&r, path, "SLCLDL01");
	if (rc == 1)
	{
		rc = rdr_next(&r);
		if (rc == 1 && r.rec.len >= 9 && r.rec.p[0] == 'D')
			*id = get_u64(r.rec.p + 1);
		else
			rc = -1;
	}
	else if (rc == -2)
		rc = -1;
	rdr_close(&r);
	return rc;
}

/*
 * Read `state` into generation gen (in the open transaction).  Returns 1
 * (loaded: *pos filled in, *old_gen the file's generation), -1 (damaged:
 * *why), -2 (an error in c->err).
 */
static int
load_state(slcl_client *c, int64_t gen, slcli_pos *pos, uint64_t *old_gen, uint64_t *origin,
		   char *why, size_t whylen)
{
	char		path[4096];
	rdr			r;
	int			rc;
	uint64_t	count_hdr = 0;
	uint64_t	nitems = 0;
	uint8_t		stored[SLC_HASH_LEN];
	uint8_t		rebuilt[SLC_HASH_LEN];
	int			result = -1;

	memset(pos, 0, sizeof(*pos));
	slc_hash_init(&pos->hash);
	slcli_path_of(c, "state", path, sizeof(path));
	rc = rdr_open(&r, path, "SLCLST01");
	if (rc != 1)
	{
		snprintf(why, whylen, rc == 0 ? "no state file" : "bad magic or short file");
		rdr_close(&r);
		return -1;
	}
	rc = rdr_next(&r);
	if (rc != 1 || r.rec.len < 1 || r.rec.p[0] != 'P')
	{
		snprintf(why, whylen, "damaged header record");
		goto out;
	}
	{
		cur			k = {r.rec.p, r.rec.len, 1, 0};
		const uint8_t *hp,
				   *lp,
				   *dp;
		size_t		ll,
					dl;

		*old_gen = cur_u64(&k);
		*origin = cur_u64(&k);
		pos->lsn = (int64_t) cur_u64(&k);
		hp = cur_take(&k, SLC_HASH_LEN);
		count_hdr = cur_u64(&k);
		lp = cur_lp(&k, &ll);
		dp = cur_lp(&k, &dl);
		if (k.bad || ll == 0 || ll > SLCL_LOG_ID_MAX || pos->lsn < 0)
		{
			snprintf(why, whylen, "malformed header record");
			goto out;
		}
		if (dl != c->doclen || memcmp(dp, c->doc, dl) != 0)
		{
			slcli_fail(c, SLCL_ERR_ARG, "directory \"%s\" holds a replica of another document (\"%.*s\")",
					   c->dir, (int) (dl > 200 ? 200 : dl), (const char *) dp);
			result = -2;
			goto out;
		}
		memcpy(stored, hp, SLC_HASH_LEN);
		memcpy(pos->log_id, lp, ll);
		pos->log_id[ll] = '\0';
	}
	for (;;)
	{
		rc = rdr_next(&r);
		if (rc == -2)
		{
			slcli_fail(c, SLCL_ERR_NOMEM, "out of memory reading \"%s\"", path);
			result = -2;
			goto out;
		}
		if (rc != 1)
		{
			snprintf(why, whylen, "damaged or missing record at offset %lld", (long long) r.pos);
			goto out;
		}
		if (r.rec.len < 1)
		{
			snprintf(why, whylen, "empty record at offset %lld", (long long) r.pos);
			goto out;
		}
		if (r.rec.p[0] == 'Z')
		{
			cur			k = {r.rec.p, r.rec.len, 1, 0};
			uint64_t	n = cur_u64(&k);

			if (k.bad || n != nitems || n != count_hdr)
			{
				snprintf(why, whylen, "item count mismatch");
				goto out;
			}
			break;
		}
		if (r.rec.p[0] == 'I')
		{
			cur			k = {r.rec.p, r.rec.len, 1, 0};
			uint8_t		ns = cur_u8(&k);
			uint32_t	klen = cur_u32(&k);
			const uint8_t *key = cur_take(&k, klen);
			size_t		vlen;
			const uint8_t *val = cur_rest(&k, &vlen);

			if (k.bad || (ns != SLC_NS_DATA && ns != SLC_NS_CLIENT) || klen > SLC_KEY_MAX)
			{
				snprintf(why, whylen, "malformed item at offset %lld", (long long) r.pos);
				goto out;
			}
			if (slcli_store_insert(c, gen, &pos->hash, ns, key, klen, val, vlen) != SLCL_OK)
			{
				if (strstr(c->err, "twice") == NULL)
				{
					result = -2;
					goto out;
				}
				snprintf(why, whylen, "an item twice");
				goto out;
			}
			nitems++;
			continue;
		}
		snprintf(why, whylen, "unknown record at offset %lld", (long long) r.pos);
		goto out;
	}
	if (rdr_next(&r) != 0)
	{
		snprintf(why, whylen, "data after the end record");
		goto out;
	}
	slc_hash_serialize(&pos->hash, rebuilt);
	if (memcmp(rebuilt, stored, SLC_HASH_LEN) != 0)
	{
		snprintf(why, whylen, "items do not match the stored running hash");
		goto out;
	}
	pos->have = 1;
	pos->gen = gen;
	result = 1;
out:
	rdr_close(&r);
	return result;
}

/*
 * Replay `log` of generation old_gen on the installed state (in the open
 * transaction), up to its end or its first record that is torn or does not
 * fit.  *n gets the records replayed.
 */
static slcl_rc
replay_log(slcl_client *c, uint64_t old_gen, int64_t *n)
{
	char		path[4096];
	rdr			r;
	int			rc;
	slcl_rc		out = SLCL_OK;

	*n = 0;
	slcli_path_of(c, "log", path, sizeof(path));
	rc = rdr_open(&r, path, "SLCLLG01");
	if (rc == 1)
		rc = rdr_next(&r);
	if (rc != 1 || r.rec.len != 9 || r.rec.p[0] != 'H' || get_u64(r.rec.p + 1) != old_gen)
	{
		/* none, or of an older checkpoint: the state holds it all */
		rdr_close(&r);
		return SLCL_OK;
	}
	while ((rc = rdr_next(&r)) == 1)
	{
		cur			k = {r.rec.p, r.rec.len, 1, 0};

		if (r.rec.len < 1)
			break;
		if (r.rec.p[0] == 'E')
		{
			slcli_entry e;
			uint32_t	cl;

			e.lsn = (int64_t) cur_u64(&k);
			e.seq = (int64_t) cur_u64(&k);
			cl = cur_u32(&k);
			e.cid = cl == UINT32_MAX ? NULL : (const char *) cur_take(&k, cl);
			e.cidlen = cl == UINT32_MAX ? 0 : cl;
			e.delta = cur_rest(&k, &e.dlen);
			if (k.bad || e.lsn != c->cur.lsn + 1)
				break;
			out = slcli_store_apply_entry(c, c->cur.gen, &c->cur.hash, &e, 1);
			if (out == SLCL_ERR_PROTOCOL)
			{
				out = SLCL_OK;	/* does not apply: the log ends before it */
				break;
			}
			if (out != SLCL_OK)
				break;
			c->cur.lsn = e.lsn;
		}
		else if (r.rec.p[0] == 'S')
		{
			int64_t		lsn = (int64_t) cur_u64(&k);
			const uint8_t *h = cur_take(&k, SLC_HASH_LEN);
			size_t		fl,
						tl;
			const uint8_t *from = cur_lp(&k, &fl);
			const uint8_t *to = cur_lp(&k, &tl);
			uint8_t		local[SLC_HASH_LEN];

			slc_hash_serialize(&c->cur.hash, local);
			if (k.bad || lsn != c->cur.lsn || tl == 0 || tl > SLCL_LOG_ID_MAX ||
				fl != strlen(c->cur.log_id) || memcmp(from, c->cur.log_id, fl) != 0 ||
				memcmp(h, local, SLC_HASH_LEN) != 0)
				break;
			memcpy(c->cur.log_id, to, tl);
			c->cur.log_id[tl] = '\0';
		}
		else
			break;
		(*n)++;
	}
	rdr_close(&r);
	if (rc == -2)
		return slcli_fail(c, SLCL_ERR_NOMEM, "out of memory reading \"%s\"", path);
	return out;
}

slcl_rc
slcli_legacy_convert(slcl_client *c)
{
	char		why[256];
	uint64_t	dl_id = 0;
	uint64_t	old_gen = 0;
	uint64_t	origin = 0;
	int64_t		replayed = 0;
	int			dl;
	int			st;
	int			saved_changes = c->opt.changes;
	slcli_pos	pos;
	slcl_rc		rc;

	if (c->cur.have || c->downloading)
	{
		/* converted before a crash kept the old files from going */
		c->stats.repairs++;
		slcli_emit_simple(c, SLCL_EV_REPAIR, "removed the old-format files of a replica already converted");
		return remove_old_files(c);
	}
	dl = old_download_id(c, &dl_id);
	rc = slcli_store_begin(c);
	if (rc != SLCL_OK)
		return rc;
	st = load_state(c, slcli_store_new_gen(c), &pos, &old_gen, &origin, why, sizeof(why));
	if (st == -2)
	{
		slcli_store_rollback(c);
		return c->err[0] && strstr(c->err, "another document") ? SLCL_ERR_ARG : SLCL_ERR_IO;
	}
	if (st == 1 && dl == 1 && origin != dl_id)
	{
		/* the old client had an interrupted download: its state was stale */
		st = -1;
		snprintf(why, sizeof(why), "a download was in progress");
	}
	if (st != 1)
	{
		slcli_store_rollback(c);
		rc = remove_old_files(c);
		if (rc != SLCL_OK)
			return rc;
		c->stats.repairs++;
		if (dl != 0)
			slcli_emit_simple(c, SLCL_EV_REPAIR, "old-format directory with a download in progress (%s): downloading again", why);
		else
		{
			slcli_emit_simple(c, SLCL_EV_CORRUPT, "old-format state file damaged (%s): will download", why);
			c->need_download = SLCL_DL_LOCAL_CORRUPT;
		}
		return SLCL_OK;
	}
	c->cur = pos;
	c->opt.changes = 0;			/* nothing to tell: the state is new here */
	rc = replay_log(c, old_gen, &replayed);
	c->opt.changes = saved_changes;
	rc = slcli_store_finish(c, rc);
	if (rc != SLCL_OK)
		return rc;
	slcli_debug_hook(c, "converted");
	slcli_emit_simple(c, SLCL_EV_OPEN, "converted the old-format replica (state and %lld log records) at log=%s lsn=%lld",
					  (long long) replayed, c->cur.log_id, (long long) c->cur.lsn);
	return remove_old_files(c);
}
