/*
 * worker.c
 *
 * The background worker: with synclog in shared_preload_libraries, a
 * launcher wakes up every synclog.naptime, lists the databases, and runs a
 * short-lived worker in each one in turn.  That worker rotates the
 * documents due under the policy and collects the logs retention no longer
 * protects, each rotation and each collection in its own transaction, and
 * exits.
 *
 * Owns: the launcher and per-database worker entry points, their signal
 * handling, and what they report to pg_stat_activity and the server log.
 * Must never: hold a database connection between rounds (DROP DATABASE
 * waits for every connection to the database, and a worker that lingered
 * would block it), scan documents to find due ones (see policy.c), or keep
 * going after a SIGTERM: every wait is on the latch and every loop checks
 * for interrupts.
 *
 * Why one worker at a time, per database, per round: it needs one
 * max_worker_processes slot besides the launcher whatever the number of
 * databases, and a database without the extension costs one short
 * connection per round.
 *
 * Why the worker vacuums: collecting a log DELETEs its entries and old
 * versions, and their space comes back only when synclog.entry and
 * synclog.kv are vacuumed.  Autovacuum visits a table at most once per
 * autovacuum_naptime (a minute by default), and by then the appends of
 * that minute have piled up behind the dead rows; that pile was most of
 * the steady-state bloat.  So after a round that collected anything, the
 * worker runs a plain VACUUM (SKIP_LOCKED) of the two tables itself, as
 * PgQ's maintenance daemon does for its queue tables
 * (synclog.vacuum_after_gc).  VACUUM cannot run inside a transaction
 * block, so it is called the way a top-level command is: in a started
 * transaction that vacuum() commits and restarts around its own ones.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "commands/extension.h"
#include "commands/vacuum.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_node.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "commands/dbcommands.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "synclog.h"

PGDLLEXPORT void synclog_launcher_main(Datum main_arg);
PGDLLEXPORT void synclog_db_worker_main(Datum main_arg);

typedef struct DbEntry
{
	Oid			oid;
	char		name[NAMEDATALEN];
} DbEntry;

void
sl_register_launcher(void)
{
	BackgroundWorker w;

	memset(&w, 0, sizeof(w));
	w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	w.bgw_start_time = BgWorkerStart_RecoveryFinished;
	w.bgw_restart_time = 10;
	strlcpy(w.bgw_library_name, "synclog", BGW_MAXLEN);
	strlcpy(w.bgw_function_name, "synclog_launcher_main", BGW_MAXLEN);
	strlcpy(w.bgw_name, "synclog launcher", BGW_MAXLEN);
	strlcpy(w.bgw_type, "synclog launcher", BGW_MAXLEN);
	RegisterBackgroundWorker(&w);
}

static void
process_reload(void)
{
	if (ConfigReloadPending)
	{
		ConfigReloadPending = false;
		ProcessConfigFile(PGC_SIGHUP);
	}
}

/* Databases a worker may connect to, read from the shared catalog. */
static List *
list_databases(MemoryContext cxt)
{
	List	   *dbs = NIL;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;

	StartTransactionCommand();
	(void) GetTransactionSnapshot();
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while (HeapTupleIsValid(tup = heap_getnext(scan, ForwardScanDirection)))
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);
		MemoryContext old;
		DbEntry    *e;

		/* Templates are copied, not used; rotating inside them helps no one. */
		if (!db->datallowconn || db->datistemplate || db->datconnlimit == DATCONNLIMIT_INVALID_DB)
			continue;
		old = MemoryContextSwitchTo(cxt);
		e = palloc(sizeof(DbEntry));
		e->oid = db->oid;
		strlcpy(e->name, NameStr(db->datname), NAMEDATALEN);
		dbs = lappend(dbs, e);
		MemoryContextSwitchTo(old);
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();
	return dbs;
}

/*
 * Run one database's round in a worker of its own and wait for it; false
 * if no worker could be started.  Allocates only the worker's handle, in
 * the current context (the launcher's round context).
 */
