/*
 * drop_guard.c
 *
 * DROP EXTENSION synclog deletes every document with the extension's
 * tables, and PostgreSQL asks for no CASCADE to do it: the tables are the
 * extension's own members.  An event trigger of the extension refuses a
 * DROP EXTENSION synclog without CASCADE while documents exist, so that
 * losing them takes the same explicit word as dropping any other object
 * that others depend on.
 *
 * Owns: synclog.drop_guard(), the event trigger function.
 * Must never: block the drop of other extensions, or of synclog when it
 * holds no documents or the command says CASCADE.
 */
#include "postgres.h"

#include "commands/event_trigger.h"
#include "executor/spi.h"
#include "nodes/parsenodes.h"
#include "utils/builtins.h"

#include "synclog.h"

PG_FUNCTION_INFO_V1(synclog_drop_guard);

/* Does a DROP EXTENSION statement name synclog? */
static bool
drops_synclog(DropStmt *stmt)
{
	ListCell   *lc;

	foreach(lc, stmt->objects)
	{
		Node	   *obj = (Node *) lfirst(lc);

		if (IsA(obj, String) && strcmp(strVal(obj), "synclog") == 0)
			return true;
	}
	return false;
}

/*
 * synclog.drop_guard() returns event_trigger
 *
 * Fired at ddl_command_start for DROP EXTENSION.  Raises 2BP01 when the
 * statement drops synclog without CASCADE and synclog.doc has rows.
 *
 * Takes AccessShareLock on synclog.doc (a count of its rows, as the
 * dropping role).
 */
Datum
synclog_drop_guard(PG_FUNCTION_ARGS)
{
	EventTriggerData *trig;
	DropStmt   *stmt;
	int64		docs;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function \"drop_guard\" must be fired by an event trigger")));
	trig = (EventTriggerData *) fcinfo->context;
	if (trig->parsetree == NULL || !IsA(trig->parsetree, DropStmt))
		PG_RETURN_VOID();
	stmt = (DropStmt *) trig->parsetree;
	if (stmt->removeType != OBJECT_EXTENSION || stmt->behavior == DROP_CASCADE ||
		!drops_synclog(stmt))
		PG_RETURN_VOID();

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute("SELECT pg_catalog.count(*) FROM synclog.doc", true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not count the documents of extension \"synclog\"");
	docs = sl_col_int64(0, 1);
	SPI_finish();
	if (docs > 0)
		ereport(ERROR,
				(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
				 errmsg("cannot drop extension synclog because it holds documents"),
				 errdetail_plural("The extension holds %lld document.",
								  "The extension holds %lld documents.",
								  (unsigned long) docs, (long long) docs),
				 errhint("Drop the documents with synclog.drop_doc(), or use DROP EXTENSION synclog CASCADE to drop them with it.")));
	PG_RETURN_VOID();
}
