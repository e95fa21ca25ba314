/*
 * synclog.h
 *
 * Declarations shared by the extension's C files: SQLSTATEs, settings,
 * the SPI plan cache and the small helpers every SQL-callable function
 * uses to validate its arguments.
 *
 * Must never: declare anything the plain-C core (src/core) needs; the core
 * has no PostgreSQL dependency and must stay that way.
 */
#ifndef SYNCLOG_H
#define SYNCLOG_H

#include "postgres.h"

#include "executor/spi.h"
#include "fmgr.h"
#include "utils/array.h"
#include "nodes/pg_list.h"
#include "utils/timestamp.h"

#include "synclog_core.h"

/*
 * SQLSTATEs a client acts on.  Class "SL" is implementation-defined
 * (letters S-Z are reserved for implementations by the SQL standard), so
 * these never collide with PostgreSQL's own codes.  PROTOCOL.md lists
 * them with the action a client takes.
 */
#define ERRCODE_SYNCLOG_UNKNOWN_DOCUMENT	MAKE_SQLSTATE('S','L','0','0','1')
#define ERRCODE_SYNCLOG_UNKNOWN_LOG			MAKE_SQLSTATE('S','L','0','0','2')
#define ERRCODE_SYNCLOG_LOG_COLLECTED		MAKE_SQLSTATE('S','L','0','0','3')
#define ERRCODE_SYNCLOG_CLIENT_AHEAD		MAKE_SQLSTATE('S','L','0','0','4')
#define ERRCODE_SYNCLOG_DOCUMENT_EXISTS		MAKE_SQLSTATE('S','L','0','0','5')
#define ERRCODE_SYNCLOG_HISTORY_CHANGED		MAKE_SQLSTATE('S','L','0','0','6')

/* The highest client protocol version this library serves (PROTOCOL.md). */
#define SYNCLOG_PROTOCOL_VERSION	2

/*
 * The version of the extension's SQL objects this library implements
 * (synclog.control's default_version); see version.c.
 */
#define SYNCLOG_SQL_VERSION	"0.2"

/* Limits that are part of the protocol, not settings. */
#define SL_DOC_NAME_MAX		200
#define SL_CLIENT_ID_MAX	200
#define SL_LOG_ID_LEN		32		/* hex characters of a 128-bit random id */

/* Settings (synclog.c). */
extern int	synclog_retention_secs;
extern int	synclog_retention_max_secs;
extern int	synclog_client_window_secs;
extern int	synclog_client_retention_secs;
extern bool synclog_notify_append;
extern int	synclog_max_delta_kb;
extern int	synclog_max_delta_changes;
extern int	synclog_rotate_entries;
extern int	synclog_rotate_size_kb;
extern int	synclog_rotate_age_secs;
extern int	synclog_rotate_min_interval_secs;
extern int	synclog_naptime_secs;
extern int	synclog_max_rotations_per_round;
extern int	synclog_max_collections_per_round;
extern int	synclog_rotation_lock_timeout_ms;
extern int	synclog_max_clients_per_doc;
extern int	synclog_gc_max_logs;
extern bool synclog_worker_paused;
extern bool synclog_vacuum_after_gc;
extern int	synclog_debug_rotation_delay_ms;
extern int	synclog_max_group_kb;
extern bool synclog_debug_fail_vacuum;
extern bool synclog_debug_fail_worker_start;

/*
 * Test builds only (make SYNCLOG_TEST_HOOKS=1): SL_TEST_PAUSE("point")
 * waits at a point named by "synclog.debug_pause_at" until a test lets the
 * backend go on (see sl_test_pause in synclog.c).  Nothing in other builds.
 */
#ifdef SYNCLOG_TEST_HOOKS
extern int	synclog_debug_hint_block;
#define SL_TEST_PAUSE_LOCK_KEY	21324	/* 'S' 'L' */
extern void sl_test_pause(const char *point);
#define SL_TEST_PAUSE(point)	sl_test_pause(point)
#else
#define SL_TEST_PAUSE(point)	((void) 0)
#endif

/* Log states as stored in synclog.log.state. */
#define SL_LOG_ACTIVE		"active"
#define SL_LOG_PREVIOUS		"previous"
#define SL_LOG_RETIRED		"retired"
#define SL_LOG_COLLECTED	"collected"

/*
 * spi_util.c: every entry point brackets its SPI work with sl_spi_begin()
 * and sl_spi_end().  Between them the search_path is pinned to pg_catalog
 * alone, so objects a caller creates cannot capture our queries.
 */