static bool
run_database_round(const DbEntry *db)
{
	BackgroundWorker w;
	BackgroundWorkerHandle *handle;
	BgwHandleStatus status;
	pid_t		pid;
	char		activity[NAMEDATALEN + 64];

	memset(&w, 0, sizeof(w));
	w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	w.bgw_start_time = BgWorkerStart_RecoveryFinished;
	w.bgw_restart_time = BGW_NEVER_RESTART;
	strlcpy(w.bgw_library_name, "synclog", BGW_MAXLEN);
	strlcpy(w.bgw_function_name, "synclog_db_worker_main", BGW_MAXLEN);
	snprintf(w.bgw_name, BGW_MAXLEN, "synclog worker for database %s", db->name);
	strlcpy(w.bgw_type, "synclog worker", BGW_MAXLEN);
	w.bgw_main_arg = ObjectIdGetDatum(db->oid);
	w.bgw_notify_pid = MyProcPid;

	if (!RegisterDynamicBackgroundWorker(&w, &handle))
	{
		ereport(WARNING,
				(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
				 errmsg("could not start a synclog worker for database \"%s\"",
						db->name),
				 errdetail("Each round needs one background worker slot besides the launcher's."),
				 errhint("You might need to increase \"max_worker_processes\".")));
		return false;
	}
#ifdef SYNCLOG_TEST_HOOKS
	if (synclog_debug_fail_worker_start)
	{
		/*
		 * Test hook: as if the worker could not start.  Canceled before the
		 * postmaster starts it (or at once after), and gone before we look.
		 */
		TerminateBackgroundWorker(handle);
		if (WaitForBackgroundWorkerShutdown(handle) == BGWH_POSTMASTER_DIED)
			proc_exit(1);
	}
#endif
	status = WaitForBackgroundWorkerStartup(handle, &pid);
	if (status == BGWH_POSTMASTER_DIED)
		proc_exit(1);
	if (status != BGWH_STARTED)
	{
		/*
		 * It stopped before we saw it running: it could not start (the
		 * postmaster logs why), or it ran and exited before we looked.  The
		 * database counts as not visited; the next round tries again.
		 */
		ereport(DEBUG1,
				(errmsg_internal("synclog worker for database \"%s\" stopped before it was seen running",
								 db->name)));
		return false;
	}
	snprintf(activity, sizeof(activity), "waiting for the worker in database %s", db->name);
	pgstat_report_activity(STATE_RUNNING, activity);
	status = WaitForBackgroundWorkerShutdown(handle);
	if (status == BGWH_POSTMASTER_DIED)
		proc_exit(1);
	pfree(handle);
	return true;
}

/*
 * Entry point of the launcher (registered by _PG_init when preloaded).
 * Every synclog.naptime, and at once on a SIGHUP (the handler sets the
 * latch it waits on), it lists the databases and runs one short-lived
 * worker per database in turn, waiting for each to exit.  Between rounds
 * it shows in pg_stat_activity, as idle, how many rounds it has finished
 * and how many databases the last one visited.  Connects to no database;
 * reads pg_database under AccessShareLock.
 */
