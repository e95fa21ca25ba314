/*
 * test/coverage_macros.h
 *
 * For the coverage build only (make SYNCLOG_COVERAGE=1, test/coverage.sh):
 * forced into each of the extension's own files (not src/core, which uses
 * no PostgreSQL macros) before anything else.  It turns the PostgreSQL
 * macros that branch inside themselves into calls of inline functions
 * defined here, with the same value: VARSIZE_ANY, VARSIZE_ANY_EXHDR and
 * VARDATA_ANY (short or long header, and the kinds of TOAST pointer),
 * index_getattr (cached offset, nulls) and CHECK_FOR_INTERRUPTS (is an
 * interrupt pending).  gcov then counts those branches once, in this
 * header, which the report leaves out, instead of once per use in the
 * code, as it already does for PostgreSQL's inline functions
 * (heap_getattr).  They are not the code's branches: most are not even
 * reachable from it (every value it gets is detoasted, so the external
 * pointer kinds never come).  A condition the code writes around a macro
 * stays on its own line and counted.  This is the same rule as for the
 * branches inside ereport and elog, which the report does not count
 * either (see test/coverage.sh).
 *
 * Owns: nothing at run time.
 * Must never: be part of a build other than the coverage build, or change
 * what a macro computes (the arguments are evaluated once, not several
 * times; no caller passes an argument with side effects).
 */
#ifndef SYNCLOG_COVERAGE_MACROS_H
#define SYNCLOG_COVERAGE_MACROS_H

#include "postgres.h"
#include "access/itup.h"
#include "miscadmin.h"

static inline Size
sl_cov_varsize_any(const void *p)
{
	return VARSIZE_ANY(p);
}

static inline Size
sl_cov_varsize_any_exhdr(const void *p)
{
	return VARSIZE_ANY_EXHDR(p);
}

static inline char *
sl_cov_vardata_any(const void *p)
{
	return VARDATA_ANY(p);
}

static inline Datum
sl_cov_index_getattr(IndexTuple tup, int attnum, TupleDesc desc, bool *isnull)
{
	return index_getattr(tup, attnum, desc, isnull);
}

static inline void
sl_cov_check_for_interrupts(void)
{
	CHECK_FOR_INTERRUPTS();
}

#undef VARSIZE_ANY
#define VARSIZE_ANY(PTR) sl_cov_varsize_any(PTR)
#undef VARSIZE_ANY_EXHDR
#define VARSIZE_ANY_EXHDR(PTR) sl_cov_varsize_any_exhdr(PTR)
#undef VARDATA_ANY
#define VARDATA_ANY(PTR) sl_cov_vardata_any(PTR)
#undef index_getattr
#define index_getattr(tup, attnum, desc, isnull) \
	sl_cov_index_getattr((tup), (attnum), (desc), (isnull))
#undef CHECK_FOR_INTERRUPTS
#define CHECK_FOR_INTERRUPTS() sl_cov_check_for_interrupts()

#endif							/* SYNCLOG_COVERAGE_MACROS_H */
