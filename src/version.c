/*
 * version.c
 *
 * Whether the SQL objects of this database are the ones this library was
 * built for.  A package upgrade replaces synclog.so at once for every
 * database of the cluster, but each database's tables and functions change
 * only when someone runs ALTER EXTENSION synclog UPDATE in it.  Until then
 * the library refuses to work on that database, with a message that says
 * what to run, rather than reading tables whose shape it does not know.
 *
 * Owns: SYNCLOG_SQL_VERSION's check against pg_extension.extversion, and
 * its per-backend cache.
 * Must never: refuse while an extension script runs (CREATE EXTENSION and
 * ALTER EXTENSION UPDATE run the older scripts of the chain, which may
 * call our functions), or cost an append a catalog scan once the version
 * has been seen to match.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/pg_extension.h"
#include "commands/extension.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"

#include "synclog.h"

/*
 * The schema whose extension was last seen at SYNCLOG_SQL_VERSION.  A
 * version never goes back in place (there are no downgrade scripts), so a
 * match stays true until the extension is dropped and created again, which
 * gives the schema a new OID.
 */
static Oid	checked_nsp = InvalidOid;

/*
 * The installed version of extension synclog, palloc'd, or NULL when it is
 * not installed.
 */
char *
sl_installed_version(void)
{
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tup;
	char	   *version = NULL;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber,
				F_NAMEEQ, CStringGetDatum("synclog"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, Anum_pg_extension_extversion,
									 RelationGetDescr(rel), &isnull);

		if (!isnull)
			version = TextDatumGetCString(d);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return version;
}

/*
 * Raise an error unless the extension in schema nsp is at the version this
 * library implements.
 */
void
sl_check_version(Oid nsp)
{
	char	   *version;

	if (nsp == checked_nsp || creating_extension)
		return;
	version = sl_installed_version();
	if (version != NULL && strcmp(version, SYNCLOG_SQL_VERSION) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"synclog\" must be updated to version %s",
						SYNCLOG_SQL_VERSION),
				 errdetail("This database has version %s of the extension; the installed library implements version %s.",
						   version, SYNCLOG_SQL_VERSION),
				 errhint("Run ALTER EXTENSION synclog UPDATE in this database.")));
	if (version != NULL)
		checked_nsp = nsp;
}