void
synclog_launcher_main(Datum main_arg)
{
	MemoryContext round_cxt;
	uint64		rounds = 0;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	/* No database: the launcher only reads the shared catalog pg_database. */
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	pgstat_report_appname("synclog launcher");
	ereport(LOG,
			(errmsg("synclog launcher started"),
			 errdetail_plural("A round starts every %d second (\"synclog.naptime\") and on each configuration reload.",
							  "A round starts every %d seconds (\"synclog.naptime\") and on each configuration reload.",
							  synclog_naptime_secs, synclog_naptime_secs)));

	/*
	 * Everything a round allocates lives in round_cxt, reset after each
	 * round.  list_databases commits a transaction, after which the current
	 * context is TopMemoryContext: switch back into ours before going on.
	 * Between rounds nothing is allocated at all (the activity text is
	 * built on the stack), so the launcher's memory stays flat however
	 * long it runs (test/t/008_launcher_memory.pl).
	 */
	round_cxt = AllocSetContextCreate(TopMemoryContext, "synclog launcher round",
									  ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		char		activity[128];
		int			visited = 0;

		MemoryContextSwitchTo(round_cxt);
		CHECK_FOR_INTERRUPTS();
		process_reload();
		if (!synclog_worker_paused)
		{
			List	   *dbs;
			ListCell   *lc;

			pgstat_report_activity(STATE_RUNNING, "listing databases");
			dbs = list_databases(round_cxt);
			MemoryContextSwitchTo(round_cxt);
			foreach(lc, dbs)
			{
				CHECK_FOR_INTERRUPTS();
				process_reload();
				if (synclog_worker_paused)
					break;
				if (run_database_round((DbEntry *) lfirst(lc)))
					visited++;
			}
		}
		MemoryContextSwitchTo(TopMemoryContext);
		MemoryContextReset(round_cxt);

		/*
		 * Reported only once the round's waits are over, so that whoever
		 * reads it and then reloads the configuration gets a new round: a
		 * SIGHUP during a round may be absorbed by the waits for its workers.
		 */
		rounds++;
		snprintf(activity, sizeof(activity),
				 "idle after round " UINT64_FORMAT ", databases visited: %d",
				 rounds, visited);
		pgstat_report_activity(STATE_IDLE, activity);
		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 (long) synclog_naptime_secs * 1000L,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/*
 * Run fn in a transaction of its own.  An error is logged, the transaction
 * rolled back and false returned, with *error set to a copy of the error
 * (in cxt), so that one failing document does not end the round;
 * termination requests are not caught (die() exits directly).
 */
static bool
in_own_transaction(bool (*fn) (void *arg), void *arg, MemoryContext cxt,
				   ErrorData **error)
{
	bool		result = false;

	*error = NULL;
	PG_TRY();
	{
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		result = fn(arg);
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		*error = CopyErrorData();
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		result = false;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	return result;
}

/*
 * Most idle clients retired, and most positions removed, per round and
 * database (synclog.client_retention): bounds the round's length after
 * the setting is first turned on over a large backlog; the rest follows in
 * later rounds.
 */
#define CLIENTS_PER_ROUND	1000

typedef struct RoundState
{
	MemoryContext cxt;
	bool		installed;
	List	   *due;			/* names of due documents, in cxt */
	const char *doc;			/* the document being rotated */
	SlRotation	stats;
	char		new_log[SL_LOG_ID_LEN + 1];
	List	   *idle;			/* SlIdleClient, in cxt */
	const SlIdleClient *client; /* the client being retired */
	int64		retired_lsn;
	int64		expired;		/* positions removed by the last call */
	SlWorkerReport report;		/* not yet in synclog.worker_state */
} RoundState;

/*
 * The tasks of a round, each a transaction of its own, and the counter of
 * synclog.worker_state that counts its failures.  Choosing the due
 * documents counts as rotating, finding idle clients as retiring them.
 */
typedef enum Task
{
	TASK_ROTATE,
	TASK_CLIENTS,
	TASK_COLLECT,
	TASK_VACUUM
} Task;

static const struct
{
	const char *name;			/* synclog.worker_state.last_error_task */
	SlCounter	failed;
}			tasks[] =
{
	[TASK_ROTATE] = {"rotate", SL_ROTATIONS_FAILED},
	[TASK_CLIENTS] = {"retire clients", SL_CLIENTS_FAILED},
	[TASK_COLLECT] = {"collect", SL_COLLECTIONS_FAILED},
	[TASK_VACUUM] = {"vacuum", SL_VACUUMS_FAILED},
};

static bool
store_state(void *arg)
{
	RoundState *rs = (RoundState *) arg;

	sl_spi_begin();
	sl_write_worker_state(&rs->report);
	sl_spi_end();
	return true;
}

/*
 * Write what the round has to report into synclog.worker_state, and start
 * afresh.  A write that fails (the row locked beyond lock_timeout, say) is
 * logged, and what it carried waits for the round's next write; what the
 * round's last write could not carry is lost (the log has it).
 */
static void
write_state(RoundState *rs)
{
	ErrorData  *error;

	if (!rs->installed)
		return;
	if (!in_own_transaction(store_state, rs, rs->cxt, &error))
	{
		FreeErrorData(error);
		return;
	}
	if (rs->report.error_doc != NULL)
		pfree(rs->report.error_doc);
	if (rs->report.error_message != NULL)
		pfree(rs->report.error_message);
	memset(&rs->report, 0, sizeof(rs->report));
}

/*
 * Count a failed task, keep its error as the last one, and write both into
 * synclog.worker_state at once, so that they show while the round goes on.
 */
static void
task_failed(RoundState *rs, Task task, const char *doc, ErrorData *error)
{
	SlWorkerReport *r = &rs->report;

	r->counts[tasks[task].failed]++;
	if (r->error_doc != NULL)
		pfree(r->error_doc);
	if (r->error_message != NULL)
		pfree(r->error_message);
	r->error_task = tasks[task].name;
	r->error_doc = doc != NULL ? pstrdup(doc) : NULL;
	r->error_code = error->sqlerrcode;
	r->error_message = pstrdup(error->message);
	r->error_at = GetCurrentTimestamp();
	FreeErrorData(error);
	write_state(rs);
}

/* Run one task of the round (fn gets rs); doc: the document it is about. */
static bool
run_task(RoundState *rs, Task task, const char *doc, bool (*fn) (void *arg))
{
	ErrorData  *error;
	bool		result = in_own_transaction(fn, rs, rs->cxt, &error);

	if (error != NULL)
		task_failed(rs, task, doc, error);
	return result;
}

/*
 * Whether the database has this version of the extension (else the round
 * skips it, saying why).
 */
static bool
check_installed(void *arg)
{
	RoundState *rs = (RoundState *) arg;
	char	   *version;

	rs->installed = OidIsValid(get_extension_oid("synclog", true));
	if (!rs->installed)
		return false;
	version = sl_installed_version();
	if (version == NULL || strcmp(version, SYNCLOG_SQL_VERSION) != 0)
	{
		ereport(LOG,
				(errmsg("skipping database \"%s\": extension \"synclog\" must be updated",
						get_database_name(MyDatabaseId)),
				 errdetail("The database has version %s of the extension; this server's library needs version %s.",
						   version ? version : "(none)", SYNCLOG_SQL_VERSION),
				 errhint("Run ALTER EXTENSION synclog UPDATE in that database.")));
		rs->installed = false;
		return false;
	}
	return true;
}

static bool
choose_due(void *arg)
{
	RoundState *rs = (RoundState *) arg;
	List	   *due;
	ListCell   *lc;

	pgstat_report_activity(STATE_RUNNING, "synclog: choosing due documents");
	sl_spi_begin();
	{
		const char *why = sl_compaction_blocked();

		if (why != NULL)
		{
			/* Skips the collections as well: see pause.c. */
			ereport(LOG,
					(errmsg("skipping database \"%s\": synclog is paused",
							get_database_name(MyDatabaseId)),
					 errdetail("Rotations and collections are paused: %s.", why)));
			sl_spi_end();
			rs->installed = false;
			return false;
		}
	}
	due = sl_select_due(synclog_max_rotations_per_round);
	sl_spi_end();
	/* The list must outlive this transaction: build it in the round's context. */
	{
		MemoryContext old = MemoryContextSwitchTo(rs->cxt);

		foreach(lc, due)
			rs->due = lappend(rs->due, pstrdup(((SlDue *) lfirst(lc))->name));
		MemoryContextSwitchTo(old);
	}
	return true;
}

static bool
rotate_doc(void *arg)
{
	RoundState *rs = (RoundState *) arg;
	char	   *new_log = sl_new_log_id();
	bool		rotated;

	pgstat_report_activity(STATE_RUNNING,
							psprintf("synclog: rotating document %s", rs->doc));
	sl_spi_begin();
	rotated = sl_compact_doc(cstring_to_text(rs->doc), new_log, &rs->stats);
	sl_spi_end();
	strlcpy(rs->new_log, new_log, sizeof(rs->new_log));
	return rotated;
}

/*
 * If the client_retention pass is due this round, the clients it lets go,
 * into rs->idle; false if it is not due.
 */
static bool
choose_idle(void *arg)
{
	RoundState *rs = (RoundState *) arg;
	bool		due;

	sl_spi_begin();
	due = sl_clients_check_due();
	if (due)
	{
		pgstat_report_activity(STATE_RUNNING, "synclog: finding idle clients");
		rs->idle = sl_idle_clients(CLIENTS_PER_ROUND, rs->cxt);
	}
	sl_spi_end();
	return due;
}

static bool
retire_client(void *arg)
{
	RoundState *rs = (RoundState *) arg;

	pgstat_report_activity(STATE_RUNNING,
							psprintf("synclog: retiring client %s of document %s",
									 rs->client->client_id, rs->client->doc));
	rs->retired_lsn = sl_retire_idle_client(rs->client);
	return rs->retired_lsn >= 0;
}

static bool
expire_positions(void *arg)
{
	RoundState *rs = (RoundState *) arg;

	pgstat_report_activity(STATE_RUNNING, "synclog: removing old client positions");
	sl_spi_begin();
	rs->expired = sl_expire_positions(CLIENTS_PER_ROUND);
	sl_spi_end();
	return true;
}

/*
 * Retire the idle clients' watermarks and remove old positions
 * (synclog.client_retention; forget.c), each retirement in a transaction
 * of its own; before collecting, so that the logs those positions held
 * can go in the same round.  A pass that got through the whole backlog
 * moves synclog.worker_state.clients_checked_at; one cut short by
 * CLIENTS_PER_ROUND or a failure to list the clients is resumed next round.
 */
static void
forget_idle_clients(RoundState *rs)
{
	ListCell   *lc;

	if (synclog_client_retention_secs <= 0 ||
		!run_task(rs, TASK_CLIENTS, NULL, choose_idle))
		return;
	foreach(lc, rs->idle)
	{
		CHECK_FOR_INTERRUPTS();
		process_reload();
		if (synclog_worker_paused)
			return;
		rs->client = (const SlIdleClient *) lfirst(lc);
		if (!run_task(rs, TASK_CLIENTS, rs->client->doc, retire_client))
			continue;
		rs->report.counts[SL_CLIENTS_RETIRED]++;
		ereport(LOG,
				(errmsg("retired client \"%s\" of document \"%s\"",
						rs->client->client_id, rs->client->doc),
				 errdetail("Its newest entry is older than \"synclog.client_retention\" and it did not ack since; retire entry at LSN " INT64_FORMAT ".",
						   rs->retired_lsn)));
	}
	if (!run_task(rs, TASK_CLIENTS, NULL, expire_positions))
		return;
	rs->report.counts[SL_POSITIONS_EXPIRED] += rs->expired;
	if (rs->expired > 0)
		ereport(LOG,
				(errmsg("removed old client positions"),
				 errdetail_plural(INT64_FORMAT " position was not acknowledged within \"synclog.client_retention\".",
								  INT64_FORMAT " positions were not acknowledged within \"synclog.client_retention\".",
								  (unsigned long) rs->expired, rs->expired)));
	rs->report.clients_checked = list_length(rs->idle) < CLIENTS_PER_ROUND &&
		rs->expired < CLIENTS_PER_ROUND;
}

static bool
collect_one(void *arg)
{
	bool		collected;

	pgstat_report_activity(STATE_RUNNING, "synclog: collecting old logs");
	sl_spi_begin();
	collected = sl_collect_next(true);
	sl_spi_end();
	return collected;
}

/*
 * VACUUM (SKIP_LOCKED) synclog.entry, synclog.kv, outside any transaction
 * block.  ExecVacuum is entered as for a top-level command: inside a
 * transaction started here, which vacuum() commits before it runs one
 * transaction per table and restarts before it returns; we commit that
 * one.  vacuum() keeps its cross-transaction memory under PortalContext,
 * which a background worker does not have: it gets a context of ours,
 * deleted afterwards (also after an error).  SKIP_LOCKED: a table that
 * autovacuum is vacuuming right now is being cleaned already, and waiting
 * for it would hold up the round (and DROP DATABASE).  Counted in
 * synclog.worker_state like the other tasks.
 */
static void
vacuum_tables(RoundState *rs)
{
	MemoryContext vac_cxt = AllocSetContextCreate(rs->cxt, "synclog vacuum",
												  ALLOCSET_DEFAULT_SIZES);
	ErrorData  *error = NULL;

	PG_TRY();
	{
		VacuumStmt *stmt;

		pgstat_report_activity(STATE_RUNNING,
								"VACUUM (SKIP_LOCKED) synclog.entry, synclog.kv");
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		MemoryContextSwitchTo(vac_cxt);
#ifdef SYNCLOG_TEST_HOOKS
		if (synclog_debug_fail_vacuum)
			ereport(ERROR,
					(errcode(ERRCODE_RAISE_EXCEPTION),
					 errmsg("VACUUM failed on purpose"),
					 errdetail("\"synclog.debug_fail_vacuum\" is on.")));
#endif
		stmt = makeNode(VacuumStmt);
		stmt->options = list_make1(makeDefElem("skip_locked", NULL, -1));
		stmt->rels = list_make2(makeVacuumRelation(makeRangeVar("synclog", "entry", -1),
												   InvalidOid, NIL),
								makeVacuumRelation(makeRangeVar("synclog", "kv", -1),
												   InvalidOid, NIL));
		stmt->is_vacuumcmd = true;
		PortalContext = vac_cxt;
		ExecVacuum(make_parsestate(NULL), stmt, true);
		PortalContext = NULL;
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		PortalContext = NULL;
		MemoryContextSwitchTo(rs->cxt);
		error = CopyErrorData();
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(rs->cxt);
	MemoryContextDelete(vac_cxt);
	if (error != NULL)
		task_failed(rs, TASK_VACUUM, NULL, error);
	else
		rs->report.counts[SL_VACUUMS]++;
}

/* The database of this per-database worker, for its log lines. */
static char worker_db[NAMEDATALEN];
static ErrorContextCallback db_context;

static void
say_database(void *arg)
{
	errcontext("synclog worker for database \"%s\"", worker_db);
}

/*
 * Entry point of a per-database worker (main_arg: the database's OID).
 * Skips a database without the extension or with an older version of it;
 * otherwise rotates the due documents, retires idle clients
 * (synclog.client_retention) and collects what retention releases, each in
 * a transaction of its own with lock waits bounded by
 * synclog.rotation_lock_timeout, then vacuums if it collected, and exits.
 * Takes the locks of synclog.compact, synclog.forget_client and synclog.gc
 * (compact.c, forget.c, gc.c).
 */
void
synclog_db_worker_main(Datum main_arg)
{
	Oid			dbid = DatumGetObjectId(main_arg);
	RoundState	rs;
	ListCell   *lc;
	int			collected = 0;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(dbid, InvalidOid, 0);
	pgstat_report_appname("synclog worker");

	memset(&rs, 0, sizeof(rs));
	rs.cxt = AllocSetContextCreate(TopMemoryContext, "synclog worker",
								   ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(rs.cxt);

	/*
	 * A background worker's log lines carry no database name (log_line_prefix
	 * shows %d only for client sessions): every line of this worker says it
	 * in its CONTEXT.
	 */
	StartTransactionCommand();
	strlcpy(worker_db, get_database_name(MyDatabaseId), sizeof(worker_db));
	CommitTransactionCommand();
	MemoryContextSwitchTo(rs.cxt);
	db_context.callback = say_database;
	db_context.arg = NULL;
	db_context.previous = error_context_stack;
	error_context_stack = &db_context;

	/*
	 * Every lock wait of the round is bounded: a document whose row a
	 * writer holds in an open transaction costs the round at most this
	 * long, and the worker goes on with the others (and the launcher with
	 * the other databases).
	 */
	if (synclog_rotation_lock_timeout_ms > 0)
	{
		char		value[32];

		snprintf(value, sizeof(value), "%d", synclog_rotation_lock_timeout_ms);
		SetConfigOption("lock_timeout", value, PGC_SUSET, PGC_S_OVERRIDE);
	}

	{
		ErrorData  *error;

		/* nothing to record into where the extension is not (yet) ours */
		if (!in_own_transaction(check_installed, &rs, rs.cxt, &error))
		{
			if (error != NULL)
				FreeErrorData(error);
			proc_exit(0);
		}
	}
	rs.report.starting = true;
	write_state(&rs);

	if (run_task(&rs, TASK_ROTATE, NULL, choose_due))
	{
		foreach(lc, rs.due)
		{
			CHECK_FOR_INTERRUPTS();
			process_reload();
			if (synclog_worker_paused)
				break;
			rs.doc = (const char *) lfirst(lc);
			if (!run_task(&rs, TASK_ROTATE, rs.doc, rotate_doc))
				continue;
			rs.report.counts[SL_ROTATIONS]++;
			sl_log_rotation(rs.doc, rs.new_log, &rs.stats, true);
		}
	}
	if (!synclog_worker_paused)
		forget_idle_clients(&rs);

	for (int i = 0; i < synclog_max_collections_per_round; i++)
	{
		CHECK_FOR_INTERRUPTS();
		process_reload();
		if (synclog_worker_paused || !run_task(&rs, TASK_COLLECT, NULL, collect_one))
			break;
		collected++;
		rs.report.counts[SL_COLLECTIONS]++;
	}
	if (collected > 0 && synclog_vacuum_after_gc && !synclog_worker_paused)
		vacuum_tables(&rs);
	rs.report.finishing = true;
	write_state(&rs);
	pgstat_report_activity(STATE_IDLE, NULL);
	proc_exit(0);
}
