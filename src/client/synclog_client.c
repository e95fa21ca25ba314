/*
 * synclog_client.c - reference client library (see synclog_client.h).
 *
 * Owns: the local replica files and their crash safety, the client side of
 * PROTOCOL.md (read loop, marker check and switch, snapshot download and
 * its verification, ack, LISTEN), and the verification of a replica
 * against the server.
 * Must never: apply a delta with anything but the shared core
 * (slc_state_apply_entry), acknowledge a position before it is durable,
 * switch logs without a byte-for-byte hash match, or leave the directory
 * in a state that does not open to a consistent position.
 */
#define _GNU_SOURCE
#include "synclog_client.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <xxhash.h>

#define MAGIC_STATE		"SLCLST01"
#define MAGIC_LOG		"SLCLLG01"
#define MAGIC_DOWNLOAD	"SLCLDL01"
#define MAGIC_LEN		8
#define FRAME_HDR		12		/* u32le length + u64le checksum */

#define DL_MAX_ATTEMPTS 5

/* ---------------------------------------------------------------------
 * Small helpers
 * ---------------------------------------------------------------------
 */
typedef struct buf
{
	uint8_t    *p;
	size_t		len;
	size_t		cap;
} buf;

static int
buf_reserve(buf *b, size_t extra)
{
	size_t		need;
	size_t		cap;
	uint8_t    *p;

	if (extra > SIZE_MAX - b->len)
		return -1;
	need = b->len + extra;
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap < need)
	{
		if (cap > SIZE_MAX / 2)
		{
			cap = need;
			break;
		}
		cap *= 2;
	}
	p = realloc(b->p, cap);
	if (p == NULL)
		return -1;
	b->p = p;
	b->cap = cap;
	return 0;
}

static int
buf_put(buf *b, const void *src, size_t n)
{
	if (buf_reserve(b, n) != 0)
		return -1;
	if (n)
		memcpy(b->p + b->len, src, n);
	b->len += n;
	return 0;
}

static void
put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t) (v >> (8 * i));
}

static void
put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t) (v >> (8 * i));
}

