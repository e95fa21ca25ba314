/*
 * worker_state.c
 *
 * What the background worker tells a DBA about each database: the one row
 * of synclog.worker_state, read through the view synclog.worker_status.
 * The per-database worker writes it when a round starts, after every task
 * that fails (so that a round stuck behind a lock already shows its
 * failures) and when the round ends; README.md, "Monitoring", lists what
 * to alert on.
 *
 * Why a table and not shared memory: the state lives in the database it
 * describes, survives restarts (the counters only grow, which is what an
 * alert on "failures went up" needs), reaches hot standbys by replication,
 * and can be read without shared_preload_libraries.  It costs one small
 * row update per round and database, plus one per failure.
 *
 * Owns: the statements that write synclog.worker_state and read when the
 * client pass of synclog.client_retention is due.
 * Must never: wait on a lock longer than the worker's lock_timeout, or be
 * the reason a round stops: the worker logs a failed write and goes on
 * (worker.c).
 */
#include "postgres.h"

#include "catalog/pg_type_d.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/elog.h"

#include "synclog.h"

/*
 * Add the report's counters to the row, and set what it says: the round's
 * start or end, its last failure.  The row is created if someone deleted
 * it.  Inside sl_spi_begin/end.
 */
void
sl_write_worker_state(const SlWorkerReport *r)
{
	static SPIPlanPtr plan;
	Oid			types[10] = {INT4OID, BOOLOID, BOOLOID, BOOLOID, INT8ARRAYOID,
							 TIMESTAMPTZOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID};
	Datum		args[10];
	char		nulls[11] = "          ";
	Datum		counts[SL_NUM_COUNTERS];

	for (int i = 0; i < SL_NUM_COUNTERS; i++)
		counts[i] = Int64GetDatum(r->counts[i]);
	args[0] = Int32GetDatum(MyProcPid);
	args[1] = BoolGetDatum(r->starting);
	args[2] = BoolGetDatum(r->finishing);
	args[3] = BoolGetDatum(r->clients_checked);
	args[4] = PointerGetDatum(construct_array(counts, SL_NUM_COUNTERS, INT8OID, 8,
											  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	if (r->error_task != NULL)
	{
		args[5] = TimestampTzGetDatum(r->error_at);
		args[6] = CStringGetTextDatum(r->error_task);
		args[8] = CStringGetTextDatum(unpack_sql_state(r->error_code));
		args[9] = CStringGetTextDatum(r->error_message);
		if (r->error_doc != NULL)
			args[7] = CStringGetTextDatum(r->error_doc);
		else
			nulls[7] = 'n';
	}
	else
		for (int i = 5; i <= 9; i++)
			nulls[i] = 'n';

	/*
	 * The counters' order is SlCounter's.  A new failure replaces all of
	 * the last one, the document included (NULL when the task had none).
	 */
	sl_exec(&plan,
			"INSERT INTO synclog.worker_state AS w (one) VALUES (true) "
			"ON CONFLICT (one) DO UPDATE SET "
			" state = CASE WHEN $3 THEN 'idle' WHEN $2 THEN 'running' ELSE w.state END, "
			" pid = $1, "
			" round_started_at = CASE WHEN $2 THEN now() ELSE w.round_started_at END, "
			" round_finished_at = CASE WHEN $3 THEN now() ELSE w.round_finished_at END, "
			" rounds = w.rounds + CASE WHEN $3 THEN 1 ELSE 0 END, "
			" clients_checked_at = CASE WHEN $4 THEN now() ELSE w.clients_checked_at END, "
			" rotations = w.rotations + $5[1], "
			" rotations_failed = w.rotations_failed + $5[2], "
			" collections = w.collections + $5[3], "
			" collections_failed = w.collections_failed + $5[4], "
			" vacuums = w.vacuums + $5[5], "
			" vacuums_failed = w.vacuums_failed + $5[6], "
			" clients_retired = w.clients_retired + $5[7], "
			" positions_expired = w.positions_expired + $5[8], "
			" clients_failed = w.clients_failed + $5[9], "
			" last_error_at = coalesce($6, w.last_error_at), "
			" last_error_task = CASE WHEN $6 IS NULL THEN w.last_error_task ELSE $7 END, "
			" last_error_doc = CASE WHEN $6 IS NULL THEN w.last_error_doc ELSE $8 END, "
			" last_error_sqlstate = CASE WHEN $6 IS NULL THEN w.last_error_sqlstate ELSE $9 END, "
			" last_error = CASE WHEN $6 IS NULL THEN w.last_error ELSE $10 END",
			10, types, args, nulls, false, 0);
}

/*
 * Whether the worker's pass over idle clients and old positions is due in
 * this round: synclog.client_retention is set, and the last complete pass
 * is older than a tenth of it, or than an hour if that is less (the pass
 * reads every watermark of the database, too much for every round).
 * Inside sl_spi_begin/end.
 */
bool
sl_clients_check_due(void)
{
	static SPIPlanPtr plan;
	Oid			types[1] = {FLOAT8OID};
	Datum		args[1];
	bool		isnull;
	Datum		due;

	if (synclog_client_retention_secs <= 0)
		return false;
	args[0] = Float8GetDatum(Min((double) synclog_client_retention_secs / 10.0, 3600.0));
	sl_exec(&plan,
			"SELECT coalesce((SELECT clients_checked_at IS NULL "
			"  OR clients_checked_at <= now() - make_interval(secs => $1) "
			"  FROM synclog.worker_state), true)",
			1, types, args, NULL, true, 1);
	due = sl_col(0, 1, &isnull);
	return !isnull && DatumGetBool(due);
}
