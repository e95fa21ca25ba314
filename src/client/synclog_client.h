/*
 * synclog_client.h - reference client library for synclog (PROTOCOL.md).
 *
 * Keeps a durable local replica of one document in a directory and follows
 * the document on the server over libpq: reads its log after the local
 * LSN, applies each delta with the shared core (src/core/synclog_core.c,
 * the same source the extension uses), verifies every end-log marker
 * against the local running hash and switches to the next log without a
 * download when they match.  When the log is not the cheapest way, or the
 * position is no good (a collected log, a marker that differs, a diverged
 * history, damaged rows), it catches up (the latest value of each changed
 * item), repairs by range (only the buckets whose range hashes differ) or
 * downloads the snapshot, as synclog.sync_cost and the replica's state
 * say (slcl_path, SLCL_EV_PATH); each is paged, resumable across restarts
 * and verified before it replaces the state.
 *
 * Typical use:
 *
 *     slcl_options o;
 *     slcl_client *c;
 *     slcl_options_init(&o);
 *     o.dsn = "host=... dbname=..."; o.doc = "notes"; o.dir = "/var/lib/app/notes";
 *     if (slcl_open(&o, &c) != SLCL_OK) { ...slcl_open_error()... }
 *     for (;;) {
 *         if (slcl_sync(c) != SLCL_OK) { ...slcl_errmsg(c), retry later... }
 *         ... read with slcl_reader_get/scan(slcl_client_reader(c), ...) ...
 *         slcl_wait(c, 5000, NULL);      // LISTEN with a timeout
 *     }
 *     slcl_close(c);
 *
 * Another process reads the same replica with slcl_reader_open(dir, doc):
 * no lock, a consistent snapshot per slcl_reader_begin, while a follower
 * writes.
 *
 * Threads: a client handle is used by one thread at a time, and so is a
 * reader.  A directory is followed by one handle at a time (slcl_open
 * takes an exclusive lock on it); readers take no lock.
 *
 * ------------------------------------------------------------------------
 * The local replica (files in the directory)
 *
 *   replica.db  an SQLite database in WAL mode (with replica.db-wal and
 *               replica.db-shm while open): the items of the state, the
 *               position (log id, LSN, chain) with the running snapshot
 *               hash, the progress of a download in progress, and the
 *               counters.  Every change is one SQLite transaction with
 *               synchronous=FULL: entries applied and the position they
 *               reach, a switch-over by marker, a page of a download, the
 *               install of a downloaded state.  A kill or a power cut at
 *               any point leaves the last committed transaction.  The
 *               client never acknowledges a position to the server before
 *               its transaction is committed.  A download builds the new
 *               state beside the old one (a new generation of items): the
 *               old state stays readable until the new one is complete and
 *               its hash verified, and the switch is one transaction.
 *               client_int.h documents the tables.
 *   client_id   the client id used for synclog.ack (unless one is given).
 *   lock        flock()ed while a handle follows in the directory.
 *
 * On open the replica is checked: the stored position against its
 * checksum, and (options.open_check, the default) every item against its
 * stored item hash and the sum against the running hash.  Damaged items
 * under a sound position stay readable until a range repair replaces
 * them; a damaged position is dropped and the state fetched again
 * (SLCL_EV_CORRUPT).  A directory
 * of the old file format (framed `state`, `log`, `download` files, before
 * 0.3) is converted on open (SLCL_EV_OPEN says so); an old download in
 * progress is started again.
 * ------------------------------------------------------------------------
 */
#ifndef SYNCLOG_CLIENT_H
#define SYNCLOG_CLIENT_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "synclog_core.h"

