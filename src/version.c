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
#include "miscadmin.h"
#include "commands/extension.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"

#include "synclog.h"

/*
 * The schema (and its owner) whose extension was last seen at
 * SYNCLOG_SQL_VERSION, owning its schema.  A version never goes back in
 * place (there are no downgrade scripts), so a match stays true until the
 * extension is dropped and created again, which gives the schema a new OID,
 * or the schema changes hands, which the owner shows.
 */
static Oid	checked_nsp = InvalidOid;
static Oid	checked_owner = InvalidOid;

static char *installed(Oid *owner);

/*
 * The installed version of extension synclog, palloc'd, or NULL when it is
 * not installed.
 */
char *
sl_installed_version(void)
{
	return installed(NULL);
}

/* The installed version (palloc'd, or NULL) and, if owner, the extension's owner. */
static char *
installed(Oid *owner)
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
		if (owner)
			*owner = ((Form_pg_extension) GETSTRUCT(tup))->extowner;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return version;
}

/*
 * Raise an error unless the extension in schema nsp (owned by nsp_owner) is
 * at the version this library implements and owns its schema.
 */
void
sl_check_version(Oid nsp, Oid nsp_owner)
{
	char	   *version;
	Oid			owner = InvalidOid;

	if ((nsp == checked_nsp && nsp_owner == checked_owner) || creating_extension)
		return;
	version = installed(&owner);
	if (version != NULL && owner != nsp_owner)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("schema \"synclog\" is not owned by the owner of extension \"synclog\""),
				 errdetail("synclog reaches its tables as the schema's owner, so a schema of another role would run its queries as that role."),
				 errhint("Make the extension's owner the owner of schema \"synclog\" again.")));
	if (version != NULL && strcmp(version, SYNCLOG_SQL_VERSION) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"synclog\" must be updated to version %s",
						SYNCLOG_SQL_VERSION),
				 errdetail("This database has version %s of the extension; the installed library implements version %s.",
						   version, SYNCLOG_SQL_VERSION),
				 errhint("Run ALTER EXTENSION synclog UPDATE in this database.")));
	if (version != NULL)
	{
		checked_nsp = nsp;
		checked_owner = nsp_owner;
	}
}
