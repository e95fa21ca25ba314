/*
 * client_int.h
 *
 * Private header of the reference client library (the API is
 * synclog_client.h): the handle, the format of the records the library
 * writes, and the functions one of its files calls in another.
 *
 * The library by file, in the order a replica meets them:
 *   client_open.c      slcl_open and slcl_close: the directory, its lock, the
 *                      client id, recovery of what a crash left behind
 *   client_replica.c   the `state` and `log` files: checkpoint, load, replay
 *   client_download.c  the snapshot download and its `download` file
 *   client_follow.c    slcl_sync: the read loop, end-log markers, switch-over
 *   client_conn.c      the libpq session: connect and LISTEN, queries, acks,
 *                      slcl_wait
 *   client_verify.c    slcl_verify, and slcl_debug_tamper to test it
 *   client_files.c     framed records, atomic creation, fsync
 *   client_events.c    error messages, events, debug points, accessors
 *   client_util.c      clock, random ids, hex, one-line messages
 *
 * Owns: struct slcl_client, the record format below, and the names that
 * cross files: all of them start with slcli_, so that a program linking
 * the static library keeps every other name for itself.
 * Must never: be installed or included from outside src/client and its
 * tests.  Across the library, as before it was split: never apply a delta
 * with anything but the shared core (slc_state_apply_entry), acknowledge
 * a position before it is durable, switch logs without a byte-for-byte
 * hash match, or leave the directory in a state that does not open to a
 * consistent position.
 *
 * Records (framed as client_files.c says; integers little-endian, "lp" a
 * u32 length then the bytes, "rest" the bytes up to the end of the record):
 *   state     'P' gen u64, origin u64 (the download it completes, or 0),
 *                 lsn u64, running hash, item count u64, log id lp, doc lp
 *             'I' ns u8, key length u32, key, value rest  (one per item)
 *             'Z' item count u64
 *   log       'H' gen u64 (of the state it continues)
 *             'E' lsn u64, client_seq u64, client id length u32
 *                 (UINT32_MAX: none), client id, delta rest
 *             'S' lsn u64, running hash, from log id lp, to log id lp
 *   download  'D' download id u64, base lsn u64, snapshot hash, reason u8,
 *                 log id lp, doc lp
 *             'I' as in state, data keys only
 */
#ifndef CLIENT_INT_H
#define CLIENT_INT_H

#include "synclog_client.h"
#include "synclog_zip.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#define MAGIC_STATE		"SLCLST01"
#define MAGIC_LOG		"SLCLLG01"
#define MAGIC_DOWNLOAD	"SLCLDL01"
#define MAGIC_LEN		8
#define FRAME_HDR		12		/* u32le length + u64le checksum */

#if defined(__GNUC__)
#define SLCLI_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define SLCLI_PRINTF(f, a)
#endif

/*
 * Building and parsing record payloads.  Inline: they are small, every file
 * that touches a record uses them, and as statics they add no names to the
 * library.
 */
typedef struct buf
{
	uint8_t    *p;
	size_t		len;
	size_t		cap;
} buf;

static inline int
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

static inline int
buf_put(buf *b, const void *src, size_t n)
{
	if (buf_reserve(b, n) != 0)
		return -1;
	if (n)
		memcpy(b->p + b->len, src, n);
	b->len += n;
	return 0;
}

static inline void
put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t) (v >> (8 * i));
}

static inline void
put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t) (v >> (8 * i));
}