extern void sl_spi_begin(void);
extern void sl_spi_end(void);
extern Oid	sl_relid(const char *name);

/*
 * Run a prepared statement.  *plan is the call site's own static cache: the
 * statement is prepared and kept on first use in each backend.
 */
extern int	sl_exec(SPIPlanPtr *plan, const char *sql, int nargs,
					const Oid *argtypes, Datum *values, const char *nulls,
					bool read_only, long count);

/* The cached plan of a call site, prepared on first use. */
extern SPIPlanPtr sl_plan(SPIPlanPtr *plan, const char *sql, int nargs,
						  const Oid *argtypes);
extern Portal sl_cursor(SPIPlanPtr *plan, const char *sql, int nargs,
						const Oid *argtypes, Datum *values, const char *nulls,
						bool read_only);
extern uint64 sl_fetch(Portal portal, SPITupleTable **batch);

/* Rows fetched per cursor round trip where results are streamed. */
#define SL_FETCH_BATCH		64

/* Column accessors on SPI_tuptable (row, 1-based column). */
extern Datum sl_col(int row, int col, bool *isnull);
extern int64 sl_col_int64(int row, int col);
extern char *sl_col_text(int row, int col);

extern Oid	sl_caller(void);

/* version.c: refuse to work on a database whose extension is older. */
extern char *sl_installed_version(void);
extern void sl_check_version(Oid nsp, Oid nsp_owner);

/* access.c: the per-document check, inside sl_spi_begin/end. */
extern void sl_require_doc(text *doc, bool write);
extern void sl_require_doc_as(Oid role, text *doc, bool write);
extern bool sl_role_confined(Oid role);
extern void sl_require_unconfined(Oid role, const char *what);

/* args.c: argument checks shared by every SQL function. */
extern text *sl_arg_doc(FunctionCallInfo fcinfo, int argno);
extern text *sl_arg_log_id(FunctionCallInfo fcinfo, int argno);
extern int64 sl_arg_lsn(FunctionCallInfo fcinfo, int argno, const char *what);
extern int32 sl_arg_positive_int(FunctionCallInfo fcinfo, int argno,
								 const char *what);
extern text *sl_arg_client_id(FunctionCallInfo fcinfo, int argno);
extern void sl_check_client(FunctionCallInfo fcinfo, int id_argno,
							int seq_argno, text **client_id,
							int64 *client_seq);
extern void sl_raise_core_error(slc_status st, size_t offset);
extern void sl_unknown_doc(text *doc) pg_attribute_noreturn();

/* docs.c: looking documents and logs up. */
typedef struct SlDoc
{
	int64		doc_id;
	int64		head_lsn;
	char	   *active_log;
	int64		active_base;
	int64		active_bytes;
} SlDoc;

/* append.c: the newest entry of a document as a snapshot sees it. */
extern void sl_last_entry(int64 doc_id, Snapshot snap, int64 *lsn,
						  int64 *log_bytes);
/* append.c: append a retire entry (outside sl_spi_begin/end); -1 if none. */
extern int64 sl_append_retire(text *doc, text *client_id);

/* The row lock appends, a rotation's sealing step and set_policy take; see docs.c. */
extern bool sl_lock_document(int64 doc_id);
extern void sl_note_document_held(int64 doc_id);
extern bool sl_document_held(int64 doc_id);

typedef struct SlLog
{
	char	   *log_id;
	int32		generation;
	char	   *state;
	int64		base_lsn;
	int64		end_lsn;		/* -1 while active */
	bytea	   *snapshot_hash;
	char	   *next_log_id;	/* NULL while active */
	bytea	   *end_hash;		/* NULL while active */
	bytea	   *base_chain;		/* chain value at base_lsn */
	bytea	   *end_chain;		/* chain value at end_lsn; NULL while active */
} SlLog;

/*
 * read_only: run in the caller's snapshot (readers, so that every lookup of
 * one call sees the same moment) or in a fresh one (writers).
 */
extern void sl_find_doc(text *doc, SlDoc *out, bool read_only);
extern void sl_find_readable_log(text *doc, text *log_id, SlDoc *d, SlLog *l);
extern void sl_find_log(text *doc, const SlDoc *d, text *log_id, SlLog *out,
						bool allow_collected, bool read_only);
extern char *sl_new_log_id(void);
extern void sl_check_position(const SlLog *l, int64 end, int64 lsn,
							  const char *what);
extern const char *sl_doc_cstring(text *doc);

