/*
 * client_int.h
 *
 * Private header of the reference client library (the API is
 * synclog_client.h): the handle, the layout of the replica database, and
 * the functions one of its files calls in another.
 *
 * The library by file, in the order a replica meets them:
 *   client_open.c      slcl_open and slcl_close: the directory, its lock, the
 *                      client id, recovery of what a crash left behind
 *   client_legacy.c    converting a directory of the old file format
 *                      (`state`, `log`, `download` framed files) on open
 *   client_store.c     the replica database (SQLite, `replica.db`): schema,
 *                      transactions, applying entries against the stored
 *                      items, the position, generations, stats
 *   client_download.c  the snapshot download into a new generation
 *   client_repair.c    the choice of a path (sync_cost), catch-up and range
 *                      repair staged beside the live state, the swap
 *   client_follow.c    slcl_sync: the read loop, end-log markers, switch-over
 *   client_conn.c      the libpq session: connect and LISTEN, queries, acks,
 *                      slcl_wait
 *   client_verify.c    slcl_verify, slcl_debug_tamper, slcl_debug_damage
 *   client_reader.c    slcl_reader_*: reading a replica (any process, while a
 *                      follower writes)
 *   client_changes.c   the change feed: changed keys per group, and the
 *                      difference a download makes
 *   client_write.c     the write path: the pending queue, slcl_submit and
 *                      slcl_flush, confirmation by the client's own
 *                      watermark, the rebased view (slcl_reader_*_rebased)
 *   client_pagefile.c  the page file of a page-store document
 *   client_events.c    error messages, events, debug points, accessors
 *   client_util.c      clock, random ids, hex, one-line messages, paths
 *
 * The replica database (dir/replica.db, WAL mode, synchronous=FULL; every
 * change below is one SQLite transaction, so a kill or a power cut leaves
 * the database at the last committed transaction):
 *   meta      one row (id 1): format (1), doc, gen (the live generation, or
 *             NULL: no state), log_id, lsn, chain (16 bytes, the protocol
 *             v2 chain value; zeros until the server gives one), hash (the
 *             33-byte running snapshot hash of the live generation), chk
 *             (XXH3-64 over all of these, so that a damaged row is found),
 *             next_gen.
 *   item      (gen, ns, key) -> hlo, hhi (the item's 128-bit hash from the
 *             shared core, so that replacing an item needs no old value),
 *             val.  WITHOUT ROWID, ordered by (gen, ns, key) with keys in
 *             byte order (memcmp, shorter first: PostgreSQL's bytea order).
 *             Rows of generations other than meta.gen and download.gen are
 *             garbage, deleted in batches (retire).
 *   download  at most one row (id 1) while a snapshot download is in
 *             progress: its id, its generation, the target (log id, base
 *             LSN, snapshot hash, reason), the last key received, the rows
 *             and bytes so far and the running hash of the rows so far
 *             (33 bytes), chk.  Rows arrive in pages; each page and this
 *             row are one transaction.
 *   stats     one row (id 1) of counters (slcl_stats), saved with every
 *             transaction, so they survive restarts and kill -9.
 *   job       at most one row (id 1) while a catch-up or a range repair is
 *             in progress (client_repair.c): its kind, reason, the live
 *             generation and position it builds on (gen -1: none, from
 *             the empty state: then its rows go straight to a generation
 *             of their own, sgen, and base is their running hash), the
 *             target (log id, LSN, chain, snapshot
 *             hash), base (the 33-byte hash of the live rows it builds
 *             on), buckets (a range repair's differing buckets, u16le
 *             each), the progress (after_ns, after: the last row
 *             received), rows, bytes, ms, chk.
 *   stage     (ns, key) -> hlo, hhi, val: the new value of every item the
 *             job replaces (val NULL: the item goes), beside the live
 *             generation.  The swap applies it to the live generation in
 *             ONE transaction, after the hash of the result is the
 *             target's (from the empty state it installs sgen instead).
 *   pathstats one row (id 1): the per-path counters of slcl_stats.
 *   bucket    (gen, b) -> hash: the kept range hash (33 bytes, PROTOCOL.md
 *             section 11a) of bucket b of generation gen; no row: the
 *             bucket is empty.  Changed with the items, in the same
 *             transaction (only the buckets it touched), so a range repair
 *             compares without reading the items; deleted with the
 *             generation's first retired batch.  They follow the stored
 *             item hashes (what was applied), as meta.hash does.
 *   writer, pending, failed  the queue's tables of earlier versions, kept
 *             in the schema; emptied into queue.db at open (client_write.c).
 *
 * The queue database (dir/queue.db, its own SQLite file in WAL mode with
 * synchronous=FULL, client_write.c), so that a damaged replica.db, which is
 * removed and downloaded again, never takes pending mutations with it:
 *   writer    one row (id 1): next_seq, raised past a mutation's seqs in
 *             the transaction that takes it out of the queue; the next
 *             mutation takes max(next_seq, the queue's last seq + 1, the
 *             failed list's, the own watermark's + 1), so a client_seq is
 *             never used twice, even after its mutation left the queue
 *             (and a queue commit touches the pending table only);
 *             client_id, the id the seqs belong to (readers need it).
 *   pending   the durable queue of local mutations, one row per mutation:
 *             seq (its first client_seq), last_seq (its last: a mutation
 *             split into parts takes one client_seq per part), part_bytes
 *             and part_changes (how it is split, fixed when it is queued so
 *             that every retry sends the same parts), queued (unix time),
 *             delta (the whole mutation, PROTOCOL.md section 10), chk
 *             (XXH3-64 over the other columns).  A row is confirmed once
 *             the committed replica holds the client's own watermark with
 *             seq >= its seq: it leaves the queue in a queue transaction
 *             after that replica commit (or at the next open, if a crash
 *             came between), and every reader skips rows at or below the
 *             watermark of the state it reads.
 *   failed    mutations the server refused (or that SL007 made unsure):
 *             seq, last_seq, sqlstate, message, at, delta.  SL007 moves the
 *             queue here before the replica commit that loses the
 *             watermark, so a crash can never leave them pending with
 *             their fate unknown.
 *
 * Applying the log (client_store.c): every change of the replica happens
 * in a transaction of the writer connection, slcli_store_begin ...
 * slcli_store_commit (or slcli_store_rollback; a failed commit rolls back
 * by itself).  Inside one, slcli_store_apply_entry applies an entry to a
 * generation and its hash (the live one: c->cur.gen, &c->cur.hash), and
 * slcli_store_set_position moves the working position (log id, LSN, chain)
 * that the commit writes with the hash, so entries and the position they
 * reach are durable together.  slcli_store_apply_group does all of it for
 * one group (a writer transaction's entries, PROTOCOL-v2.md section B) in
 * one transaction of its own; the version 1 read loop instead batches a
 * page of entries, each its own group (group_end = 1), in one transaction.
 * The commit then brings the page file along and delivers the change
 * events, group by group.
 *
 * Owns: struct slcl_client, the database layout above, and the names that
 * cross files: all of them start with slcli_, so that a program linking
 * the static library keeps every other name for itself.
 * Must never: be installed or included from outside src/client and its
 * tests.  Across the library: never change the hash but through the shared
 * core (slc_item_hash, slc_hash_add_item/remove_item), acknowledge a
 * position before its transaction is committed, switch logs without a
 * byte-for-byte hash match, make a new generation live before it is
 * complete and verified, or drop the live generation before another one
 * replaces it (a damaged one excepted).
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
#include <sqlite3.h>

/* the replica database's file name in the directory, and its format */
#define SLCLI_DB_NAME		"replica.db"
#define SLCLI_DB_FORMAT		1
/* the pending queue's database file in the directory (client_write.c) */
#define SLCLI_QUEUE_NAME	"queue.db"
/* the pending and failed tables, the same in queue.db and (an earlier place) replica.db */
#define SLCLI_QUEUE_TABLES_SQL \
"CREATE TABLE IF NOT EXISTS pending (" \
"  seq INTEGER PRIMARY KEY," \
"  last_seq INTEGER NOT NULL," \
"  part_bytes INTEGER NOT NULL," \
"  part_changes INTEGER NOT NULL," \
"  queued REAL NOT NULL," \
"  delta BLOB NOT NULL," \
"  chk INTEGER NOT NULL);" \
"CREATE TABLE IF NOT EXISTS failed (" \
"  seq INTEGER PRIMARY KEY," \
"  last_seq INTEGER NOT NULL," \
"  sqlstate TEXT NOT NULL," \
"  message TEXT NOT NULL," \
"  at REAL NOT NULL," \
"  delta BLOB NOT NULL);"
/* statements client_write.c keeps prepared */
#define SLCLI_WST_MAX		16
/* item rows deleted per transaction when a generation is retired */
#define SLCLI_RETIRE_BATCH	2000

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

