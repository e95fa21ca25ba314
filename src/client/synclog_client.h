/*
 * synclog_client.h - reference client library for synclog (PROTOCOL.md).
 *
 * Keeps a durable local replica of one document in a directory and follows
 * the document on the server over libpq: reads its log after the local
 * LSN, applies each delta with the shared core (src/core/synclog_core.c,
 * the same source the extension uses), verifies every end-log marker
 * against the local running hash and switches to the next log without a
 * download when they match, and otherwise downloads the snapshot of the
 * current log page by page (resumable across restarts) and verifies it.
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
 *         ... read the state with slcl_state(c) ...
 *         slcl_wait(c, 5000, NULL);      // LISTEN with a timeout
 *     }
 *     slcl_close(c);
 *
 * Threads: a client handle is used by one thread at a time.  A directory is
 * used by one handle at a time (slcl_open takes an exclusive lock on it).
 *
 * ------------------------------------------------------------------------
 * The local replica (files in the directory)
 *
 *   state       the materialized state at some position: a header record
 *               (doc, log_id, lsn, running hash, generation), one record per
 *               item (data keys and client watermarks), an end record.
 *               Only ever replaced atomically (write state.tmp, fsync,
 *               rename, fsync the directory).
 *   log         append-only: the entries pulled from the server after the
 *               position of `state` ('E' records), and the switch-overs by
 *               marker ('S' records: from log, to log, LSN, hash).  It
 *               starts with a header naming the generation of `state` it
 *               continues; a log of another generation is stale (a crash
 *               between the two renames of a checkpoint) and is discarded.
 *   download    present only while a snapshot download is in progress: the
 *               target (log id, base LSN, expected hash, a random download
 *               id) and the rows received so far, in key order.
 *   client_id   the client id used for synclog.ack (unless one is given).
 *   lock        flock()ed while a handle has the directory open.
 *
 * Every record of every file is framed as u32le length, u64le XXH3-64
 * checksum (seeded with the length), payload; a record that is cut short
 * or fails its checksum ends the file: on open, a torn tail of `log` or
 * `download` is truncated away and the replica resumes from the last
 * durable record.  A damaged `state` file is discarded (the replica then
 * downloads).  Ordering: an entry is applied in memory, appended to `log`,
 * and the log is fdatasync()ed before the page is acknowledged to the
 * server; a switch-over is made durable ('S' record, fdatasync) before it
 * is acknowledged; a checkpoint writes and renames `state` before it
 * replaces `log`; a download writes `download` before it removes the old
 * `state` and `log`, and writes the new `state` before it removes
 * `download`.  A kill at any point leaves a replica that opens to a
 * consistent position at or before the last one reached.
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
	SLCL_ERR_STATE				/* the call needs a state the replica lacks */
} slcl_rc;

/* Why a snapshot is downloaded. */
typedef enum slcl_reason
{
	SLCL_DL_NONE = 0,
	SLCL_DL_INITIAL,			/* empty directory: no local state yet */
	SLCL_DL_LOCAL_CORRUPT,		/* the local state file was unreadable */
	SLCL_DL_MISMATCH,			/* a marker's hash differed from the local hash */
	SLCL_DL_COLLECTED,			/* SL003: the local log was collected */
	SLCL_DL_UNKNOWN_LOG,		/* SL002: the server does not know the log */
	SLCL_DL_AHEAD,				/* SL004: the local LSN is beyond the log's end */
	SLCL_DL_INCONSISTENT,		/* 22023 or a gap: position and log disagree */
	SLCL_DL_BAD_HASH_ALGO		/* a marker with a hash algorithm we lack */
} slcl_reason;

/* Short name of a reason ("initial", "mismatch", "collected", ...). */
const char *slcl_reason_name(slcl_reason r);

typedef enum slcl_event_type
{
	SLCL_EV_OPEN,				/* the replica was opened (message says how) */
	SLCL_EV_REPAIR,				/* a torn tail or stale file was cleaned up */
	SLCL_EV_CORRUPT,			/* the local state file is damaged: will download */
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
	SLCL_EV_DEBUG				/* a debug hook fired (see debug_point) */
} slcl_event_type;

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
	int64_t		checkpoint_bytes;	/* rewrite `state` once `log` is this big
									 * and at least half the state's size
									 * (default 4 MiB) */
	volatile sig_atomic_t *interrupt;	/* if set and non-zero, long calls
										 * return SLCL_ERR_INTERRUPTED */
	slcl_event_fn on_event;		/* optional event callback */
	void	   *event_arg;

	/*
	 * Testing hook: the first time the client passes the named point it
	 * emits an SLCL_EV_DEBUG event and sleeps debug_delay_ms, so that a test
	 * can kill it there.  Points: "switch-verified" (marker hash matched,
	 * nothing persisted), "switch-logged" (switch durable, not acked),
	 * "page-applied" (a page's entries appended, not yet fsynced),
	 * "checkpoint-written" (state.tmp complete, not renamed),
	 * "checkpoint-renamed" (new state in place, log not yet replaced),
	 * "download-page" (a snapshot page persisted), "download-verified"
	 * (snapshot verified, new state not yet written).
	 */
	const char *debug_point;
	int			debug_delay_ms;
} slcl_options;

/* Counters since slcl_open. */
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
	int64_t		checkpoints;		/* state file rewrites */
	int64_t		repairs;			/* torn tails truncated / stale files removed */
	int64_t		replayed;			/* local log records replayed on open */
} slcl_stats;

/* Fill *o with the defaults (all pointers NULL). */
void		slcl_options_init(slcl_options *o);

/*
 * Open (creating if needed) the replica in o->dir for o->doc.  Works
 * offline: it only reads the local files, repairs a torn tail, and loads
 * the state into memory; the first slcl_sync connects.  On failure *out is
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
 * when the replica has no complete state (new, or mid-download).
 */
int			slcl_position(const slcl_client *c, const char **log_id, int64_t *lsn);

/* The materialized state (data keys in ns 1, watermarks in ns 2), or NULL. */
const slc_state *slcl_state(const slcl_client *c);

/* The running snapshot hash of the state, serialized (33 bytes). */
void		slcl_hash(const slcl_client *c, uint8_t out[SLC_HASH_LEN]);

const slcl_stats *slcl_get_stats(const slcl_client *c);
const char *slcl_client_id(const slcl_client *c);

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
 * Check the replica: recompute the hash of the local state from scratch
 * (slc_state_rehash) and compare it with the running hash; then rebuild
 * the server's state at the replica's position independently (the
 * snapshot of the replica's log, verified against its snapshot_hash, plus
 * the log's entries up to the replica's LSN) and compare hash and items.
 * When the replica's log was collected, server_checked stays 0.  Returns
 * SLCL_OK if the checks could run (look at *r for the verdict).
 */
slcl_rc		slcl_verify(slcl_client *c, slcl_verify_result *r);

/*
 * Testing only: silently alter the local state (set the data key
 * "\xffsynclog-tamper", which no real writer is expected to use, so that no
 * later entry can undo it) and checkpoint, keeping the files and the
 * running hash self-consistent, as a bug or a memory error could.  Only the
 * server can tell: the next marker will not match, and the client must
 * download.  Works offline; *what describes the change.
 */
slcl_rc		slcl_debug_tamper(slcl_client *c, char *what, size_t whatlen);

#ifdef __cplusplus
}
#endif

#endif							/* SYNCLOG_CLIENT_H */