/* chain_sql.c: checking a client's chain value at its position. */
extern bytea *sl_arg_chain(FunctionCallInfo fcinfo, int argno);
extern void sl_check_chain(text *doc, int64 doc_id, const SlLog *l, int64 lsn,
						   bytea *chain, bool read_only);
extern const uint8 *sl_chain_at(const SlLog *l, int64 doc_id, int64 lsn,
								bool read_only);

/* pause.c: whether compaction must leave the database alone (a restore). */
extern const char *sl_compaction_blocked(void);
extern void sl_require_not_paused(const char *what);

/* delta_sql.c: build or check an encoded delta, raising SQL errors. */
extern bytea *sl_build_delta(ArrayType *keys, ArrayType *vals);
extern void sl_validate_delta(bytea *delta);

/* compact.c: one rotation, inside sl_spi_begin/end. */
typedef struct SlRotation
{
	char		old_log[SL_LOG_ID_LEN + 1];
	int64		base_lsn;		/* old log covered (base_lsn, seal_lsn] */
	int64		seal_lsn;
	int64		log_bytes;		/* delta bytes in the sealed log */
	int64		tail_entries;	/* folded while holding the document lock */
	int64		versions;		/* state version rows written */
	uint64		state_items;	/* items in the new snapshot */
	uint64		state_bytes;
	double		elapsed_ms;
} SlRotation;

extern bool sl_compact_doc(text *doc, const char *new_log, SlRotation *stats);

/* policy.c: which documents are due, and the thresholds appends apply. */
typedef struct SlDue
{
	int64		doc_id;
	char	   *name;
} SlDue;

extern int64 sl_threshold_entries(void);
extern int64 sl_threshold_bytes(void);
extern List *sl_select_due(int max_docs);
extern int	sl_push_lock_timeout(void);
extern void sl_pop_lock_timeout(int nest);
extern void sl_log_rotation(const char *doc, const char *new_log,
							const SlRotation *r, bool at_log);

/*
 * gc.c: collect the next log that retention no longer protects (oldest
 * first), inside sl_spi_begin/end.  Returns false when there is none.  The
 * worker commits after each; synclog.gc() collects all in one transaction.
 * When at_log is set the collection is logged at LOG.
 */
extern bool sl_collect_next(bool at_log);

/* forget.c: forgetting clients (synclog.client_retention, forget_client). */
typedef struct SlIdleClient
{
	int64		doc_id;
	char	   *doc;
	char	   *client_id;
} SlIdleClient;

extern List *sl_idle_clients(int max_clients, MemoryContext cxt);
extern int64 sl_retire_idle_client(const SlIdleClient *c);
extern int64 sl_expire_positions(int max_rows);

/* entries.c: walking stored entries and their changes. */
typedef void (*sl_entry_fn) (void *arg, int64 lsn, bytea *delta,
							 text *client_id, int64 client_seq);
typedef void (*sl_change_fn) (void *arg, const uint8 *key, uint32 klen,
							  const uint8 *val, uint32 vlen);
extern void sl_foreach_entry(int64 doc_id, int64 lo, int64 hi,
							 bool newest_first, sl_entry_fn fn, void *arg);
/* The same in the caller's snapshot (readers), oldest first. */
extern void sl_foreach_entry_ro(int64 doc_id, int64 lo, int64 hi,
								sl_entry_fn fn, void *arg);
extern void sl_foreach_change(int64 doc_id, int64 lsn, bytea *delta,
							  sl_change_fn fn, void *arg);

/* keyset.c: sets of (ns, key), freed with the memory context given. */
extern slc_state *sl_keyset_new(MemoryContext cxt);
extern bool sl_keyset_add(slc_state *set, uint8 ns, const uint8 *key,
						  size_t klen);

/* notify.c */
extern char *sl_channel_name(const char *doc, int len);
/* The events a document's channel announces (PROTOCOL.md section 12). */
typedef enum SlEvent
{
	SL_EVENT_ROTATE,
	SL_EVENT_APPEND
} SlEvent;

extern void sl_notify(const char *doc, int doclen, SlEvent event);

/* worker.c */
extern void sl_register_launcher(void);

/*
 * worker_state.c: what a per-database worker records in
 * synclog.worker_state (columns of the same names, in this order).
 */
typedef enum SlCounter
{
	SL_ROTATIONS,
	SL_ROTATIONS_FAILED,
	SL_COLLECTIONS,
	SL_COLLECTIONS_FAILED,
	SL_VACUUMS,
	SL_VACUUMS_FAILED,
	SL_CLIENTS_RETIRED,
	SL_POSITIONS_EXPIRED,
	SL_CLIENTS_FAILED,
	SL_NUM_COUNTERS
} SlCounter;