/* What the open transaction's confirmation did (client_write.c). */
typedef struct slcli_wconfirm
{
	int			valid;
	int64_t		wm_seq;			/* the own watermark being committed (-1: none) */
	int64_t		wm_lsn;
	int			confirmed;		/* pending rows it confirms (removed after the commit) */
	int			retired;		/* pending rows it moves to failed (SL007) */
} slcli_wconfirm;

/* The prepared statements of a handle's writer connection. */
typedef enum slcli_stmt
{
	ST_ITEM_OLD,				/* hlo, hhi, length(val) of (gen, ns, key) */
	ST_ITEM_PUT,				/* upsert (gen, ns, key, hlo, hhi, val) */
	ST_ITEM_DEL,				/* delete (gen, ns, key) */
	ST_ITEM_INS,				/* insert a new (gen, ns, key, ...) */
	ST_META_SAVE,
	ST_DL_SAVE,
	ST_STATS_SAVE,
	ST_PSTATS_SAVE,
	ST_BK_PUT,					/* upsert a bucket row (gen, b, hash) */
	ST_BK_DEL,					/* delete a bucket row (gen, b): it is empty */
	ST__COUNT
} slcli_stmt;

/*
 * The kept range hashes of one generation (client_store.c): the bucket
 * table's rows of gen, in memory, and the buckets the open transaction
 * changed (written by its commit, forgotten by its rollback).
 */