#ifdef __cplusplus
extern "C"
{
#endif

/* Longest log id accepted from a server (the protocol's are 32 hex chars). */
#define SLCL_LOG_ID_MAX		64
/* Bytes of a chain value (PROTOCOL-v2.md section A); all zeros until the
 * server gives chains. */
#define SLCL_CHAIN_LEN		16

typedef struct slcl_client slcl_client;

/* Result of every call that can fail.  slcl_errmsg() tells more. */
typedef enum slcl_rc
{
	SLCL_OK = 0,
	SLCL_ERR_ARG,				/* bad options, or the directory holds another doc */
	SLCL_ERR_LOCKED,			/* another process has the directory open */
	SLCL_ERR_IO,				/* a local file operation failed */
	SLCL_ERR_NOMEM,
	SLCL_ERR_CONN,				/* no connection or it broke: retry later */
	SLCL_ERR_DOC_GONE,			/* SL001: the document does not exist */
	SLCL_ERR_SERVER,			/* another server error (message in errmsg) */
	SLCL_ERR_PROTOCOL,			/* the server broke the protocol (e.g. bad delta,
								 * a downloaded snapshot that never verifies) */
	SLCL_ERR_INTERRUPTED,		/* *options.interrupt became non-zero */
	SLCL_ERR_STATE,				/* the call needs a state the replica lacks */
	SLCL_ERR_REFUSED,			/* the server refused a mutation: it left the
								 * queue for the failed list (slcl_queue_list) */
	SLCL_ERR_RETIRED			/* SL007: the client's own watermark was retired
								 * while mutations were pending: they moved to
								 * the failed list, unsure whether applied */
} slcl_rc;

/* Why a snapshot is downloaded. */
typedef enum slcl_reason
{
	SLCL_DL_NONE = 0,
	SLCL_DL_INITIAL,			/* empty directory: no local state yet */
	SLCL_DL_LOCAL_CORRUPT,		/* the local replica was damaged */
	SLCL_DL_MISMATCH,			/* a marker's hash differed from the local hash */
	SLCL_DL_COLLECTED,			/* SL003: the local log was collected */
	SLCL_DL_UNKNOWN_LOG,		/* SL002: the server does not know the log */
	SLCL_DL_AHEAD,				/* SL004: the local LSN is beyond the log's end */
	SLCL_DL_INCONSISTENT,		/* 22023 or a gap: position and log disagree */
	SLCL_DL_BAD_HASH_ALGO,		/* a marker with a hash algorithm we lack */
	SLCL_DL_DIVERGED			/* SL006: the server's history changed under us */
} slcl_reason;

/* Short name of a reason ("initial", "mismatch", "collected", ...). */
const char *slcl_reason_name(slcl_reason r);

typedef enum slcl_event_type
{
	SLCL_EV_OPEN,				/* the replica was opened (message says how) */
	SLCL_EV_REPAIR,				/* a torn tail or stale file was cleaned up */
	SLCL_EV_CORRUPT,			/* the local replica is damaged: will repair or fetch */
	SLCL_EV_MARKER,				/* an end-log marker was checked (ok = match) */
	SLCL_EV_SWITCH,				/* switched to next_log_id by the marker */
	SLCL_EV_DOWNLOAD_START,		/* reason, log_id/lsn = target, totals if known */
	SLCL_EV_DOWNLOAD_RESUME,	/* continuing an interrupted download */
	SLCL_EV_DOWNLOAD_PROGRESS,	/* after each page */
	SLCL_EV_DOWNLOAD_RESTART,	/* target log went away mid-download: start over */
	SLCL_EV_DOWNLOAD_DONE,		/* ok = hash verified (else it starts over) */
	SLCL_EV_CHECKPOINT,			/* state file rewritten */
	SLCL_EV_CONNECT,			/* (re)connected and listening */
	SLCL_EV_WARNING,			/* something non-fatal, e.g. an ack failed */
	SLCL_EV_DEBUG,				/* a debug hook fired (see debug_point) */
	SLCL_EV_CHANGES,			/* keys changed by a group (options.changes) */
	SLCL_EV_QUEUED,				/* a local mutation is durable in the queue (seq) */
	SLCL_EV_SUBMITTED,			/* the server took it (seq; lsn: the LSN it returned) */
	SLCL_EV_CONFIRMED,			/* mutations up to seq are in the state (lsn: the
								 * watermark's) and left the queue */
	SLCL_EV_REFUSED,			/* the server refused mutation seq (sqlstate) */
	SLCL_EV_RETIRED,			/* SL007: the client's watermark was retired with
								 * mutations pending (rows: how many) */
	SLCL_EV_PATH,				/* the way to the server's state was chosen
								 * (path, reason; message "path=... reason=...") */
	SLCL_EV_STAGED				/* a catch-up or range repair: a page staged, its
								 * resume, or its verified swap (rows, bytes) */
} slcl_event_type;

/*
 * How a replica reaches the server's state (README "Catching up"):
 * replay the log, a deduplicated catch-up (the latest value of each key
 * changed since the position), a range repair (only the buckets whose
 * range hashes differ), or a full snapshot download.
 */
typedef enum slcl_path
{
	SLCL_PATH_NONE = 0,
	SLCL_PATH_REPLAY,
	SLCL_PATH_CATCH_UP,
	SLCL_PATH_RANGE_REPAIR,
	SLCL_PATH_DOWNLOAD
} slcl_path;

/* "replay", "catch_up", "range_repair", "download" ("none"). */
const char *slcl_path_name(slcl_path p);

/* The bit of a path in slcl_options.paths. */
#define SLCL_PATH_BIT(p)	(1u << (unsigned) (p))

/* One changed key (SLCL_EV_CHANGES). */
typedef struct slcl_change
{
	uint8_t		ns;				/* SLC_NS_DATA, or SLC_NS_CLIENT (a watermark) */
	int			deleted;		/* 1: the key is gone; 0: set (read its value
								 * with a reader) */
	const uint8_t *key;
	size_t		klen;
} slcl_change;

typedef struct slcl_event
{
	slcl_event_type type;
	const char *doc;
	const char *log_id;			/* MARKER/SWITCH: the log that ended;
								 * DOWNLOAD_*: the log being downloaded */
	const char *next_log_id;	/* MARKER/SWITCH: the next log */
	int64_t		lsn;			/* the position's or the target's LSN */
	int			ok;				/* MARKER, DOWNLOAD_DONE: hash matched */
	slcl_reason reason;			/* DOWNLOAD_*: why */
	const uint8_t *local_hash;	/* MARKER, DOWNLOAD_DONE: 33 bytes, or NULL */
	const uint8_t *server_hash; /* MARKER, DOWNLOAD_DONE: 33 bytes, or NULL */
	int64_t		rows;			/* DOWNLOAD_*: keys received so far */
	int64_t		total_rows;		/* DOWNLOAD_*: keys in the snapshot, -1 unknown */
	int64_t		bytes;			/* MARKER/SWITCH: bytes of the marker row;
								 * DOWNLOAD_*: bytes received so far */
	int64_t		total_bytes;	/* DOWNLOAD_*: key+value bytes, -1 unknown */
	const char *message;		/* one line of text for people */

	/*
	 * CHANGES: the keys one atomic group changed (an entry, in protocol
	 * version 1), delivered once its transaction is committed, in LSN
	 * order; log_id/lsn is the position it reached.  A download (or a
	 * repair) delivers the difference between the old state and the new
	 * one, with reason set, lsn the new base, in several events of which
	 * all but the last have more = 1.  The arrays are valid during the
	 * callback only.
	 */
	const slcl_change *changes;
	size_t		nchanges;
	int			more;

	/* QUEUED, SUBMITTED, CONFIRMED, REFUSED: the mutation's client_seq */
	int64_t		seq;
	const char *sqlstate;		/* REFUSED, RETIRED: the SQLSTATE (or NULL) */

	slcl_path	path;			/* PATH, STAGED: the path */
} slcl_event;

typedef void (*slcl_event_fn) (void *arg, const slcl_event *ev);

typedef struct slcl_options
{
	const char *dsn;			/* libpq connection string (required to sync) */
	const char *doc;			/* document id (required) */
	const char *dir;			/* replica directory, created if missing (required) */
	const char *client_id;		/* id for synclog.ack; NULL: a random id kept
								 * in dir/client_id */
	int			ack;			/* 1 (default): call synclog.ack */
	int			ack_interval_ms;	/* re-ack at most this often while the
									 * position only moves within a log, and
									 * at least this often while synced
									 * (default 10000; keep it well below the
									 * server's client_activity_window) */
	int			page_entries;	/* synclog.read max_entries (default 1000) */
	int			page_bytes;		/* synclog.read max_bytes (default 8 MiB) */
	int			snapshot_rows;	/* synclog.snapshot max_rows (default 1000) */
	int			want_totals;	/* 1: call snapshot_info before a download for
								 * progress totals (costs a scan on the
								 * server; default 0) */
	int			open_check;		/* 1 (default): slcl_open checks every item
								 * against its stored hash and the running
								 * hash (reads the whole state once); 0: only
								 * the position's checksum */
	int			changes;		/* 1: deliver SLCL_EV_CHANGES (default 0) */
	int			cache_kib;		/* SQLite page cache of the handle (default
								 * 8192) */
	const char *page_file;		/* a document in the page-store profile
								 * (README): keep this file a copy of the
								 * SQLite database it replicates, updated
								 * after every commit as an SQLite write
								 * transaction (rollback journal, locks);
								 * NULL (default): none */
	int			part_bytes;		/* a mutation larger than this is split by
								 * keys into parts appended in one server
								 * transaction; 0 (default): the server's
								 * synclog.max_delta_size when known, else
								 * 16 MiB (its default) */
	int64_t		submit_max_bytes;	/* largest mutation slcl_submit queues
									 * (default 256 MiB, the server's default
									 * synclog.max_group_size) */
	unsigned	paths;			/* the paths the client may choose, a mask of
								 * SLCL_PATH_BIT(p); 0 (default): all of them.
								 * Replay and download are always allowed
								 * (the fallbacks): a mask restricts catch-up
								 * and range repair */
	volatile sig_atomic_t *interrupt;	/* if set and non-zero, long calls
										 * return SLCL_ERR_INTERRUPTED */
	slcl_event_fn on_event;		/* optional event callback */
	void	   *event_arg;

	/*
	 * Testing hook: the first time the client passes the named point it
	 * emits an SLCL_EV_DEBUG event and sleeps debug_delay_ms, so that a test
	 * can kill it there.  Points: "switch-verified" (marker hash matched,
	 * nothing persisted), "switch-logged" (switch committed, not acked),
	 * "page-applied" (a page's entries applied in the open transaction, not
	 * committed), "page-committed" (committed, not acked), "download-page"
	 * (a snapshot page committed), "download-verified" (snapshot verified,
	 * its install not committed), "download-installed" (the new state is
	 * live, the old generation not yet deleted), "retire-batch" (a batch of
	 * an old generation deleted, more left), "converted" (an old-format
	 * directory converted, its old files not yet removed), "pagefile-written"
	 * (the page file's new pages written and synced, its journal not yet
	 * deleted), "submit-queued" (a mutation committed to the queue, not
	 * sent), "submit-sent" (the server committed a submission, its reply
	 * not yet handled), "catchup-page" and "repair-page" (a page of a
	 * catch-up or range repair staged and committed, more to come),
	 * "catchup-staged" and "repair-staged" (everything staged and the
	 * hash verified, the swap not committed), "swap-done" (the swap
	 * committed, not acked).  "POINT#N" stops at the Nth pass instead of
	 * the first.
	 */
	const char *debug_point;
	int			debug_delay_ms;
} slcl_options;

/* Counters over the life of the replica (kept in the database with every
 * transaction, so they survive restarts and kill -9; a download that
 * replaces the state keeps them). */
typedef struct slcl_stats
{
	int64_t		switches_marker;	/* log switches by a matching marker */
	int64_t		markers_mismatch;	/* markers whose hash did not match */
	int64_t		downloads;			/* downloads started (any reason) */
	int64_t		downloads_initial;	/* ... of them because there was no state */
	int64_t		downloads_resumed;	/* interrupted downloads continued */
	int64_t		download_restarts;	/* target collected or bad hash: restarted */
	int64_t		entries_applied;	/* entries applied from the server */
	int64_t		bytes_log;			/* bytes of synclog.read rows (all columns),
									 * markers included */
	int64_t		bytes_marker;		/* bytes of the 'end' rows alone */
	int64_t		bytes_snapshot;		/* bytes of snapshot and snapshot_clients rows */
	int64_t		acks;				/* synclog.ack calls that succeeded */
	int64_t		repairs;			/* damaged state dropped, leftovers removed */
	int64_t		retired_rows;		/* items of old generations deleted */
	int64_t		bytes_downloaded;	/* key+value bytes of completed downloads */

	/*
	 * Per path (README "Catching up"): how often it was chosen, the bytes
	 * of the rows it read from the server (all columns, as bytes_log) and
	 * the milliseconds it took.  Replay's bytes are bytes_log, a
	 * download's bytes_snapshot.
	 */
	int64_t		replays;			/* replays chosen by sync_cost */
	int64_t		replay_ms;			/* time reading and applying the log */
	int64_t		catch_ups;			/* catch-ups completed */
	int64_t		catch_up_bytes;		/* bytes of catch_up (and target) rows */
	int64_t		catch_up_rows;		/* items a catch-up received */
	int64_t		catch_up_ms;
	int64_t		range_repairs;		/* range repairs completed */
	int64_t		range_repair_bytes; /* bytes of range_hashes and range rows */
	int64_t		range_repair_buckets;	/* buckets fetched */
	int64_t		range_repair_rows;	/* items a repair received */
	int64_t		range_repair_ms;
	int64_t		download_ms;		/* time in snapshot downloads */
	int64_t		cost_bytes;			/* bytes of sync_cost rows (the choice) */
	int64_t		last_path;			/* slcl_path of the last choice */
	int64_t		last_reason;		/* its slcl_reason (SLCL_DL_NONE: by cost) */
} slcl_stats;

/* Fill *o with the defaults (all pointers NULL). */
void		slcl_options_init(slcl_options *o);

/*
 * Open (creating if needed) the replica in o->dir for o->doc.  Works
 * offline: it only reads the local files (checking them, see open_check),
 * converts an old-format directory, and finishes what a crash interrupted;
 * the first slcl_sync connects.  The state stays on disk: the handle's
 * memory does not grow with it.  On failure *out is
 * NULL and slcl_open_error() describes the problem.
 */
slcl_rc		slcl_open(const slcl_options *o, slcl_client **out);
const char *slcl_open_error(void);	/* thread-unsafe; last slcl_open failure */

/*
 * Bring the replica up to date: connect (and LISTEN) if needed, download
 * if the replica has no state, and read pages until the server has nothing
 * more, applying entries, crossing markers (switch or download) and
 * persisting as it goes; ack per the options.  Returns SLCL_OK when the
 * replica is at the server's head (as of the last read).  On
 * SLCL_ERR_CONN/SLCL_ERR_SERVER, call again later: the replica stays
 * consistent and resumes where it stopped.
 */
slcl_rc		slcl_sync(slcl_client *c);

/*
 * Wait up to timeout_ms for a NOTIFY on the document's channel
 * (synclog.channel(doc), LISTENed on connect).  *notified (if not NULL) is
 * set to 1 if one arrived.  Returns SLCL_OK also on timeout or when a
 * signal interrupted the wait; SLCL_ERR_CONN if the connection broke.
 * Does not sync: call slcl_sync afterwards (also after a timeout, as the
 * poll fallback: notifications can be lost).
 */
slcl_rc		slcl_wait(slcl_client *c, int timeout_ms, int *notified);

/* Report the position with synclog.ack now (whatever the interval). */
slcl_rc		slcl_ack(slcl_client *c);

/* Close the connection and the files, free everything.  NULL is fine. */
void		slcl_close(slcl_client *c);

/* The last error of a call on c (empty if none). */
const char *slcl_errmsg(const slcl_client *c);

/*
 * The position: the log being read and the last LSN applied.  Returns 0
 * when the replica has no state (new, or damaged and downloading).  During
 * a download that replaces a state, it is the old state's position: that
 * state stays readable until the new one is installed.
 */
int			slcl_position(const slcl_client *c, const char **log_id, int64_t *lsn);

/* The chain value of the position (zeros in protocol version 1). */
void		slcl_chain(const slcl_client *c, uint8_t out[SLCL_CHAIN_LEN]);

/* 1 while a snapshot download is in progress (slcl_sync resumes it). */
int			slcl_downloading(const slcl_client *c);

/* The running snapshot hash of the state, serialized (33 bytes). */
void		slcl_hash(const slcl_client *c, uint8_t out[SLC_HASH_LEN]);

const slcl_stats *slcl_get_stats(const slcl_client *c);
const char *slcl_client_id(const slcl_client *c);

/* ------------------------------------------------------------------------
 * Reading a replica
 *
 * A reader has a read-only connection of its own to dir/replica.db: it
 * takes no lock and works while a follower (in this process or another)
 * writes.  Every call reads the newest committed state, unless it is
 * between slcl_reader_begin and slcl_reader_end: then every call reads
 * the one snapshot taken at begin (its position, hash and items belong
 * together), whatever the follower commits meanwhile.  A long snapshot
 * keeps the database's write-ahead log from being recycled: end it when
 * done.
 * ------------------------------------------------------------------------
 */
typedef struct slcl_reader slcl_reader;

/* Open a reader on the replica of doc in dir (which must exist). */
slcl_rc		slcl_reader_open(const char *dir, const char *doc, slcl_reader **out);

/* The follower's own reader (opened on the first call, closed by
 * slcl_close; NULL and slcl_errmsg(c) on failure).  Usable between calls
 * and from the event callback, not from another thread during slcl_sync. */
slcl_reader *slcl_client_reader(slcl_client *c);

/* Close a reader from slcl_reader_open.  NULL is fine. */
void		slcl_reader_close(slcl_reader *r);
const char *slcl_reader_errmsg(const slcl_reader *r);

/* Take a snapshot, and leave it. */
slcl_rc		slcl_reader_begin(slcl_reader *r);
void		slcl_reader_end(slcl_reader *r);

/*
 * The position, chain and hash of the state read (the snapshot's between
 * begin and end).  Any output may be NULL; *log_id stays valid until the
 * next call on r.  Returns SLCL_ERR_STATE if the replica has no state yet.
 */
slcl_rc		slcl_reader_position(slcl_reader *r, const char **log_id, int64_t *lsn,
								 uint8_t chain[SLCL_CHAIN_LEN], uint8_t hash[SLC_HASH_LEN]);

/*
 * Look up a data key.  *found says whether it is there; *val (valid until
 * the next call on r) and *vlen get its value.
 */
slcl_rc		slcl_reader_get(slcl_reader *r, const uint8_t *key, size_t klen,
							int *found, const uint8_t **val, size_t *vlen);

/*
 * Visit the items of namespace ns (SLC_NS_DATA, or SLC_NS_CLIENT for the
 * watermarks) with from <= key < to, in key order (bytes compared as by
 * memcmp, a prefix first).  from NULL: from the first key; to NULL: to
 * the last.  The callback's pointers are valid during the call; a non-zero
 * return stops the scan (and slcl_reader_scan returns SLCL_OK).  Runs in
 * one snapshot (begin's, or one of its own).
 */
typedef int (*slcl_item_fn) (void *arg, const uint8_t *key, size_t klen,
							 const uint8_t *val, size_t vlen);
slcl_rc		slcl_reader_scan(slcl_reader *r, uint8_t ns, const uint8_t *from, size_t fromlen,
							 const uint8_t *to, size_t tolen, slcl_item_fn fn, void *arg);

/* ------------------------------------------------------------------------
 * Writing: local mutations (PROTOCOL.md sections 4 and 9)
 *
 * A mutation is a delta (PROTOCOL.md section 10).  slcl_submit checks it
 * with the shared core, gives it the next client_seq and commits it to the
 * pending queue in replica.db (one SQLite transaction, synchronous=FULL:
 * from then on it survives kill -9 and power loss), then sends the queue
 * to the server with synclog.append_delta(doc, delta, client_id,
 * client_seq) under the handle's client id, in client_seq order, one at a
 * time.  A mutation larger than the server's synclog.max_delta_size (or
 * options.part_bytes) is split by keys into parts with consecutive
 * client_seqs, appended in ONE server transaction: readers apply them as
 * one group.  Sending is idempotent: after a lost reply or a restart the
 * same client_seqs are sent again and the server appends nothing twice;
 * before sending again after an unknown outcome the client reads the log
 * to its head.
 *
 * A mutation leaves the queue in the local transaction that commits a
 * state in which the client's own watermark (ns 2, keyed by its client
 * id) has seq >= the mutation's client_seq: after the group that carried
 * it, a marker switch, or a download.  One the server refuses (42501,
 * 54000, 22P03, 22023, ... any SQLSTATE that is not a connection error,
 * 40001/40P01, 57xxx, 53xxx, 25006, XX001 or SLxxx, which are retried)
 * moves to the failed list with its SQLSTATE and message (SLCL_EV_REFUSED).
 * If the client's own watermark disappears from the state (a retire entry,
 * PROTOCOL.md section 4) while mutations are pending, whether they were
 * applied cannot be told: they all move to the failed list with SQLSTATE
 * SL007, SLCL_EV_RETIRED is delivered and the call returns
 * SLCL_ERR_RETIRED (PROTOCOL-v2.md section C).  The application decides
 * what to submit again.
 * ------------------------------------------------------------------------
 */

/*
 * Queue a mutation and try to send the queue.  *seq (may be NULL) gets its
 * client_seq.  SLCL_OK once it is durable in the queue, whether or not it
 * could be sent yet (slcl_sync and slcl_flush send it later);
 * SLCL_ERR_ARG for a delta that does not decode, repeats a key, has a key
 * over 1024 bytes, a change larger than the part size, or is larger than
 * options.submit_max_bytes (nothing is queued); SLCL_ERR_REFUSED if the
 * server refused it (or an older one) during this call.
 */
slcl_rc		slcl_submit(slcl_client *c, const uint8_t *delta, size_t len, int64_t *seq);

/* The same with a client_seq of the caller's: SLCL_ERR_ARG if seq is not
 * above every client_seq this replica used or saw for its client id. */
slcl_rc		slcl_submit_seq(slcl_client *c, const uint8_t *delta, size_t len, int64_t seq);

/* Send the pending mutations now (slcl_sync does it too).  SLCL_OK when all
 * were sent (not yet confirmed); SLCL_ERR_CONN etc.: try again later. */
slcl_rc		slcl_flush(slcl_client *c);

/* The least client_seq slcl_submit_seq accepts now (every lower one was
 * used or seen for this client id). */
int64_t		slcl_next_seq(slcl_client *c);

/* Mutations in the queue (sent or not, not yet confirmed). */
int			slcl_pending(const slcl_client *c);

/* One queued or failed mutation (slcl_queue_list). */
typedef struct slcl_mutation
{
	int64_t		seq;			/* first client_seq */
	int64_t		last_seq;		/* last client_seq (seq + parts - 1) */
	const uint8_t *delta;
	size_t		dlen;
	double		at;				/* unix time queued (failed: when refused) */
	int			failed;			/* 0: pending; 1: refused or SL007 */
	const char *sqlstate;		/* failed: the SQLSTATE */
	const char *message;		/* failed: the server's message */
} slcl_mutation;

typedef int (*slcl_mutation_fn) (void *arg, const slcl_mutation *m);

/* Visit the pending mutations in seq order, then the failed ones; a
 * non-zero return stops. */
slcl_rc		slcl_queue_list(slcl_client *c, slcl_mutation_fn fn, void *arg);

/*
 * The rebased view: the state read (as slcl_reader_get/scan) with the
 * pending mutations of the replica's queue applied on top, in seq order,
 * all from one snapshot.  scan_rebased visits data items only.
 */
slcl_rc		slcl_reader_get_rebased(slcl_reader *r, const uint8_t *key, size_t klen,
									int *found, const uint8_t **val, size_t *vlen);
slcl_rc		slcl_reader_scan_rebased(slcl_reader *r, const uint8_t *from, size_t fromlen,
									 const uint8_t *to, size_t tolen,
									 slcl_item_fn fn, void *arg);

/* Result of slcl_verify. */
typedef struct slcl_verify_result
{
	int			local_ok;		/* rehash from scratch == running hash */
	int			server_checked; /* the server state at our LSN was rebuilt */
	int			server_ok;		/* ... and equals ours, hash and every item */
	int			at_current_base;	/* position == (current log, its base) */
	int			current_hash_ok;	/* if at_current_base: hash == the
									 * current log's snapshot_hash */
	int64_t		items;			/* items compared */
	char		detail[256];	/* what was compared, or why it could not be */
} slcl_verify_result;

/*
 * Check the replica: recompute the hash of the local state from the stored
 * items with the shared core and compare it with the running hash; then
 * rebuild the server's state at the replica's position independently (the
 * snapshot of the replica's log, verified against its snapshot_hash, plus
 * the log's entries up to the replica's LSN; built on disk, in a
 * generation of its own that is deleted afterwards) and compare hash and
 * every item.
 * When the replica's log was collected, server_checked stays 0.  Returns
 * SLCL_OK if the checks could run (look at *r for the verdict).
 */
slcl_rc		slcl_verify(slcl_client *c, slcl_verify_result *r);

/*
 * Testing only: silently alter the local state (set the data key
 * "\xffsynclog-tamper", which no real writer is expected to use, so that no
 * later entry can undo it) and commit it, keeping the items and the
 * running hash self-consistent, as a bug or a memory error could.  Only the
 * server can tell: the next marker will not match, and the client must
 * download.  Works offline; *what describes the change.
 */
slcl_rc		slcl_debug_tamper(slcl_client *c, char *what, size_t whatlen);

/*
 * Testing only: damage the replica as a bad disk would: flip a bit of one
 * stored value (the first data item's) without touching any hash.  The
 * next slcl_open (with open_check) finds it and downloads.
 */
slcl_rc		slcl_debug_damage(slcl_client *c, char *what, size_t whatlen);

#ifdef __cplusplus
}
#endif

#endif							/* SYNCLOG_CLIENT_H */