typedef struct SlWorkerReport
{
	int64		counts[SL_NUM_COUNTERS];	/* since the last write */
	bool		starting;		/* a round starts */
	bool		finishing;		/* the round ended */
	bool		clients_checked;	/* a pass over idle clients completed */
	/* the last failure since the last write; error_task NULL if none */
	const char *error_task;
	char	   *error_doc;		/* the document it was about, or NULL */
	int			error_code;
	char	   *error_message;
	TimestampTz error_at;
} SlWorkerReport;

extern void sl_write_worker_state(const SlWorkerReport *r);
extern bool sl_clients_check_due(void);

/*
 * delta_store.c: version 2 (compressed) deltas (PROTOCOL.md section 10).
 * An append stores sl_delta_to_store(v1), after computing from v1 what is
 * defined over version 1 bytes.  Readers get version 1 bytes from
 * sl_stored_delta_v1 (XX001 on a bad envelope, naming the entry), unless
 * they listed the stored codec in accept: sl_delta_for_reader(stored,
 * sl_parse_accept(accept), doc_id, lsn) (22023 for a codec name this
 * server does not know).  sl_user_delta_v1 decodes a delta a user hands
 * in (22P03).
 */
extern bool synclog_compression;
extern int	synclog_compression_min_size;
extern bytea *sl_delta_to_store(bytea *v1);
extern bytea *sl_stored_delta_v1(bytea *stored, int64 doc_id, int64 lsn);
extern bytea *sl_user_delta_v1(bytea *delta);
extern bytea *sl_read_stored_v1(Datum stored, int64 v1_len, int64 doc_id,
								 int64 lsn);
extern bytea *sl_delta_for_reader(bytea *stored, int accept_mask,
								  int64 doc_id, int64 lsn);
extern int	sl_parse_accept(ArrayType *accept);

/*
 * range.c: range buckets and the reads of range hashes and ranges;
 * range_store.c: where range hashes are kept (PROTOCOL.md section 11a).  A
 * rotation collects per bucket what it changed in an SlRangeDelta and
 * stores it with the new log's base; gc removes the rows no retained
 * snapshot needs.
 */
#define SL_ITEM_HASH_LEN	24	/* synclog.kv.item_hash: u64le lo, hi, klen + vlen */
typedef struct SlRangeDelta SlRangeDelta;
extern SlRangeDelta *sl_range_delta_new(void);
extern void sl_range_delta_add(SlRangeDelta *rd, int bucket, uint64 lo,
							   uint64 hi, uint64 bytes);
extern void sl_range_delta_remove(SlRangeDelta *rd, int bucket, uint64 lo,
								  uint64 hi, uint64 bytes);
extern void sl_range_delta_store(SlRangeDelta *rd, int64 doc_id,
								 int64 base_lsn, int64 seal_lsn);
extern int64 sl_range_collect(int64 doc_id, int64 end_lsn);
extern int	sl_range_hashes_at(int64 doc_id, int64 lsn, slc_hash *rh,
							   bool read_only);

/*
 * catch_up.c: the state at a position inside a log, for range.c: its
 * range hashes, and the last writes to some buckets' keys since the base.
 */
typedef struct SlWrites SlWrites;
extern void sl_check_target(const SlDoc *d, const SlLog *tl, int64 t,
							const char *what);
extern void sl_head_range_hashes(int64 doc_id, const SlLog *l, int64 lsn,
								 slc_hash *rh);
extern SlWrites *sl_writes_begin(int64 doc_id, int64 lo, int64 hi,
								 const bool *buckets, int16 after_ns,
								 bytea *after_key);
extern bool sl_writes_next(SlWrites *w, bytea **nskey, bytea **value);
extern void sl_writes_end(SlWrites *w);
extern int	sl_bytes_cmp(const uint8 *a, size_t alen, const uint8 *b,
						 size_t blen);
extern void sl_item_hash_parse(bytea *item, int64 doc_id, uint64 *lo,
							   uint64 *hi, uint64 *bytes);
extern int16 sl_bucket_of(int16 ns, const uint8 *key, size_t klen);

/* hash helpers (hash_sql.c) */
extern bytea *sl_hash_to_bytea(const slc_hash *h);
extern void sl_bytea_to_hash(bytea *b, slc_hash *h);

#endif							/* SYNCLOG_H */
