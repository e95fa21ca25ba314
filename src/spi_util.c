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

#include "catalog/namespace.h"
#include "executor/spi.h"
#include "utils/builtins.h"

#include "synclog.h"

/*
 * Queries name every table with its schema, and pinning the search_path to
 * pg_catalog means operators and functions resolve to the built-in ones
 * even if a caller put look-alikes earlier on their own path.
 */
void
sl_spi_begin(void)
{
	OverrideSearchPath path;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
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
	SPI_finish();
}

SPIPlanPtr
sl_plan(SPIPlanPtr *plan, const char *sql, int nargs, const Oid *argtypes)
{
	if (*plan == NULL)
	{
		SPIPlanPtr	p = SPI_prepare(sql, nargs, (Oid *) argtypes);

		if (p == NULL)
			elog(ERROR, "synclog: could not prepare \"%s\": %s",
				 sql, SPI_result_code_string(SPI_result));
		if (SPI_keepplan(p) != 0)
			elog(ERROR, "synclog: could not keep plan for \"%s\"", sql);
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
		elog(ERROR, "synclog: \"%s\" failed: %s", sql,
			 SPI_result_code_string(rc));
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