typedef struct slcli_buckets
{
	int64_t		gen;			/* -1: the slot holds nothing */
	uint64_t	used;			/* when last used (slots are reused LRU) */
	int			changed;		/* changed since the last commit */
	int			ndirty;
	uint8_t		dirty[SLC_BUCKETS];
	slc_hash	rh[SLC_BUCKETS];
} slcli_buckets;

/* generations whose range hashes a handle keeps in memory at once */
#define SLCLI_BK_SLOTS		3

/* A position and the hash of the state there. */
typedef struct slcli_pos
{
	int			have;			/* there is a live state */
	int64_t		gen;
	char		log_id[SLCL_LOG_ID_MAX + 1];
	int64_t		lsn;
	uint8_t		chain[SLCL_CHAIN_LEN];
	int			chain_known;	/* chain is the server's value at lsn (else zeros:
								 * reached by protocol version 1 or converted) */
	slc_hash	hash;
} slcli_pos;

/* One entry of a group, for slcli_store_apply_group. */
typedef struct slcli_entry
{
	int64_t		lsn;
	const uint8_t *delta;
	size_t		dlen;
	const char *cid;			/* NULL: no client */
	size_t		cidlen;
	int64_t		seq;
} slcli_entry;

struct slcl_client
{
	slcl_options opt;
	char	   *dsn;
	char	   *doc;
	size_t		doclen;
	char	   *dir;
	char	   *client_id;
	char	   *debug_point;
	char	   *page_file;		/* options.page_file, owned */
	int			debug_fired;
	int			lockfd;
	char		channel[64];

	PGconn	   *conn;

	/* the replica database */
	sqlite3    *db;
	sqlite3_stmt *st[ST__COUNT];
	int			in_txn;			/* a write transaction is open */
	int			proto;			/* the server's protocol version (1 or 2), 0: not asked yet */
	int			db_corrupt;		/* SQLite said SQLITE_CORRUPT/NOTADB */
	int64_t		next_gen;

	/*
	 * The replica: `cur` is the working position (inside a transaction it
	 * runs ahead of what is committed), `committed` what the database
	 * holds.  Outside a transaction they are equal.
	 */
	slcli_pos	cur;
	slcli_pos	committed;