static inline uint32_t
get_u32(const uint8_t *p)
{
	uint32_t	v = 0;

	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static inline uint64_t
get_u64(const uint8_t *p)
{
	uint64_t	v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static inline int
buf_u8(buf *b, uint8_t v)
{
	return buf_put(b, &v, 1);
}

static inline int
buf_u32(buf *b, uint32_t v)
{
	uint8_t		t[4];

	put_u32(t, v);
	return buf_put(b, t, 4);
}

static inline int
buf_u64(buf *b, uint64_t v)
{
	uint8_t		t[8];

	put_u64(t, v);
	return buf_put(b, t, 8);
}

/* length-prefixed bytes */
static inline int
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

static inline const uint8_t *
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

static inline uint8_t
cur_u8(cur *c)
{
	const uint8_t *p = cur_take(c, 1);

	return p ? p[0] : 0;
}

static inline uint32_t
cur_u32(cur *c)
{
	const uint8_t *p = cur_take(c, 4);

	return p ? get_u32(p) : 0;
}

static inline uint64_t
cur_u64(cur *c)
{
	const uint8_t *p = cur_take(c, 8);

	return p ? get_u64(p) : 0;
}

/* length-prefixed bytes; *n gets the length */
static inline const uint8_t *
cur_lp(cur *c, size_t *n)
{
	uint32_t	len = cur_u32(c);
	const uint8_t *p = cur_take(c, len);

	*n = p ? len : 0;
	return p;
}

static inline const uint8_t *
cur_rest(cur *c, size_t *n)
{
	*n = c->bad ? 0 : c->n - c->off;
	return cur_take(c, *n);
}

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

/* A framed file being read (client_files.c). */
typedef struct rdr
{
	FILE	   *f;
	int64_t		pos;			/* offset of the next record */
	int64_t		size;
	buf			rec;
} rdr;

/* client_util.c */
extern double slcli_now_s(void);
extern uint64_t slcli_random64(void);
extern void slcli_hex(const uint8_t *p, size_t n, char *out);
extern void slcli_one_line(char *s);

/* client_events.c */
extern slcl_rc slcli_fail(slcl_client *c, slcl_rc rc, const char *fmt,...) SLCLI_PRINTF(3, 4);
extern slcl_rc slcli_fail_errno(slcl_client *c, const char *what, const char *path);
extern void slcli_emit(slcl_client *c, slcl_event *ev, const char *fmt,...) SLCLI_PRINTF(3, 4);
extern void slcli_emit_simple(slcl_client *c, slcl_event_type t, const char *fmt,...) SLCLI_PRINTF(3, 4);
extern void slcli_debug_hook(slcl_client *c, const char *point);
extern int	slcli_interrupted(const slcl_client *c);

/* client_files.c */
extern void slcli_path_of(const slcl_client *c, const char *name, char *out, size_t outlen);
extern void slcli_tmp_of(const slcl_client *c, const char *name, char *out, size_t outlen);
extern int	slcli_fsync_dir(const char *dir);
extern int	slcli_flush_sync(FILE *f);
extern int	slcli_rec_write(FILE *f, const buf *payload);
extern int	slcli_rdr_open(rdr *r, const char *path, const char *magic);
extern void slcli_rdr_close(rdr *r);
extern int	slcli_rdr_next(rdr *r);
extern FILE *slcli_create_framed(slcl_client *c, const char *name, const char *magic,
								 const buf *first);
extern int	slcli_remove_file(slcl_client *c, const char *name);
extern int	slcli_truncate_file(slcl_client *c, const char *name, int64_t len);

/* client_replica.c */
extern void slcli_state_reset(slcl_client *c);
extern int	slcli_rec_item(buf *b, uint8_t ns, const uint8_t *key, size_t klen,
						   const uint8_t *val, size_t vlen);
extern int	slcli_rec_entry(buf *b, int64_t lsn, int64_t seq, const char *cid, size_t cidlen,
							const uint8_t *delta, size_t dlen);
extern int	slcli_rec_switch(buf *b, int64_t lsn, const uint8_t *hash, const char *from,
							 const char *to);
extern slcl_rc slcli_checkpoint(slcl_client *c, uint64_t origin);
extern int	slcli_load_state(slcl_client *c, uint64_t *origin, char *why, size_t whylen,
							 slcl_rc *err);
extern slcl_rc slcli_log_append(slcl_client *c);
extern slcl_rc slcli_log_sync(slcl_client *c);
extern slcl_rc slcli_log_open_replay(slcl_client *c);

/* client_download.c */
extern int	slcli_dl_peek(slcl_client *c, uint64_t *id);
extern int	slcli_load_download(slcl_client *c);
extern slcl_rc slcli_download(slcl_client *c);

/* client_conn.c */
extern void slcli_drop_conn(slcl_client *c);
extern slcl_rc slcli_ensure_conn(slcl_client *c);
extern PGresult *slcli_query(slcl_client *c, const char *sql, int n, const char *const *vals,
							 const int *lens, const int *fmts, slcl_rc *rc, char sqlstate[6]);
extern int	slcli_col_i8(const PGresult *res, int row, int col, int64_t *out);
extern int	slcli_row_bytes(const PGresult *res, int row);
extern int	slcli_col_log_id(const PGresult *res, int row, int col,
							 char out[SLCL_LOG_ID_MAX + 1]);
extern slcl_reason slcli_reason_of(const char *sqlstate);
extern slcl_rc slcli_ack_at(slcl_client *c, const char *log_id, int64_t lsn);
extern slcl_rc slcli_maybe_ack(slcl_client *c, int force);

#endif							/* CLIENT_INT_H */