static uint32_t
get_u32(const uint8_t *p)
{
	uint32_t	v = 0;

	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static uint64_t
get_u64(const uint8_t *p)
{
	uint64_t	v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static int
buf_u8(buf *b, uint8_t v)
{
	return buf_put(b, &v, 1);
}

static int
buf_u32(buf *b, uint32_t v)
{
	uint8_t		t[4];

	put_u32(t, v);
	return buf_put(b, t, 4);
}

static int
buf_u64(buf *b, uint64_t v)
{
	uint8_t		t[8];

	put_u64(t, v);
	return buf_put(b, t, 8);
}

/* length-prefixed bytes */
static int
buf_lp(buf *b, const void *p, size_t n)
{
	if (n > UINT32_MAX - 1)
		return -1;
	return buf_u32(b, (uint32_t) n) || buf_put(b, p, n);
}

/* Cursor over a record payload; every read is bounds-checked. */
typedef struct cur
{
	const uint8_t *p;
	size_t		n;
	size_t		off;
	int			bad;
} cur;

static const uint8_t *
cur_take(cur *c, size_t n)
{
	const uint8_t *r;

	if (c->bad || n > c->n - c->off)
	{
		c->bad = 1;
		return NULL;
	}
	r = c->p + c->off;
	c->off += n;
	return r;
}

static uint8_t
cur_u8(cur *c)
{
	const uint8_t *p = cur_take(c, 1);

	return p ? p[0] : 0;
}

static uint32_t
cur_u32(cur *c)
{
	const uint8_t *p = cur_take(c, 4);

	return p ? get_u32(p) : 0;
}

static uint64_t
cur_u64(cur *c)
{
	const uint8_t *p = cur_take(c, 8);

	return p ? get_u64(p) : 0;
}

/* length-prefixed bytes; *n gets the length */
static const uint8_t *
cur_lp(cur *c, size_t *n)
{
	uint32_t	len = cur_u32(c);
	const uint8_t *p = cur_take(c, len);

	*n = p ? len : 0;
	return p;
}

static const uint8_t *
cur_rest(cur *c, size_t *n)
{
	*n = c->bad ? 0 : c->n - c->off;
	return cur_take(c, *n);
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long) (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static uint64_t
random64(void)
{
	uint64_t	v = 0;

	if (getrandom(&v, sizeof(v), 0) != (ssize_t) sizeof(v))
		v = (uint64_t) time(NULL) * 6364136223846793005ULL ^ (uint64_t) getpid() ^
			(uint64_t) (now_s() * 1e9);
	return v ? v : 1;
}

static void
hex(const uint8_t *p, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++)
	{
		out[2 * i] = d[p[i] >> 4];
		out[2 * i + 1] = d[p[i] & 15];
	}
	out[2 * n] = '\0';
}

/* ---------------------------------------------------------------------
 * The handle
 * ---------------------------------------------------------------------
 */
struct slcl_client
{
	slcl_options opt;
	char	   *dsn;
	char	   *doc;
	size_t		doclen;
	char	   *dir;
	char	   *client_id;
	char	   *debug_point;
	int			debug_fired;
	int			lockfd;
	char		channel[64];

	PGconn	   *conn;

	/* the replica: valid when have_state */
	slc_state  *state;
	int			have_state;
	char		log_id[SLCL_LOG_ID_MAX + 1];
	int64_t		lsn;
	uint64_t	gen;			/* generation of the state file */
	FILE	   *logf;			/* append handle of `log` */
	int64_t		log_bytes;
	int			log_dirty;		/* appended since the last fdatasync */

	/* a download in progress: valid when downloading */
	int			downloading;
	slcl_reason dl_reason;
	uint64_t	dl_id;
	char		dl_log[SLCL_LOG_ID_MAX + 1];
	int64_t		dl_base;
	uint8_t		dl_hash[SLC_HASH_LEN];
	buf			dl_after;		/* last key received */
	int			dl_have_after;
	int64_t		dl_rows;
	int64_t		dl_bytes;
	int64_t		dl_total_rows;
	int64_t		dl_total_bytes;
	FILE	   *dlf;
	int			dl_attempts;

	slcl_reason need_download;	/* set when the protocol says: download */

	/* acks */
	char		acked_log[SLCL_LOG_ID_MAX + 1];
	int64_t		acked_lsn;
	double		acked_at;

	slcl_stats	stats;
	buf			rec;			/* scratch record */
	char		err[1024];
};

static char open_error[1024];

const char *
slcl_open_error(void)
{
	return open_error;
}

const char *
slcl_errmsg(const slcl_client *c)
{
	return c ? c->err : open_error;
}

/* One line: newlines and tabs of libpq messages become single spaces. */
static void
one_line(char *s)
{
	char	   *w = s;
	int			space = 0;

	for (char *r = s; *r; r++)
	{
		if (*r == '\n' || *r == '\r' || *r == '\t' || *r == ' ')
		{
			space = 1;
			continue;
		}
		if (space && w != s)
			*w++ = ' ';
		space = 0;
		*w++ = *r;
	}
	*w = '\0';
}

static slcl_rc
fail(slcl_client *c, slcl_rc rc, const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
	one_line(c->err);
	return rc;
}

static slcl_rc
fail_errno(slcl_client *c, const char *what, const char *path)
{
	return fail(c, SLCL_ERR_IO, "%s \"%s\": %s", what, path, strerror(errno));
}

const char *
slcl_reason_name(slcl_reason r)
{
	switch (r)
	{
		case SLCL_DL_NONE:
			return "none";
		case SLCL_DL_INITIAL:
			return "initial";
		case SLCL_DL_LOCAL_CORRUPT:
			return "local-corrupt";
		case SLCL_DL_MISMATCH:
			return "mismatch";
		case SLCL_DL_COLLECTED:
			return "collected";
		case SLCL_DL_UNKNOWN_LOG:
			return "unknown-log";
		case SLCL_DL_AHEAD:
			return "ahead";
		case SLCL_DL_INCONSISTENT:
			return "inconsistent";
		case SLCL_DL_BAD_HASH_ALGO:
			return "hash-algorithm";
	}
	return "?";
}

static void
emit(slcl_client *c, slcl_event *ev, const char *fmt,...)
{
	char		msg[1024];
	va_list		ap;

	if (c->opt.on_event == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ev->doc = c->doc;
	ev->message = msg;
	c->opt.on_event(c->opt.event_arg, ev);
}

static void
emit_simple(slcl_client *c, slcl_event_type t, const char *fmt,...)
{
	char		msg[1024];
	va_list		ap;
	slcl_event	ev;

	if (c->opt.on_event == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	memset(&ev, 0, sizeof(ev));
	ev.type = t;
	ev.doc = c->doc;
	ev.log_id = c->have_state ? c->log_id : NULL;
	ev.lsn = c->lsn;
	ev.total_rows = ev.total_bytes = -1;
	ev.message = msg;
	c->opt.on_event(c->opt.event_arg, &ev);
}

static void
debug_hook(slcl_client *c, const char *point)
{
	if (c->debug_point == NULL || c->debug_fired ||
		strcmp(c->debug_point, point) != 0)
		return;
	c->debug_fired = 1;
	emit_simple(c, SLCL_EV_DEBUG, "at %s: sleeping %d ms", point,
				c->opt.debug_delay_ms);
	sleep_ms(c->opt.debug_delay_ms);
}

static int
interrupted(const slcl_client *c)
{
	return c->opt.interrupt != NULL && *c->opt.interrupt != 0;
}

/* ---------------------------------------------------------------------
 * Files: paths, fsync, framed records
 * ---------------------------------------------------------------------
 */
static void
path_of(const slcl_client *c, const char *name, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s/%s", c->dir, name);
}

/* dir/name.tmp */
static void
tmp_of(const slcl_client *c, const char *name, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s/%s.tmp", c->dir, name);
}

static int
fsync_dir(const char *dir)
{
	int			fd = open(dir, O_RDONLY | O_DIRECTORY);
	int			rc;

	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

/* Flush stdio buffers and the file's data to disk. */
static int
flush_sync(FILE *f)
{
	if (fflush(f) != 0)
		return -1;
	return fdatasync(fileno(f));
}

static int
rec_write(FILE *f, const buf *payload)
{
	uint8_t		hdr[FRAME_HDR];

	if (payload->len > UINT32_MAX)
		return -1;
	put_u32(hdr, (uint32_t) payload->len);
	put_u64(hdr + 4, XXH3_64bits_withSeed(payload->p, payload->len,
										  (XXH64_hash_t) payload->len));
	if (fwrite(hdr, 1, FRAME_HDR, f) != FRAME_HDR ||
		(payload->len && fwrite(payload->p, 1, payload->len, f) != payload->len))
		return -1;
	return 0;
}

typedef struct rdr
{
	FILE	   *f;
	int64_t		pos;			/* offset of the next record */
	int64_t		size;
	buf			rec;
} rdr;

/*
 * Open a framed file and check its magic.  Returns 1 (ok), 0 (missing),
 * -1 (unreadable: wrong magic or too short), -2 (I/O error, errno set).
 */
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

/*
 * Next record into r->rec.  1: a record; 0: clean end of file; -1: a torn
 * or damaged record at r->pos (r->pos unchanged); -2: out of memory or a
 * read error.
 */
static int
rdr_next(rdr *r)
{
	uint8_t		hdr[FRAME_HDR];
	uint32_t	len;

	if (r->pos == r->size)
		return 0;
	if (r->size - r->pos < FRAME_HDR)
		return -1;
	if (fread(hdr, 1, FRAME_HDR, r->f) != FRAME_HDR)
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

/* Create `name` atomically: write name.tmp with magic + the record, fsync,
 * rename, fsync the directory.  Returns an append handle, or NULL. */
static FILE *
create_framed(slcl_client *c, const char *name, const char *magic,
			  const buf *first)
{
	char		path[4096];
	char		tmp[4096];
	FILE	   *f;

	path_of(c, name, path, sizeof(path));
	tmp_of(c, name, tmp, sizeof(tmp));
	f = fopen(tmp, "wb");
	if (f == NULL)
	{
		fail_errno(c, "could not create", tmp);
		return NULL;
	}
	if (fwrite(magic, 1, MAGIC_LEN, f) != MAGIC_LEN || rec_write(f, first) != 0 ||
		fflush(f) != 0 || fsync(fileno(f)) != 0)
	{
		fail_errno(c, "could not write", tmp);
		fclose(f);
		unlink(tmp);
		return NULL;
	}
	if (fclose(f) != 0 || rename(tmp, path) != 0 || fsync_dir(c->dir) != 0)
	{
		fail_errno(c, "could not install", path);
		unlink(tmp);
		return NULL;
	}
	f = fopen(path, "ab");
	if (f == NULL)
		fail_errno(c, "could not open", path);
	return f;
}

/* Remove a file if it exists (the caller fsyncs the directory). */
static int
remove_file(slcl_client *c, const char *name)
{
	char		path[4096];

	path_of(c, name, path, sizeof(path));
	if (unlink(path) != 0 && errno != ENOENT)
	{
		fail_errno(c, "could not remove", path);
		return -1;
	}
	return 0;
}

/* Truncate a file to len bytes, durably. */
static int
truncate_file(slcl_client *c, const char *name, int64_t len)
{
	char		path[4096];
	int			fd;

	path_of(c, name, path, sizeof(path));
	fd = open(path, O_WRONLY);
	if (fd < 0 || ftruncate(fd, (off_t) len) != 0 || fsync(fd) != 0)
	{
		fail_errno(c, "could not truncate", path);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/* ---------------------------------------------------------------------
 * The state file and the log file
 * ---------------------------------------------------------------------
 */
typedef struct item_writer
{
	FILE	   *f;
	buf	   *b;
	int64_t		n;
	int			err;
} item_writer;

static int
rec_item(buf *b, uint8_t ns, const uint8_t *key, size_t klen,
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

	if (rec_item(w->b, ns, key, klen, val, vlen) != 0 || rec_write(w->f, w->b) != 0)
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
static slcl_rc
checkpoint(slcl_client *c, uint64_t origin)
{
	char		path[4096];
	char		tmp[4096];
	uint8_t		h[SLC_HASH_LEN];
	uint64_t	gen = random64();
	FILE	   *f;
	item_writer w;
	buf		   *b = &c->rec;

	path_of(c, "state", path, sizeof(path));
	tmp_of(c, "state", tmp, sizeof(tmp));
	f = fopen(tmp, "wb");
	if (f == NULL)
		return fail_errno(c, "could not create", tmp);
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
		return fail(c, SLCL_ERR_NOMEM, "out of memory");
	}
	w.f = f;
	w.b = b;
	w.n = 0;
	w.err = 0;
	if (fwrite(MAGIC_STATE, 1, MAGIC_LEN, f) != MAGIC_LEN || rec_write(f, b) != 0)
		w.err = 1;
	if (!w.err)
		slc_state_foreach(c->state, write_item, &w);
	b->len = 0;
	if (!w.err && (buf_u8(b, 'Z') || buf_u64(b, (uint64_t) w.n)))
		w.err = 1;
	if (w.err || rec_write(f, b) != 0 || fflush(f) != 0 || fsync(fileno(f)) != 0)
	{
		fail_errno(c, "could not write", tmp);
		fclose(f);
		unlink(tmp);
		return SLCL_ERR_IO;
	}
	if (fclose(f) != 0)
	{
		unlink(tmp);
		return fail_errno(c, "could not write", tmp);
	}
	debug_hook(c, "checkpoint-written");
	if (rename(tmp, path) != 0 || fsync_dir(c->dir) != 0)
		return fail_errno(c, "could not install", path);
	debug_hook(c, "checkpoint-renamed");

	/* The old log is contained in the new state: replace it. */
	if (c->logf)
	{
		fclose(c->logf);
		c->logf = NULL;
	}
	if (rec_log_header(b, gen) != 0)
		return fail(c, SLCL_ERR_NOMEM, "out of memory");
	c->logf = create_framed(c, "log", MAGIC_LOG, b);
	if (c->logf == NULL)
		return SLCL_ERR_IO;
	c->gen = gen;
	c->log_bytes = MAGIC_LEN + FRAME_HDR + (int64_t) b->len;
	c->log_dirty = 0;
	c->stats.checkpoints++;
	emit_simple(c, SLCL_EV_CHECKPOINT, "state at log %s lsn %lld written (%zu items), new local log",
				c->log_id, (long long) c->lsn, slc_state_count(c->state));
	return SLCL_OK;
}

/*
 * Load `state`.  Returns 1 (loaded: c->state, position, gen set), 0 (no
 * file), -1 (damaged: *why says how), or -2 (another error, in c->err).
 */
static int
load_state(slcl_client *c, uint64_t *origin, char *why, size_t whylen, slcl_rc *err)
{
	char		path[4096];
	rdr			r;
	int			rc;
	int64_t		nitems = 0;
	uint64_t	count_hdr;
	uint8_t		stored[SLC_HASH_LEN];
	uint8_t		rebuilt[SLC_HASH_LEN];
	int			result = -1;

	path_of(c, "state", path, sizeof(path));
	rc = rdr_open(&r, path, MAGIC_STATE);
	if (rc == 0)
		return 0;
	if (rc == -2)
	{
		*err = fail_errno(c, "could not read", path);
		rdr_close(&r);
		return -2;
	}
	if (rc == -1)
	{
		snprintf(why, whylen, "bad magic or short file");
		rdr_close(&r);
		return -1;
	}

	rc = rdr_next(&r);
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
			*err = fail(c, SLCL_ERR_ARG, "directory \"%s\" holds a replica of another document (\"%.*s\")",
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
		rc = rdr_next(&r);
		if (rc == -2)
		{
			*err = fail(c, SLCL_ERR_NOMEM, "out of memory reading \"%s\"", path);
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
				*err = fail(c, SLCL_ERR_NOMEM, "out of memory loading \"%s\"", path);
				result = -2;
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
	slc_hash_serialize(slc_state_hash(c->state), rebuilt);
	if (memcmp(rebuilt, stored, SLC_HASH_LEN) != 0)
	{
		snprintf(why, whylen, "items do not match the stored running hash");
		goto out;
	}
	result = 1;
out:
	rdr_close(&r);
	return result;
}

static int
rec_entry(buf *b, int64_t lsn, int64_t seq, const char *cid, size_t cidlen,
		  const uint8_t *delta, size_t dlen)
{
	b->len = 0;
	return buf_u8(b, 'E') || buf_u64(b, (uint64_t) lsn) || buf_u64(b, (uint64_t) seq) ||
		buf_u32(b, cid ? (uint32_t) cidlen : UINT32_MAX) ||
		(cid ? buf_put(b, cid, cidlen) : 0) || buf_put(b, delta, dlen);
}

static int
rec_switch(buf *b, int64_t lsn, const uint8_t *hash, const char *from, const char *to)
{
	b->len = 0;
	return buf_u8(b, 'S') || buf_u64(b, (uint64_t) lsn) || buf_put(b, hash, SLC_HASH_LEN) ||
		buf_lp(b, from, strlen(from)) || buf_lp(b, to, strlen(to));
}

static slcl_rc
log_append(slcl_client *c)
{
	if (rec_write(c->logf, &c->rec) != 0)
	{
		char		path[4096];

		path_of(c, "log", path, sizeof(path));
		return fail_errno(c, "could not append to", path);
	}
	c->log_bytes += FRAME_HDR + (int64_t) c->rec.len;
	c->log_dirty = 1;
	return SLCL_OK;
}

static slcl_rc
log_sync(slcl_client *c)
{
	if (!c->log_dirty)
		return SLCL_OK;
	if (flush_sync(c->logf) != 0)
	{
		char		path[4096];

		path_of(c, "log", path, sizeof(path));
		return fail_errno(c, "could not fsync", path);
	}
	c->log_dirty = 0;
	return SLCL_OK;
}

/*
 * Open `log` after the state was loaded: replay its records on top of the
 * state, cut a torn or inconsistent tail, or replace a stale log.
 */
static slcl_rc
log_open_replay(slcl_client *c)
{
	char		path[4096];
	rdr			r;
	int			rc;
	int64_t		good;
	int64_t		replayed = 0;
	const char *stop = NULL;
	buf		   *b = &c->rec;

	path_of(c, "log", path, sizeof(path));
	rc = rdr_open(&r, path, MAGIC_LOG);
	if (rc == -2)
	{
		rdr_close(&r);
		return fail_errno(c, "could not read", path);
	}
	if (rc == 1)
	{
		rc = rdr_next(&r);
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

		rdr_close(&r);
		if (existed)
		{
			c->stats.repairs++;
			emit_simple(c, SLCL_EV_REPAIR, "local log of an older checkpoint discarded (the state file contains it)");
		}
		if (rec_log_header(b, c->gen) != 0)
			return fail(c, SLCL_ERR_NOMEM, "out of memory");
		c->logf = create_framed(c, "log", MAGIC_LOG, b);
		if (c->logf == NULL)
			return SLCL_ERR_IO;
		c->log_bytes = MAGIC_LEN + FRAME_HDR + (int64_t) b->len;
		return SLCL_OK;
	}

	good = r.pos;
	for (;;)
	{
		rc = rdr_next(&r);
		if (rc == 0)
			break;
		if (rc == -2)
		{
			rdr_close(&r);
			return fail(c, SLCL_ERR_NOMEM, "out of memory replaying \"%s\"", path);
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
			st = slc_state_apply_entry(c->state, delta, dl, lsn, (const char *) cid,
									   cid ? cl : 0, seq);
			if (st == SLC_ERR_NOMEM)
			{
				rdr_close(&r);
				return fail(c, SLCL_ERR_NOMEM, "out of memory replaying \"%s\"", path);
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

		rdr_close(&r);
		if (stop != NULL)
		{
			if (truncate_file(c, "log", good) != 0)
				return SLCL_ERR_IO;
			c->stats.repairs++;
			emit_simple(c, SLCL_EV_REPAIR, "local log: %s at offset %lld: truncated %lld bytes, resuming from lsn %lld",
						stop, (long long) good, (long long) (size - good), (long long) c->lsn);
		}
	}
	c->stats.replayed += replayed;
	c->logf = fopen(path, "ab");
	if (c->logf == NULL)
		return fail_errno(c, "could not open", path);
	c->log_bytes = good;
	return SLCL_OK;
}

/* ---------------------------------------------------------------------
 * The download file
 * ---------------------------------------------------------------------
 */
static void
state_reset(slcl_client *c)
{
	slc_state_free(c->state);
	c->state = slc_state_new();
	c->have_state = 0;
	c->log_id[0] = '\0';
	c->lsn = 0;
}

/*
 * Load `download`.  Returns 1 (loaded into c->state and dl_*), 0 (none), -1
 * (unusable: removed), -2 (error in c->err).
 */
static int
load_download(slcl_client *c)
{
	char		path[4096];
	rdr			r;
	int			rc;
	int64_t		good;

	path_of(c, "download", path, sizeof(path));
	rc = rdr_open(&r, path, MAGIC_DOWNLOAD);
	if (rc == 0)
		return 0;
	if (rc == -2)
	{
		fail_errno(c, "could not read", path);
		rdr_close(&r);
		return -2;
	}
	if (rc == 1)
		rc = rdr_next(&r);
	if (rc != 1 || r.rec.len < 1 || r.rec.p[0] != 'D')
	{
		rdr_close(&r);
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
			rdr_close(&r);
			return -1;
		}
		if (dl != c->doclen || memcmp(dp, c->doc, dl) != 0)
		{
			rdr_close(&r);
			fail(c, SLCL_ERR_ARG, "directory \"%s\" holds a download of another document", c->dir);
			return -2;
		}
		memcpy(c->dl_hash, hp, SLC_HASH_LEN);
		memcpy(c->dl_log, lp, ll);
		c->dl_log[ll] = '\0';
	}
	state_reset(c);
	c->dl_rows = 0;
	c->dl_bytes = 0;
	c->dl_have_after = 0;
	good = r.pos;
	for (;;)
	{
		rc = rdr_next(&r);
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

		rdr_close(&r);
		if (rc == -2)
		{
			fail(c, SLCL_ERR_NOMEM, "out of memory loading \"%s\"", path);
			return -2;
		}
		if (good < size)
		{
			if (truncate_file(c, "download", good) != 0)
				return -2;
			c->stats.repairs++;
			emit_simple(c, SLCL_EV_REPAIR, "download: torn tail at offset %lld: truncated %lld bytes",
						(long long) good, (long long) (size - good));
		}
	}
	c->dlf = fopen(path, "ab");
	if (c->dlf == NULL)
	{
		fail_errno(c, "could not open", path);
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
	state_reset(c);
	if (remove_file(c, "download") != 0)
		return SLCL_ERR_IO;
	if (fsync_dir(c->dir) != 0)
		return fail_errno(c, "could not fsync", c->dir);
	return SLCL_OK;
}

/* ---------------------------------------------------------------------
 * libpq
 * ---------------------------------------------------------------------
 */
static void
drop_conn(slcl_client *c)
{
	if (c->conn)
		PQfinish(c->conn);
	c->conn = NULL;
}

/* Server notices (e.g. WARNINGs) become warning events, not stderr noise. */
static void
on_notice(void *arg, const char *message)
{
	slcl_client *c = arg;
	char		line[512];

	snprintf(line, sizeof(line), "%s", message);
	one_line(line);
	emit_simple(c, SLCL_EV_WARNING, "server: %s", line);
}

static slcl_rc
ensure_conn(slcl_client *c)
{
	char		sql[128];
	PGresult   *res;

	if (c->conn && PQstatus(c->conn) == CONNECTION_OK)
		return SLCL_OK;
	drop_conn(c);
	if (c->dsn == NULL)
		return fail(c, SLCL_ERR_ARG, "no connection string given");
	c->conn = PQconnectdb(c->dsn);
	if (PQstatus(c->conn) != CONNECTION_OK)
	{
		fail(c, SLCL_ERR_CONN, "could not connect: %s", PQerrorMessage(c->conn));
		drop_conn(c);
		return SLCL_ERR_CONN;
	}
	PQsetNoticeProcessor(c->conn, on_notice, c);
	/* PROTOCOL.md section 12: the channel is a plain lowercase identifier. */
	snprintf(sql, sizeof(sql), "LISTEN %s", c->channel);
	res = PQexec(c->conn, sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
	{
		fail(c, SLCL_ERR_CONN, "LISTEN failed: %s", PQerrorMessage(c->conn));
		PQclear(res);
		drop_conn(c);
		return SLCL_ERR_CONN;
	}
	PQclear(res);
	emit_simple(c, SLCL_EV_CONNECT, "connected, listening on %s", c->channel);
	return SLCL_OK;
}

/*
 * Run a query with text parameters (those with fmts[i] = 1 are binary) and
 * binary results.  Returns the result on success; otherwise NULL with
 * *rc set (SLCL_ERR_CONN if the connection broke, else SLCL_ERR_SERVER)
 * and sqlstate filled in.
 */
static PGresult *
query(slcl_client *c, const char *sql, int n, const char *const *vals,
	  const int *lens, const int *fmts, slcl_rc *rc, char sqlstate[6])
{
	PGresult   *res;
	ExecStatusType s;
	const char *st;

	sqlstate[0] = '\0';
	*rc = ensure_conn(c);
	if (*rc != SLCL_OK)
		return NULL;
	res = PQexecParams(c->conn, sql, n, NULL, vals, lens, fmts, 1);
	s = PQresultStatus(res);
	if (s == PGRES_TUPLES_OK || s == PGRES_COMMAND_OK)
		return res;
	st = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	if (st)
		snprintf(sqlstate, 6, "%s", st);
	fail(c, SLCL_ERR_SERVER, "%s", res ? PQresultErrorMessage(res) : PQerrorMessage(c->conn));
	PQclear(res);
	if (PQstatus(c->conn) != CONNECTION_OK || sqlstate[0] == '\0' ||
		strncmp(sqlstate, "08", 2) == 0 || strcmp(sqlstate, "57P01") == 0)
	{
		drop_conn(c);
		*rc = SLCL_ERR_CONN;
	}
	else if (strcmp(sqlstate, "SL001") == 0)
		*rc = SLCL_ERR_DOC_GONE;
	else
		*rc = SLCL_ERR_SERVER;
	return NULL;
}

static int
col_i8(const PGresult *res, int row, int col, int64_t *out)
{
	const uint8_t *p;
	uint64_t	v = 0;

	if (PQgetisnull(res, row, col) || PQgetlength(res, row, col) != 8)
		return -1;
	p = (const uint8_t *) PQgetvalue(res, row, col);
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	*out = (int64_t) v;
	return 0;
}

static int
row_bytes(const PGresult *res, int row)
{
	int			n = 0;

	for (int j = 0; j < PQnfields(res); j++)
		n += PQgetlength(res, row, j);
	return n;
}

/* Copy a log id from a result, checking it. */
static int
col_log_id(const PGresult *res, int row, int col, char out[SLCL_LOG_ID_MAX + 1])
{
	int			len;
	const char *p;

	if (PQgetisnull(res, row, col))
		return -1;
	len = PQgetlength(res, row, col);
	p = PQgetvalue(res, row, col);
	if (len < 1 || len > SLCL_LOG_ID_MAX)
		return -1;
	for (int i = 0; i < len; i++)
		if (p[i] <= ' ' || p[i] > '~')
			return -1;
	memcpy(out, p, len);
	out[len] = '\0';
	return 0;
}

static slcl_reason
reason_of(const char *sqlstate)
{
	if (strcmp(sqlstate, "SL003") == 0)
		return SLCL_DL_COLLECTED;
	if (strcmp(sqlstate, "SL002") == 0)
		return SLCL_DL_UNKNOWN_LOG;
	if (strcmp(sqlstate, "SL004") == 0)
		return SLCL_DL_AHEAD;
	return SLCL_DL_NONE;
}

/* ---------------------------------------------------------------------
 * ack
 * ---------------------------------------------------------------------
 */
static slcl_rc
ack_at(slcl_client *c, const char *log_id, int64_t lsn)
{
	char		lsnbuf[32];
	const char *vals[4];
	PGresult   *res;
	slcl_rc		rc;
	char		st[6];

	if (!c->opt.ack)
		return SLCL_OK;
	snprintf(lsnbuf, sizeof(lsnbuf), "%lld", (long long) lsn);
	vals[0] = c->doc;
	vals[1] = c->client_id;
	vals[2] = log_id;
	vals[3] = lsnbuf;
	res = query(c, "SELECT synclog.ack($1, $2, $3, $4::bigint)", 4, vals, NULL, NULL, &rc, st);
	if (res == NULL)
	{
		if (rc == SLCL_ERR_CONN || rc == SLCL_ERR_DOC_GONE)
			return rc;
		/* An ack is advice to the server; the read loop finds real trouble. */
		emit_simple(c, SLCL_EV_WARNING, "ack of log %s lsn %lld failed (%s): %s",
					log_id, (long long) lsn, st, c->err);
		return SLCL_OK;
	}
	PQclear(res);
	c->stats.acks++;
	snprintf(c->acked_log, sizeof(c->acked_log), "%s", log_id);
	c->acked_lsn = lsn;
	c->acked_at = now_s();
	return SLCL_OK;
}

/* Ack if the log changed, or (position durable) the interval has passed. */
static slcl_rc
maybe_ack(slcl_client *c, int force)
{
	if (!c->opt.ack || !c->have_state || c->downloading)
		return SLCL_OK;
	if (!force && strcmp(c->acked_log, c->log_id) == 0 &&
		now_s() - c->acked_at < c->opt.ack_interval_ms / 1000.0)
		return SLCL_OK;
	return ack_at(c, c->log_id, c->lsn);
}

slcl_rc
slcl_ack(slcl_client *c)
{
	slcl_rc		rc;

	if (!c->have_state || c->downloading)
		return fail(c, SLCL_ERR_STATE, "no complete local state to acknowledge");
	rc = log_sync(c);
	if (rc != SLCL_OK)
		return rc;
	return maybe_ack(c, 1);
}

/* ---------------------------------------------------------------------
 * Download (PROTOCOL.md section 6)
 * ---------------------------------------------------------------------
 */
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
	res = query(c, "SELECT log_id, base_lsn, head_lsn, snapshot_hash FROM synclog.current_log($1)",
				1, vals, NULL, NULL, &rc, st);
	if (res == NULL)
		return rc;
	if (PQntuples(res) != 1 || col_log_id(res, 0, 0, log_id) != 0 ||
		col_i8(res, 0, 1, &base) != 0 || col_i8(res, 0, 2, &head) != 0 ||
		PQgetisnull(res, 0, 3) || PQgetlength(res, 0, 3) != SLC_HASH_LEN)
	{
		PQclear(res);
		return fail(c, SLCL_ERR_PROTOCOL, "unexpected result from synclog.current_log");
	}
	memcpy(hash, PQgetvalue(res, 0, 3), SLC_HASH_LEN);
	PQclear(res);

	c->dl_total_rows = c->dl_total_bytes = -1;
	if (c->opt.want_totals)
	{
		vals[1] = log_id;
		res = query(c, "SELECT key_count, key_bytes FROM synclog.snapshot_info($1, $2)",
					2, vals, NULL, NULL, &rc, st);
		if (res && PQntuples(res) == 1)
		{
			col_i8(res, 0, 0, &c->dl_total_rows);
			col_i8(res, 0, 1, &c->dl_total_bytes);
		}
		if (res)
			PQclear(res);
		else if (rc == SLCL_ERR_CONN || rc == SLCL_ERR_DOC_GONE)
			return rc;
		/* otherwise the snapshot calls below report the problem */
	}

	/* 1. record the target durably */
	c->dl_id = random64();
	b->len = 0;
	if (buf_u8(b, 'D') || buf_u64(b, c->dl_id) || buf_u64(b, (uint64_t) base) ||
		buf_put(b, hash, SLC_HASH_LEN) || buf_u8(b, (uint8_t) reason) ||
		buf_lp(b, log_id, strlen(log_id)) || buf_lp(b, c->doc, c->doclen))
		return fail(c, SLCL_ERR_NOMEM, "out of memory");
	if (c->dlf)
	{
		fclose(c->dlf);
		c->dlf = NULL;
	}
	c->dlf = create_framed(c, "download", MAGIC_DOWNLOAD, b);
	if (c->dlf == NULL)
		return SLCL_ERR_IO;

	/* 2. then drop the old replica */
	if (c->logf)
	{
		fclose(c->logf);
		c->logf = NULL;
	}
	if (remove_file(c, "state") != 0 || remove_file(c, "log") != 0)
		return SLCL_ERR_IO;
	if (fsync_dir(c->dir) != 0)
		return fail_errno(c, "could not fsync", c->dir);
	state_reset(c);
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
	emit(c, &ev, "log=%s base=%lld reason=%s head=%lld%s", c->dl_log, (long long) base,
		 slcl_reason_name(reason), (long long) head, restart ? " (restart)" : "");

	/*
	 * Tell the server where we are going, so that retention keeps the log
	 * for us while we download it (PROTOCOL.md section 8).
	 */
	return ack_at(c, c->dl_log, c->dl_base);
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

		if (interrupted(c))
			return fail(c, SLCL_ERR_INTERRUPTED, "interrupted");
		vals[2] = c->dl_have_after ? (const char *) c->dl_after.p : NULL;
		lens[2] = c->dl_have_after ? (int) c->dl_after.len : 0;
		if (c->dl_have_after && c->dl_after.len == 0)
			vals[2] = "";		/* the empty key: not NULL */
		res = query(c, "SELECT key, value FROM synclog.snapshot($1, $2, $3::bytea, $4::integer)",
					4, vals, lens, fmts, &rc, st);
		if (res == NULL)
		{
			if (reason_of(st) == SLCL_DL_COLLECTED || reason_of(st) == SLCL_DL_UNKNOWN_LOG)
			{
				*restart = 1;
				emit_simple(c, SLCL_EV_DOWNLOAD_RESTART, "log=%s went away mid-download (%s): starting over with the current log",
							c->dl_log, st);
				return SLCL_OK;
			}
			return rc;
		}
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
				return fail(c, SLCL_ERR_PROTOCOL, "malformed snapshot row");
			}
			if (slc_state_put(c->state, SLC_NS_DATA, k, kl, v, vl) != SLC_OK ||
				rec_item(&c->rec, SLC_NS_DATA, k, kl, v, vl) != 0)
			{
				PQclear(res);
				return fail(c, SLCL_ERR_NOMEM, "out of memory");
			}
			if (rec_write(c->dlf, &c->rec) != 0)
			{
				PQclear(res);
				return fail(c, SLCL_ERR_IO, "could not write the download file: %s", strerror(errno));
			}
			c->dl_after.len = 0;
			if (buf_put(&c->dl_after, k, kl) != 0)
			{
				PQclear(res);
				return fail(c, SLCL_ERR_NOMEM, "out of memory");
			}
			c->dl_have_after = 1;
			c->dl_rows++;
			c->dl_bytes += (int64_t) (kl + vl);
			c->stats.bytes_snapshot += row_bytes(res, i);
		}
		PQclear(res);
		if (flush_sync(c->dlf) != 0)
			return fail(c, SLCL_ERR_IO, "could not fsync the download file: %s", strerror(errno));
		memset(&ev, 0, sizeof(ev));
		ev.type = SLCL_EV_DOWNLOAD_PROGRESS;
		ev.log_id = c->dl_log;
		ev.lsn = c->dl_base;
		ev.reason = c->dl_reason;
		ev.rows = c->dl_rows;
		ev.bytes = c->dl_bytes;
		ev.total_rows = c->dl_total_rows;
		ev.total_bytes = c->dl_total_bytes;
		emit(c, &ev, "log=%s keys=%lld bytes=%lld", c->dl_log, (long long) c->dl_rows,
			 (long long) c->dl_bytes);
		debug_hook(c, "download-page");
		if (n < c->opt.snapshot_rows)
			break;
	}

	/* the watermarks, in one call */
	res = query(c, "SELECT client_id, client_seq, client_lsn FROM synclog.snapshot_clients($1, $2)",
				2, vals, NULL, NULL, &rc, st);
	if (res == NULL)
	{
		if (reason_of(st) == SLCL_DL_COLLECTED || reason_of(st) == SLCL_DL_UNKNOWN_LOG)
		{
			*restart = 1;
			emit_simple(c, SLCL_EV_DOWNLOAD_RESTART, "log=%s went away mid-download (%s): starting over with the current log",
						c->dl_log, st);
			return SLCL_OK;
		}
		return rc;
	}
	for (int i = 0; i < PQntuples(res); i++)
	{
		int64_t		seq,
					lsn;
		uint8_t		wm[SLC_WATERMARK_LEN];
		int			cl = PQgetlength(res, i, 0);

		if (PQgetisnull(res, i, 0) || cl < 1 || col_i8(res, i, 1, &seq) != 0 ||
			col_i8(res, i, 2, &lsn) != 0)
		{
			PQclear(res);
			return fail(c, SLCL_ERR_PROTOCOL, "malformed snapshot_clients row");
		}
		slc_watermark_encode(seq, lsn, wm);
		if (slc_state_put(c->state, SLC_NS_CLIENT, (const uint8_t *) PQgetvalue(res, i, 0),
						  (size_t) cl, wm, SLC_WATERMARK_LEN) != SLC_OK)
		{
			PQclear(res);
			return fail(c, SLCL_ERR_NOMEM, "out of memory");
		}
		c->stats.bytes_snapshot += row_bytes(res, i);
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

		hex(local, SLC_HASH_LEN, hx);
		emit(c, &ev, "log=%s base=%lld keys=%lld clients=%lld bytes=%lld reason=%s hash=%s %s",
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
	debug_hook(c, "download-verified");

	/* install: new state (tagged with the download id), then drop `download` */
	snprintf(c->log_id, sizeof(c->log_id), "%s", c->dl_log);
	c->lsn = c->dl_base;
	c->have_state = 1;
	rc = checkpoint(c, c->dl_id);
	if (rc != SLCL_OK)
	{
		c->have_state = 0;
		return rc;
	}
	fclose(c->dlf);
	c->dlf = NULL;
	c->downloading = 0;
	if (remove_file(c, "download") != 0)
		return SLCL_ERR_IO;
	if (fsync_dir(c->dir) != 0)
		return fail_errno(c, "could not fsync", c->dir);
	return maybe_ack(c, 1);
}

static slcl_rc
download(slcl_client *c)
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
			return fail(c, SLCL_ERR_PROTOCOL, "snapshot download failed %d times in a row", DL_MAX_ATTEMPTS);
		}
		rc = dl_abort(c);
		if (rc != SLCL_OK)
			return rc;
	}
}

/* ---------------------------------------------------------------------
 * Reading (PROTOCOL.md sections 3 to 5)
 * ---------------------------------------------------------------------
 */
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
	res = query(c, "SELECT lsn, kind, delta, client_id, client_seq, next_log_id, snapshot_hash "
				"FROM synclog.read($1, $2, $3::bigint, $4::integer, $5::integer)",
				5, vals, NULL, NULL, &rc, st);
	if (res == NULL)
	{
		slcl_reason r = reason_of(st);

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
		return fail(c, SLCL_ERR_PROTOCOL, "synclog.read returned %d columns", PQnfields(res));
	}
	for (int i = 0; i < n && c->need_download == SLCL_DL_NONE; i++)
	{
		int64_t		lsn;
		const char *kind = PQgetvalue(res, i, 1);
		int			rb = row_bytes(res, i);

		if (col_i8(res, i, 0, &lsn) != 0)
		{
			PQclear(res);
			return fail(c, SLCL_ERR_PROTOCOL, "synclog.read returned a NULL lsn");
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
				if (col_i8(res, i, 4, &seq) != 0)
				{
					PQclear(res);
					return fail(c, SLCL_ERR_PROTOCOL, "entry %lld has a client id but no client_seq",
								(long long) lsn);
				}
			}
			s = slc_state_apply_entry(c->state, (const uint8_t *) PQgetvalue(res, i, 2),
									  (size_t) PQgetlength(res, i, 2), lsn, cid, cidlen, seq);
			if (s != SLC_OK)
			{
				PQclear(res);
				if (s == SLC_ERR_NOMEM)
					return fail(c, SLCL_ERR_NOMEM, "out of memory");
				return fail(c, SLCL_ERR_PROTOCOL, "entry %lld of log %s does not decode: %s",
							(long long) lsn, c->log_id, slc_status_message(s));
			}
			if (rec_entry(&c->rec, lsn, seq, cid, cidlen, (const uint8_t *) PQgetvalue(res, i, 2),
						  (size_t) PQgetlength(res, i, 2)) != 0)
			{
				PQclear(res);
				return fail(c, SLCL_ERR_NOMEM, "out of memory");
			}
			c->lsn = lsn;
			rc = log_append(c);
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
			if (col_log_id(res, i, 5, next) != 0 || hl < 1)
			{
				PQclear(res);
				return fail(c, SLCL_ERR_PROTOCOL, "malformed end-log marker in log %s", c->log_id);
			}
			if (server[0] != SLC_HASH_ALGO_XXH3SUM || hl != SLC_HASH_LEN)
			{
				/* we cannot check a hash of an unknown algorithm */
				want_download(c, SLCL_DL_BAD_HASH_ALGO);
				break;
			}
			/* all entries before the marker must be durable before we act on it */
			rc = log_sync(c);
			if (rc != SLCL_OK)
			{
				PQclear(res);
				return rc;
			}
			slc_hash_serialize(slc_state_hash(c->state), local);
			ok = memcmp(local, server, SLC_HASH_LEN) == 0;
			hex(local, SLC_HASH_LEN, lhx);
			hex(server, SLC_HASH_LEN, shx);
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
				emit(c, &ev, "log=%s lsn=%lld next=%s hash=ok %s", c->log_id, (long long) lsn, next, lhx);
			else
				emit(c, &ev, "log=%s lsn=%lld next=%s hash=MISMATCH local=%s server=%s",
					 c->log_id, (long long) lsn, next, lhx, shx);
			if (!ok)
			{
				c->stats.markers_mismatch++;
				want_download(c, SLCL_DL_MISMATCH);
				break;
			}
			debug_hook(c, "switch-verified");
			if (rec_switch(&c->rec, lsn, local, c->log_id, next) != 0)
			{
				PQclear(res);
				return fail(c, SLCL_ERR_NOMEM, "out of memory");
			}
			rc = log_append(c);
			if (rc == SLCL_OK)
				rc = log_sync(c);
			if (rc != SLCL_OK)
			{
				PQclear(res);
				return rc;
			}
			debug_hook(c, "switch-logged");
			ev.type = SLCL_EV_SWITCH;
			emit(c, &ev, "from=%s to=%s lsn=%lld marker_bytes=%d snapshot_bytes=0",
				 c->log_id, next, (long long) lsn, rb);
			snprintf(c->log_id, sizeof(c->log_id), "%s", next);
			c->stats.switches_marker++;
			rc = maybe_ack(c, 1);
			if (rc != SLCL_OK)
			{
				PQclear(res);
				return rc;
			}
		}
		else
		{
			PQclear(res);
			return fail(c, SLCL_ERR_PROTOCOL, "unknown row kind \"%s\" from synclog.read", kind);
		}
	}
	PQclear(res);
	if (c->log_dirty)
		debug_hook(c, "page-applied");
	rc = log_sync(c);
	if (rc != SLCL_OK)
		return rc;
	if (c->need_download == SLCL_DL_NONE && c->log_bytes >= c->opt.checkpoint_bytes &&
		(uint64_t) c->log_bytes >= slc_state_hash(c->state)->bytes / 2)
	{
		rc = checkpoint(c, 0);
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
	rc = ensure_conn(c);
	if (rc != SLCL_OK)
		return rc;
	for (;;)
	{
		int			rows;

		if (interrupted(c))
			return fail(c, SLCL_ERR_INTERRUPTED, "interrupted");
		if (c->downloading || !c->have_state || c->need_download != SLCL_DL_NONE)
		{
			rc = download(c);
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
		rc = maybe_ack(c, 0);
		if (rc != SLCL_OK)
			return rc;
	}
	return maybe_ack(c, 0);
}

slcl_rc
slcl_wait(slcl_client *c, int timeout_ms, int *notified)
{
	struct pollfd pfd;
	PGnotify   *nf;
	int			got = 0;
	slcl_rc		rc;

	if (notified)
		*notified = 0;
	rc = ensure_conn(c);
	if (rc != SLCL_OK)
		return rc;
	if (!PQconsumeInput(c->conn))
		goto broken;
	while ((nf = PQnotifies(c->conn)) != NULL)
	{
		got = 1;
		PQfreemem(nf);
	}
	if (!got)
	{
		pfd.fd = PQsocket(c->conn);
		pfd.events = POLLIN;
		pfd.revents = 0;
		if (poll(&pfd, 1, timeout_ms) > 0)
		{
			if (!PQconsumeInput(c->conn))
				goto broken;
			while ((nf = PQnotifies(c->conn)) != NULL)
			{
				got = 1;
				PQfreemem(nf);
			}
		}
	}
	if (notified)
		*notified = got;
	return SLCL_OK;
broken:
	fail(c, SLCL_ERR_CONN, "connection lost: %s", PQerrorMessage(c->conn));
	drop_conn(c);
	return SLCL_ERR_CONN;
}

/* ---------------------------------------------------------------------
 * Open and close
 * ---------------------------------------------------------------------
 */
void
slcl_options_init(slcl_options *o)
{
	memset(o, 0, sizeof(*o));
	o->ack = 1;
	o->ack_interval_ms = 10000;
	o->page_entries = 1000;
	o->page_bytes = 8 * 1024 * 1024;
	o->snapshot_rows = 1000;
	o->checkpoint_bytes = 4 * 1024 * 1024;
}

static char *
dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static int
mkdir_p(const char *dir)
{
	char		tmp[4096];
	size_t		len = strlen(dir);

	if (len == 0 || len >= sizeof(tmp))
		return -1;
	memcpy(tmp, dir, len + 1);
	for (char *p = tmp + 1; *p; p++)
	{
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
		return -1;
	return 0;
}

/* Read or create dir/client_id. */
static slcl_rc
load_client_id(slcl_client *c)
{
	char		path[4096];
	char		tmp[4096];
	char		id[256];
	FILE	   *f;
	size_t		n;

	if (c->client_id)
		return SLCL_OK;			/* given in the options */
	path_of(c, "client_id", path, sizeof(path));
	f = fopen(path, "rb");
	if (f)
	{
		n = fread(id, 1, sizeof(id) - 1, f);
		fclose(f);
		while (n > 0 && (id[n - 1] == '\n' || id[n - 1] == '\r'))
			n--;
		id[n] = '\0';
		if (n > 0 && n <= 200)
		{
			c->client_id = strdup(id);
			return c->client_id ? SLCL_OK : fail(c, SLCL_ERR_NOMEM, "out of memory");
		}
	}
	snprintf(id, sizeof(id), "slcl-%016llx", (unsigned long long) random64());
	tmp_of(c, "client_id", tmp, sizeof(tmp));
	f = fopen(tmp, "wb");
	if (f == NULL || fprintf(f, "%s\n", id) < 0 || fflush(f) != 0 || fsync(fileno(f)) != 0)
	{
		if (f)
			fclose(f);
		return fail_errno(c, "could not write", tmp);
	}
	if (fclose(f) != 0 || rename(tmp, path) != 0 || fsync_dir(c->dir) != 0)
		return fail_errno(c, "could not install", path);
	c->client_id = strdup(id);
	return c->client_id ? SLCL_OK : fail(c, SLCL_ERR_NOMEM, "out of memory");
}

/* The download id in `download`: 1 (found), 0 (no file), -1 (unreadable). */
static int
dl_peek(slcl_client *c, uint64_t *id)
{
	char		path[4096];
	rdr			r;
	int			rc;

	path_of(c, "download", path, sizeof(path));
	rc = rdr_open(&r, path, MAGIC_DOWNLOAD);
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

static slcl_rc
open_local(slcl_client *c)
{
	char		path[4096];
	int			dl;
	int			st;
	uint64_t	origin = 0;
	uint64_t	dl_id = 0;
	char		why[256];
	slcl_rc		rc;

	if (mkdir_p(c->dir) != 0)
		return fail_errno(c, "could not create directory", c->dir);
	path_of(c, "lock", path, sizeof(path));
	c->lockfd = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
	if (c->lockfd < 0)
		return fail_errno(c, "could not open", path);
	if (flock(c->lockfd, LOCK_EX | LOCK_NB) != 0)
	{
		if (errno == EWOULDBLOCK)
			return fail(c, SLCL_ERR_LOCKED, "directory \"%s\" is in use by another process", c->dir);
		return fail_errno(c, "could not lock", path);
	}
	rc = load_client_id(c);
	if (rc != SLCL_OK)
		return rc;
	/* leftovers of interrupted atomic writes */
	if (remove_file(c, "state.tmp") || remove_file(c, "log.tmp") ||
		remove_file(c, "download.tmp") || remove_file(c, "client_id.tmp"))
		return SLCL_ERR_IO;

	rc = SLCL_OK;
	st = load_state(c, &origin, why, sizeof(why), &rc);
	if (st == -2)
		return rc;

	dl = dl_peek(c, &dl_id);
	if (dl == -1)
	{
		/* `download` is created atomically: an unreadable one is damaged */
		c->stats.repairs++;
		emit_simple(c, SLCL_EV_REPAIR, "unreadable download file discarded");
		if (remove_file(c, "download") != 0)
			return SLCL_ERR_IO;
		dl = 0;
	}
	if (dl == 1 && st == 1 && origin == dl_id)
	{
		/* the download had completed and its state is in place */
		if (remove_file(c, "download") != 0 || fsync_dir(c->dir) != 0)
			return SLCL_ERR_IO;
		dl = 0;
	}
	if (dl == 1)
	{
		/* an interrupted download: resume it; any state left is stale */
		slcl_event	ev;

		state_reset(c);
		if (remove_file(c, "state") != 0 || remove_file(c, "log") != 0)
			return SLCL_ERR_IO;
		if (fsync_dir(c->dir) != 0)
			return fail_errno(c, "could not fsync", c->dir);
		dl = load_download(c);
		if (dl == -2)
			return c->err[0] && strstr(c->err, "another document") ? SLCL_ERR_ARG : SLCL_ERR_IO;
		if (dl == 1)
		{
			c->stats.downloads_resumed++;
			c->dl_total_rows = c->dl_total_bytes = -1;
			memset(&ev, 0, sizeof(ev));
			ev.type = SLCL_EV_DOWNLOAD_RESUME;
			ev.log_id = c->dl_log;
			ev.lsn = c->dl_base;
			ev.reason = c->dl_reason;
			ev.rows = c->dl_rows;
			ev.bytes = c->dl_bytes;
			ev.total_rows = ev.total_bytes = -1;
			emit(c, &ev, "log=%s base=%lld reason=%s resuming after %lld keys (%lld bytes)",
				 c->dl_log, (long long) c->dl_base, slcl_reason_name(c->dl_reason),
				 (long long) c->dl_rows, (long long) c->dl_bytes);
			return SLCL_OK;
		}
		/* unreadable after all: start from nothing */
		if (remove_file(c, "download") != 0)
			return SLCL_ERR_IO;
		emit_simple(c, SLCL_EV_OPEN, "new replica in %s (no local state: will download)", c->dir);
		return SLCL_OK;
	}

	if (st == -1)
	{
		state_reset(c);
		c->stats.repairs++;
		emit_simple(c, SLCL_EV_CORRUPT, "state file damaged (%s): discarding the replica, will download", why);
		if (remove_file(c, "state") != 0 || remove_file(c, "log") != 0)
			return SLCL_ERR_IO;
		if (fsync_dir(c->dir) != 0)
			return fail_errno(c, "could not fsync", c->dir);
		c->need_download = SLCL_DL_LOCAL_CORRUPT;
		return SLCL_OK;
	}
	if (st == 0)
	{
		if (remove_file(c, "log") != 0)
			return SLCL_ERR_IO;
		emit_simple(c, SLCL_EV_OPEN, "new replica in %s (no local state: will download)", c->dir);
		return SLCL_OK;
	}
	c->have_state = 1;
	rc = log_open_replay(c);
	if (rc != SLCL_OK)
		return rc;
	emit_simple(c, SLCL_EV_OPEN, "resumed at log=%s lsn=%lld (%lld local log records replayed)",
				c->log_id, (long long) c->lsn, (long long) c->stats.replayed);
	return SLCL_OK;
}

slcl_rc
slcl_open(const slcl_options *o, slcl_client **out)
{
	slcl_client *c;
	slcl_rc		rc;

	*out = NULL;
	open_error[0] = '\0';
	if (o == NULL || o->doc == NULL || o->dir == NULL || o->doc[0] == '\0' ||
		strlen(o->doc) > 200 || o->dir[0] == '\0')
	{
		snprintf(open_error, sizeof(open_error), "doc (1 to 200 bytes) and dir are required");
		return SLCL_ERR_ARG;
	}
	if (strlen(o->dir) > 3000)
	{
		snprintf(open_error, sizeof(open_error), "dir is too long");
		return SLCL_ERR_ARG;
	}
	if (o->client_id && (o->client_id[0] == '\0' || strlen(o->client_id) > 200))
	{
		snprintf(open_error, sizeof(open_error), "client_id must be 1 to 200 bytes");
		return SLCL_ERR_ARG;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL)
	{
		snprintf(open_error, sizeof(open_error), "out of memory");
		return SLCL_ERR_NOMEM;
	}
	c->opt = *o;
	if (c->opt.page_entries <= 0)
		c->opt.page_entries = 1000;
	if (c->opt.page_bytes <= 0)
		c->opt.page_bytes = 8 * 1024 * 1024;
	if (c->opt.snapshot_rows <= 0)
		c->opt.snapshot_rows = 1000;
	if (c->opt.ack_interval_ms <= 0)
		c->opt.ack_interval_ms = 10000;
	if (c->opt.checkpoint_bytes <= 0)
		c->opt.checkpoint_bytes = 4 * 1024 * 1024;
	c->lockfd = -1;
	c->dsn = dup_or_null(o->dsn);
	c->doc = strdup(o->doc);
	c->dir = strdup(o->dir);
	c->debug_point = dup_or_null(o->debug_point);
	c->client_id = dup_or_null(o->client_id);
	c->state = slc_state_new();
	if (c->doc == NULL || c->dir == NULL || c->state == NULL ||
		(o->dsn && c->dsn == NULL) || (o->debug_point && c->debug_point == NULL) ||
		(o->client_id && c->client_id == NULL))
	{
		slcl_close(c);
		snprintf(open_error, sizeof(open_error), "out of memory");
		return SLCL_ERR_NOMEM;
	}
	c->opt.dsn = c->opt.doc = c->opt.dir = c->opt.client_id = c->opt.debug_point = NULL;
	c->doclen = strlen(c->doc);
	snprintf(c->channel, sizeof(c->channel), "synclog_%016llx",
			 (unsigned long long) XXH3_64bits(c->doc, c->doclen));
	rc = open_local(c);
	if (rc != SLCL_OK)
	{
		snprintf(open_error, sizeof(open_error), "%s", c->err);
		slcl_close(c);
		return rc;
	}
	*out = c;
	return SLCL_OK;
}

void
slcl_close(slcl_client *c)
{
	if (c == NULL)
		return;
	if (c->logf)
	{
		(void) flush_sync(c->logf);
		fclose(c->logf);
	}
	if (c->dlf)
		fclose(c->dlf);
	drop_conn(c);
	if (c->lockfd >= 0)
		close(c->lockfd);
	slc_state_free(c->state);
	free(c->rec.p);
	free(c->dl_after.p);
	free(c->dsn);
	free(c->doc);
	free(c->dir);
	free(c->client_id);
	free(c->debug_point);
	free(c);
}

/* ---------------------------------------------------------------------
 * Accessors
 * ---------------------------------------------------------------------
 */
int
slcl_position(const slcl_client *c, const char **log_id, int64_t *lsn)
{
	if (!c->have_state || c->downloading)
		return 0;
	if (log_id)
		*log_id = c->log_id;
	if (lsn)
		*lsn = c->lsn;
	return 1;
}

const slc_state *
slcl_state(const slcl_client *c)
{
	return (c->have_state && !c->downloading) ? c->state : NULL;
}

void
slcl_hash(const slcl_client *c, uint8_t out[SLC_HASH_LEN])
{
	slc_hash_serialize(slc_state_hash(c->state), out);
}

const slcl_stats *
slcl_get_stats(const slcl_client *c)
{
	return &c->stats;
}

const char *
slcl_client_id(const slcl_client *c)
{
	return c->client_id;
}

/* ---------------------------------------------------------------------
 * Verification
 * ---------------------------------------------------------------------
 */
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
		return fail(c, SLCL_ERR_STATE, "no complete local state to verify");
	}
	slc_state_rehash(c->state, &re);
	slc_hash_serialize(&re, a);
	slc_hash_serialize(slc_state_hash(c->state), b);
	r->local_ok = memcmp(a, b, SLC_HASH_LEN) == 0;

	/* where is the server? */
	vals[0] = c->doc;
	res = query(c, "SELECT log_id, base_lsn, snapshot_hash FROM synclog.current_log($1)",
				1, vals, NULL, NULL, &rc, st);
	if (res == NULL)
		return rc;
	if (PQntuples(res) != 1 || col_log_id(res, 0, 0, cur_log) != 0 ||
		col_i8(res, 0, 1, &cur_base) != 0 || PQgetlength(res, 0, 2) != SLC_HASH_LEN)
	{
		PQclear(res);
		return fail(c, SLCL_ERR_PROTOCOL, "unexpected result from synclog.current_log");
	}
	r->at_current_base = strcmp(cur_log, c->log_id) == 0 && cur_base == c->lsn;
	if (r->at_current_base)
		r->current_hash_ok = memcmp(PQgetvalue(res, 0, 2), b, SLC_HASH_LEN) == 0;
	PQclear(res);

	/* rebuild the server's state at our position, independently */
	vals[1] = c->log_id;
	res = query(c, "SELECT base_lsn, snapshot_hash FROM synclog.snapshot_info($1, $2)",
				2, vals, NULL, NULL, &rc, st);
	if (res == NULL)
	{
		if (reason_of(st) != SLCL_DL_NONE)
		{
			snprintf(r->detail, sizeof(r->detail), "log %s is gone on the server (%s): cannot rebuild its state at lsn %lld",
					 c->log_id, st, (long long) c->lsn);
			return SLCL_OK;
		}
		return rc;
	}
	if (PQntuples(res) != 1 || col_i8(res, 0, 0, &base) != 0 ||
		PQgetlength(res, 0, 1) != SLC_HASH_LEN)
	{
		PQclear(res);
		return fail(c, SLCL_ERR_PROTOCOL, "unexpected result from synclog.snapshot_info");
	}
	memcpy(snap, PQgetvalue(res, 0, 1), SLC_HASH_LEN);
	PQclear(res);
	srv = slc_state_new();
	if (srv == NULL)
		return fail(c, SLCL_ERR_NOMEM, "out of memory");
	snprintf(nbuf, sizeof(nbuf), "%d", c->opt.snapshot_rows);
	vals[3] = nbuf;
	fmts[2] = 1;
	rc = SLCL_OK;
	for (;;)
	{
		int			n;

		vals[2] = have_after ? (after.len ? (const char *) after.p : "") : NULL;
		lens[2] = have_after ? (int) after.len : 0;
		res = query(c, "SELECT key, value FROM synclog.snapshot($1, $2, $3::bytea, $4::integer)",
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
				rc = fail(c, SLCL_ERR_NOMEM, "out of memory");
				goto out;
			}
			have_after = 1;
		}
		PQclear(res);
		if (n < c->opt.snapshot_rows)
			break;
	}
	res = query(c, "SELECT client_id, client_seq, client_lsn FROM synclog.snapshot_clients($1, $2)",
				2, vals, NULL, NULL, &rc, st);
	if (res == NULL)
		goto gone;
	for (int i = 0; i < PQntuples(res); i++)
	{
		int64_t		seq = 0,
					lsn = 0;
		uint8_t		wm[SLC_WATERMARK_LEN];

		col_i8(res, i, 1, &seq);
		col_i8(res, i, 2, &lsn);
		slc_watermark_encode(seq, lsn, wm);
		if (slc_state_put(srv, SLC_NS_CLIENT, (const uint8_t *) PQgetvalue(res, i, 0),
						  PQgetlength(res, i, 0), wm, SLC_WATERMARK_LEN) != SLC_OK)
		{
			PQclear(res);
			rc = fail(c, SLCL_ERR_NOMEM, "out of memory");
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
			res = query(c, "SELECT lsn, kind, delta, client_id, client_seq "
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

				col_i8(res, i, 0, &lsn);
				if (strcmp(PQgetvalue(res, i, 1), "delta") != 0)
					break;
				if (hascid)
					col_i8(res, i, 4, &seq);
				if (lsn != at + 1 ||
					slc_state_apply_entry(srv, (const uint8_t *) PQgetvalue(res, i, 2),
										  PQgetlength(res, i, 2), lsn,
										  hascid ? PQgetvalue(res, i, 3) : NULL,
										  hascid ? PQgetlength(res, i, 3) : 0, seq) != SLC_OK)
				{
					PQclear(res);
					rc = fail(c, SLCL_ERR_PROTOCOL, "could not rebuild the server state at lsn %lld", (long long) lsn);
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
	if (reason_of(st) != SLCL_DL_NONE)
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

/* ---------------------------------------------------------------------
 * Testing
 * ---------------------------------------------------------------------
 */
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
		return fail(c, SLCL_ERR_STATE, "no complete local state to tamper with");
	val[0] = 'x';
	if (slc_state_get(c->state, SLC_NS_DATA, key, sizeof(key) - 1, &old, &oldlen) &&
		oldlen < sizeof(val))
	{
		memcpy(val, old, oldlen);
		val[0] ^= 0x01;
		vlen = oldlen ? oldlen : 1;
	}
	if (slc_state_put(c->state, SLC_NS_DATA, key, sizeof(key) - 1, val, vlen) != SLC_OK)
		return fail(c, SLCL_ERR_NOMEM, "out of memory");
	snprintf(what, whatlen, "set the data key \"\\xffsynclog-tamper\" at log %s lsn %lld",
			 c->log_id, (long long) c->lsn);
	rc = log_sync(c);
	if (rc == SLCL_OK)
		rc = checkpoint(c, 0);
	return rc;
}