	/* a download in progress: valid when downloading */
	int			downloading;
	slcl_reason dl_reason;
	uint64_t	dl_id;
	int64_t		dl_gen;
	char		dl_log[SLCL_LOG_ID_MAX + 1];
	int64_t		dl_base;
	uint8_t		dl_hash[SLC_HASH_LEN];	/* the server's snapshot hash */
	slc_hash	dl_sum;			/* hash of the rows received so far */
	buf			dl_after;		/* last key received */
	int			dl_have_after;
	int64_t		dl_rows;
	int64_t		dl_bytes;
	int64_t		dl_total_rows;
	int64_t		dl_total_bytes;
	int			dl_attempts;

	slcl_reason need_download;	/* set when the protocol says: download
								 * (or, with a state, repair by range) */
	int			suspect;		/* the live rows failed their check: a range
								 * repair compares the range hashes of their
								 * values (check_rh), not the kept ones */

	/* the kept range hashes (client_store.c), per generation */
	slcli_buckets *bk[SLCLI_BK_SLOTS];
	uint64_t	bk_clock;

	/*
	 * The range hashes of the live rows' values, as the open check (or a
	 * repair that failed to verify) computed them: valid while the live
	 * state is generation check_gen with running hash check_hash.
	 */
	slc_hash   *check_rh;
	int64_t		check_gen;
	slc_hash	check_hash;

	/* a catch-up or range repair in progress (client_repair.c): job_kind */
	int			job_kind;		/* 0 none, SLCLI_JOB_CATCH_UP, SLCLI_JOB_RANGE */
	slcl_reason job_reason;
	int64_t		job_gen;		/* the live generation it builds on, -1: none */
	int64_t		job_sgen;		/* from the empty state: the generation its rows
								 * go to (job_base their hash), else -1 */
	char		job_from_log[SLCL_LOG_ID_MAX + 1];	/* and its position */
	int64_t		job_from_lsn;
	uint8_t		job_from_chain[SLCL_CHAIN_LEN];
	char		job_log[SLCL_LOG_ID_MAX + 1];	/* the target */
	int64_t		job_lsn;
	uint8_t		job_chain[SLCL_CHAIN_LEN];
	uint8_t		job_hash[SLC_HASH_LEN];
	slc_hash	job_base;		/* hash of the live rows it builds on */
	buf			job_buckets;	/* u16le bucket numbers */
	int			job_have_after;
	int			job_after_ns;
	buf			job_after;
	int64_t		job_rows;
	int64_t		job_bytes;
	int64_t		job_ms;			/* time spent by earlier runs */
	int			job_failures;	/* verifications failed in a row */
	int			srv_v11;		/* the server has the catch-up and range
								 * functions: 1 yes, 2 no, 0 not asked on
								 * this connection */
	int			cost_asked;		/* sync_cost asked on this connection */
	int			debug_passes;	/* passes of the debug point ("POINT#N") */
	sqlite3_stmt *stage_ins;	/* slcli_stage_put's statement */

	/* acks */
	char		acked_log[SLCL_LOG_ID_MAX + 1];
	int64_t		acked_lsn;
	double		acked_at;

	slcl_stats	stats;

	/*
	 * Change feed: the keys changed by the open transaction, per group
	 * (records: 'K' ns u8, deleted u8, key lp; 'G' lsn u64 ends a group),
	 * delivered as SLCL_EV_CHANGES events once it commits.
	 */
	buf			chg;
	int			chg_open;		/* a group has changes not yet closed */
	int			installed;		/* the open transaction installs a state */

	/*
	 * The write path (client_write.c).  own_wm_seq is the client's own
	 * watermark in the committed state (-1: none), own_wm_lsn its LSN;
	 * sent_upto the last seq whose submission got its reply in this
	 * session; unsure: a submission's outcome is unknown (or the handle
	 * was opened with a non-empty queue), so the log is read to its head
	 * before anything is sent again.
	 */
	int64_t		own_wm_seq;
	int64_t		own_wm_lsn;
	int64_t		sent_upto;
	int			unsure;
	int			pending_n;		/* pending rows above own_wm_seq */
	int			retired_n;		/* mutations SL007 moved to failed, to report */
	int			refused_n;		/* mutations refused by the last slcl_flush */
	const void *limits_conn;	/* the connection the limits were asked on */
	int64_t		srv_max_delta;	/* synclog.max_delta_size in bytes (0: unknown) */
	int64_t		srv_max_changes;	/* synclog.max_delta_changes (0: unknown) */
	slcli_wconfirm wconfirm;
	sqlite3    *qdb;			/* queue.db (client_write.c) */
	sqlite3_stmt *wst[SLCLI_WST_MAX];	/* client_write.c's statements */

