/*
 * spi_util.c
 *
 * How the extension talks to its own tables: a per-backend cache of
 * prepared statements and a pinned search_path around every use of SPI.
 *
 * Owns: SPI connect/finish bracketing, the plan cache, column accessors.
 * Must never: build SQL from caller input; every value reaches a query as a
 * parameter of a prepared statement.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "miscadmin.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "synclog.h"

/*
 * Callers of synclog's functions need EXECUTE on them and nothing else:
 * the tables are reached as the extension's owner (the owner of schema
 * synclog), the way PostgreSQL runs foreign-key checks as the table owner.
 * The caller's identity is kept so that access checks (access.c) judge
 * the caller, not the owner.  Aborting a transaction or subtransaction
 * restores the user id on its own, so errors need no cleanup here.
 *
 * Queries name every table with its schema, and pinning the search_path to
 * pg_catalog means operators and functions resolve to the built-in ones
 * even if a caller put look-alikes earlier on their own path.
 */
/*
 * One level is enough: the statements run between begin and end touch only
 * synclog's tables, which have no triggers, so no synclog function can run
 * inside another's SPI session.  After an error the values are stale but
 * harmless, since the next begin overwrites them.
 */
static Oid	saved_user = InvalidOid;
static int	saved_sec_context = 0;

/*
 * The schema synclog and its owner, checked against the extension
 * (version.c): the owner is the role synclog's queries run as.
 */
static Oid
checked_schema(Oid *owner)
{
	Oid			nsp = get_namespace_oid("synclog", true);
	HeapTuple	tup;

	if (!OidIsValid(nsp))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"synclog\" is not installed in this database")));
	tup = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(nsp));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for schema %u", nsp);
	*owner = ((Form_pg_namespace) GETSTRUCT(tup))->nspowner;
	ReleaseSysCache(tup);
	sl_check_version(nsp, *owner);
	return nsp;
}

/* A relation of schema synclog, for the code that works below SQL. */
Oid
sl_relid(const char *name)
{
	Oid			owner;
	Oid			relid = get_relname_relid(name, checked_schema(&owner));

	if (!OidIsValid(relid))
		elog(ERROR, "relation \"synclog.%s\" of extension \"synclog\" is missing", name);
	return relid;
}

void
sl_spi_begin(void)
{
	OverrideSearchPath path;
	Oid			owner;

	GetUserIdAndSecContext(&saved_user, &saved_sec_context);
	(void) checked_schema(&owner);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	SetUserIdAndSecContext(owner, saved_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	path.schemas = NIL;
	path.addCatalog = true;
	path.addTemp = false;
	path.generation = 0;
	PushOverrideSearchPath(&path);
}

void
sl_spi_end(void)
{
	PopOverrideSearchPath();
	SetUserIdAndSecContext(saved_user, saved_sec_context);
	SPI_finish();
}

/* The role that called the synclog function now running. */
Oid
sl_caller(void)
{
	return saved_user;
}

SPIPlanPtr
sl_plan(SPIPlanPtr *plan, const char *sql, int nargs, const Oid *argtypes)
{
	if (*plan == NULL)
	{
		SPIPlanPtr	p = SPI_prepare(sql, nargs, (Oid *) argtypes);

		if (p == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg_internal("SPI_prepare failed: %s",
									 SPI_result_code_string(SPI_result)),
					 errdetail_internal("The statement was: %s", sql)));
		if (SPI_keepplan(p) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg_internal("SPI_keepplan failed"),
					 errdetail_internal("The statement was: %s", sql)));
		*plan = p;
	}
	return *plan;
}

int
sl_exec(SPIPlanPtr *plan, const char *sql, int nargs, const Oid *argtypes,
		Datum *values, const char *nulls, bool read_only, long count)
{
	int			rc;
	MemoryContext caller = CurrentMemoryContext;

	rc = SPI_execute_plan(sl_plan(plan, sql, nargs, argtypes), values, nulls,
						  read_only, count);

	/*
	 * SPI leaves us in its procedure context after every call; go back to
	 * the caller's, or per-row allocations would pile up there for the
	 * length of the function.
	 */
	MemoryContextSwitchTo(caller);
	if (rc < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg_internal("SPI_execute_plan failed: %s",
								 SPI_result_code_string(rc)),
				 errdetail_internal("The statement was: %s", sql)));
	return rc;
}

/*
 * A cursor over a prepared statement, for results that must not be held in
 * memory at once (log pages, snapshot pages, folds): callers fetch a batch
 * at a time.
 */
Portal
sl_cursor(SPIPlanPtr *plan, const char *sql, int nargs, const Oid *argtypes,
		  Datum *values, const char *nulls, bool read_only)
{
	MemoryContext caller = CurrentMemoryContext;
	Portal		portal;

	portal = SPI_cursor_open(NULL, sl_plan(plan, sql, nargs, argtypes),
							 values, nulls, read_only);
	MemoryContextSwitchTo(caller);
	return portal;
}

Datum
sl_col(int row, int col, bool *isnull)
{
	return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc,
						 col, isnull);
}

int64
sl_col_int64(int row, int col)
{
	bool		isnull;
	Datum		d = sl_col(row, col, &isnull);

	return isnull ? -1 : DatumGetInt64(d);
}

/* Returns a C string palloc'd in the current (SPI procedure) context, or NULL. */
char *
sl_col_text(int row, int col)
{
	bool		isnull;
	Datum		d = sl_col(row, col, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

/*
 * The next batch of a cursor's rows (at most SL_FETCH_BATCH) in *batch;
 * returns how many, 0 at the end.  The caller frees each batch.
 */
uint64
sl_fetch(Portal portal, SPITupleTable **batch)
{
	SPI_cursor_fetch(portal, true, SL_FETCH_BATCH);
	*batch = SPI_tuptable;
	return SPI_processed;
}