	slcl_reader *reader;		/* slcl_client_reader's, opened on demand */
	buf			rec;			/* scratch */
	char		err[1024];
};

/* client_util.c */
extern double slcli_now_s(void);
extern uint64_t slcli_random64(void);
extern void slcli_hex(const uint8_t *p, size_t n, char *out);
extern void slcli_one_line(char *s);
extern void slcli_path_of(const slcl_client *c, const char *name, char *out, size_t outlen);
extern int	slcli_fsync_dir(const char *dir);
extern int	slcli_remove_file(slcl_client *c, const char *name);
extern int	slcli_file_exists(const slcl_client *c, const char *name);

/* client_open.c */
extern void slcli_set_open_error(const char *msg);

/* client_events.c */
extern slcl_rc slcli_fail(slcl_client *c, slcl_rc rc, const char *fmt,...) SLCLI_PRINTF(3, 4);
extern slcl_rc slcli_fail_errno(slcl_client *c, const char *what, const char *path);
extern void slcli_emit(slcl_client *c, slcl_event *ev, const char *fmt,...) SLCLI_PRINTF(3, 4);
extern void slcli_emit_simple(slcl_client *c, slcl_event_type t, const char *fmt,...) SLCLI_PRINTF(3, 4);
extern void slcli_debug_hook(slcl_client *c, const char *point);
extern int	slcli_interrupted(const slcl_client *c);

/* client_store.c: the database */
extern slcl_rc slcli_db_fail(slcl_client *c, const char *what);
extern slcl_rc slcli_store_open(slcl_client *c, int *created);
extern void slcli_store_close(slcl_client *c);
extern slcl_rc slcli_store_load(slcl_client *c, int *damaged, char *why, size_t whylen);
extern slcl_rc slcli_store_check(slcl_client *c, int64_t gen, const slc_hash *expect,
								 slc_hash *rh, int *ok, char *why, size_t whylen);
extern slcl_rc slcli_store_exec(slcl_client *c, const char *sql);
extern sqlite3_stmt *slcli_store_prepare(slcl_client *c, const char *sql);

/* client_store.c: transactions and the position */
extern slcl_rc slcli_store_begin(slcl_client *c);
extern slcl_rc slcli_store_commit(slcl_client *c);
extern slcl_rc slcli_store_finish(slcl_client *c, slcl_rc rc);
extern void slcli_store_rollback(slcl_client *c);
extern slc_status slcli_delta_check(const uint8_t *delta, size_t len, uint32_t *n,
								   size_t *off);
extern slcl_rc slcli_store_apply_entry(slcl_client *c, int64_t gen, slc_hash *h,
									   const slcli_entry *e, int group_end);
extern slcl_rc slcli_store_set_position(slcl_client *c, const char *log_id, int64_t lsn,
										const uint8_t chain[SLCL_CHAIN_LEN]);
extern slcl_rc slcli_store_apply_group(slcl_client *c, const slcli_entry *e, size_t n,
									   const char *log_id, int64_t lsn,
									   const uint8_t chain[SLCL_CHAIN_LEN]);
extern slcl_rc slcli_store_put(slcl_client *c, int64_t gen, slc_hash *h, uint8_t ns,
							   const uint8_t *key, size_t klen,
							   const uint8_t *val, size_t vlen, int track);
extern slcl_rc slcli_store_insert(slcl_client *c, int64_t gen, slc_hash *h, uint8_t ns,
								  const uint8_t *key, size_t klen,
								  const uint8_t *val, size_t vlen);
extern slcl_rc slcli_store_install(slcl_client *c, int64_t gen, const char *log_id,
								   int64_t lsn, const uint8_t chain[SLCL_CHAIN_LEN],
								   const slc_hash *h);
extern slcl_rc slcli_store_drop_state(slcl_client *c);
extern int64_t slcli_store_new_gen(slcl_client *c);
extern slcl_rc slcli_store_retire(slcl_client *c, int *left);

/* client_store.c: the kept range hashes of a generation */
extern slcl_rc slcli_bk_get(slcl_client *c, int64_t gen, const slc_hash *total,
						   slcli_buckets **out);
extern void slcli_bk_item(slcli_buckets *k, uint8_t ns, const uint8_t *key, size_t klen,
						  int sign, uint64_t lo, uint64_t hi, uint64_t item_bytes);
extern void slcli_bk_set(slcli_buckets *k, int b, const slc_hash *h);
extern slcl_rc slcli_bk_adopt(slcl_client *c, int64_t gen, const slc_hash *rh);
extern void slcli_bk_free(slcl_client *c);
extern int	slcli_check_valid(const slcl_client *c);
extern void slcli_check_forget(slcl_client *c);
extern void slcli_check_keep(slcl_client *c, slc_hash *rh);
extern slcl_rc slcli_store_save_download(slcl_client *c);
extern slcl_rc slcli_store_clear_download(slcl_client *c);
extern int	slcli_store_load_download(slcl_client *c);

/* client_reader.c: the change feed */
extern void slcli_changes_reset(slcl_client *c);
extern int	slcli_changes_key(slcl_client *c, uint8_t ns, const uint8_t *key, size_t klen,
							  int deleted);
extern int	slcli_changes_group_end(slcl_client *c, int64_t lsn);
extern void slcli_changes_emit(slcl_client *c);
extern slcl_rc slcli_changes_diff(slcl_client *c, int64_t old_gen, int64_t new_gen);

/* client_write.c */
extern slcl_rc slcli_write_load(slcl_client *c);
extern void slcli_write_close(slcl_client *c);
extern slcl_rc slcli_write_confirm(slcl_client *c);
extern void slcli_write_committed(slcl_client *c);
extern slcl_rc slcli_read_to_head(slcl_client *c);

/* client_pagefile.c */
extern slcl_rc slcli_pagefile_sync(slcl_client *c);
extern slcl_rc slcli_pagefile_commit(slcl_client *c, const slcli_pos *before, int whole);

/* client_legacy.c */
extern int	slcli_legacy_present(slcl_client *c);
extern slcl_rc slcli_legacy_convert(slcl_client *c);

/* client_repair.c: catch-up, range repair and the choice of a path */
#define SLCLI_JOB_CATCH_UP	1
#define SLCLI_JOB_RANGE		2
extern slcl_rc slcli_range_hashes_local(slcl_client *c, int64_t gen, slc_hash *rh,
										slc_hash *total);
extern slcl_rc slcli_stage_put(slcl_client *c, uint8_t ns, const uint8_t *key, size_t klen,
							   const uint8_t *val, size_t vlen);
extern slcl_rc slcli_stage_swap(slcl_client *c, int *matched);
extern slcl_rc slcli_job_save(slcl_client *c);
extern slcl_rc slcli_job_clear(slcl_client *c);
extern int	slcli_job_load(slcl_client *c);
extern slcl_rc slcli_choose(slcl_client *c);
extern slcl_rc slcli_cost_check(slcl_client *c);
extern slcl_rc slcli_job_run(slcl_client *c);
extern void slcli_job_event(slcl_client *c, const char *what);
extern void slcli_path_event(slcl_client *c, slcl_path p, slcl_reason r, const char *fmt,...)
			SLCLI_PRINTF(4, 5);

/* client_download.c */
extern slcl_rc slcli_download(slcl_client *c);
extern void slcli_dl_event(slcl_client *c, slcl_event *ev, slcl_event_type t);

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
extern slcl_reason slcli_position_reason(const char *sqlstate);
extern slcl_rc slcli_ack_at(slcl_client *c, const char *log_id, int64_t lsn,
							 const uint8_t *chain);
extern slcl_rc slcli_maybe_ack(slcl_client *c, int force);

#endif							/* CLIENT_INT_H */
