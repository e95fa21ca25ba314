/*
 * access.c
 *
 * Who may touch which document.  Roles reach synclog only through its
 * functions (EXECUTE is granted per kind of user, see synclog.grant_role);
 * on top of that a DBA can confine a role to documents whose ids match
 * patterns (synclog.grant_doc), for reading or for writing.
 *
 * Owns: the per-document check every function makes before it looks a
 * document up, synclog.grant_doc, synclog.revoke_doc.
 * Must never: look the document up before the check passes, or word a
 * refusal differently for documents that exist and ones that do not; a
 * confined role must learn nothing about documents outside its patterns.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_collation_d.h"
#include "catalog/pg_type_d.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "synclog.h"

PG_FUNCTION_INFO_V1(synclog_grant_doc);
PG_FUNCTION_INFO_V1(synclog_revoke_doc);

/*
 * The confinement of the last role checked, cached for the backend: the
 * check runs on every append, and the grants change rarely.  grant_doc and
 * revoke_doc send a relcache invalidation for synclog.doc_grant, which
 * reaches every backend at commit and empties the cache here.
 */
typedef struct DocPattern
{
	text	   *pattern;
	bool		write;
} DocPattern;

static bool cache_valid = false;
static bool callback_registered = false;
static Oid	cache_role = InvalidOid;
static Oid	cache_relid = InvalidOid;
static List *cache_patterns = NIL;	/* of DocPattern, in cache_cxt */
static MemoryContext cache_cxt = NULL;

static void
invalidate_cache(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == cache_relid)
		cache_valid = false;
}

static Oid
doc_grant_relid(void)
{
	Oid			nsp = get_namespace_oid("synclog", false);

	return get_relname_relid("doc_grant", nsp);
}

static void
load_cache(Oid role)
{
	static SPIPlanPtr plan;
	Oid			types[1] = {OIDOID};
	Datum		args[1] = {ObjectIdGetDatum(role)};

	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(invalidate_cache, (Datum) 0);
		callback_registered = true;
	}
	if (cache_cxt == NULL)
		cache_cxt = AllocSetContextCreate(TopMemoryContext, "synclog access cache",
										  ALLOCSET_SMALL_SIZES);
	MemoryContextReset(cache_cxt);
	cache_patterns = NIL;
	cache_valid = false;

	cache_relid = doc_grant_relid();
	sl_exec(&plan,
			"SELECT pattern, privilege = 'write' FROM synclog.doc_grant WHERE role_oid = $1",
			1, types, args, NULL, true, 0);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		MemoryContext old = MemoryContextSwitchTo(cache_cxt);
		DocPattern *p = palloc(sizeof(DocPattern));

		p->pattern = DatumGetTextPCopy(sl_col(i, 1, &isnull));
		p->write = DatumGetBool(sl_col(i, 2, &isnull));
		cache_patterns = lappend(cache_patterns, p);
		MemoryContextSwitchTo(old);
	}
	cache_role = role;
	cache_valid = true;
}

/*
 * Whether checking this role needs SQL (its confinement is not cached), so
 * that the caller must be inside sl_spi_begin/end.  Superusers are never
 * confined and need nothing.
 */
bool
sl_access_needs_spi(Oid role)
{
	return !superuser_arg(role) && !(cache_valid && cache_role == role);
}

/*
 * A role with no rows in synclog.doc_grant is not confined: EXECUTE on the
 * function is all it needs.  A role with rows may use only documents whose
 * id matches one of its patterns (LIKE), and may write only through a
 * 'write' row.  Superusers are never confined.  Must run inside
 * sl_spi_begin/end when sl_access_needs_spi(role) says so.
 */
void
sl_require_doc_as(Oid role, text *doc, bool write)
{
	ListCell   *lc;

	if (superuser_arg(role))
		return;
	if (!cache_valid || cache_role != role)
		load_cache(role);
	if (cache_patterns == NIL)
		return;
	foreach(lc, cache_patterns)
	{
		DocPattern *p = (DocPattern *) lfirst(lc);

		if ((p->write || !write) &&
			DatumGetBool(DirectFunctionCall2Coll(textlike, C_COLLATION_OID,
												 PointerGetDatum(doc),
												 PointerGetDatum(p->pattern))))
			return;
	}
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied for document \"%s\"", sl_doc_cstring(doc))));
}

/* The same for the role calling the synclog function; runs inside sl_spi_begin/end. */
void
sl_require_doc(text *doc, bool write)
{
	sl_require_doc_as(sl_caller(), doc, write);
}

/* Other backends drop their cached confinements when this commits. */
static void
grants_changed(void)
{
	CacheInvalidateRelcacheByRelid(doc_grant_relid());
}

static const char *
privilege_arg(FunctionCallInfo fcinfo, int argno)
{
	char	   *p;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("privilege must not be NULL")));
	p = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	if (strcmp(p, "read") != 0 && strcmp(p, "write") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("privilege must be \"read\" or \"write\", got \"%s\"", p)));
	return p;
}

static Oid
role_arg(FunctionCallInfo fcinfo, int argno)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("role must not be NULL")));
	return PG_GETARG_OID(argno);
}

Datum
synclog_grant_doc(PG_FUNCTION_ARGS)
{
	Oid			role = role_arg(fcinfo, 0);
	text	   *pattern;
	const char *privilege = privilege_arg(fcinfo, 2);
	static SPIPlanPtr plan;
	Oid			types[3] = {OIDOID, TEXTOID, TEXTOID};
	Datum		args[3];

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("pattern must not be NULL")));
	pattern = PG_GETARG_TEXT_PP(1);
	args[0] = ObjectIdGetDatum(role);
	args[1] = PointerGetDatum(pattern);
	args[2] = CStringGetTextDatum(privilege);
	sl_spi_begin();
	sl_exec(&plan,
			"INSERT INTO synclog.doc_grant (role_oid, pattern, privilege) "
			"VALUES ($1, $2, $3) ON CONFLICT (role_oid, pattern) "
			"DO UPDATE SET privilege = excluded.privilege",
			3, types, args, NULL, false, 0);
	grants_changed();
	sl_spi_end();
	PG_RETURN_VOID();
}

/* With a NULL pattern, lifts every confinement of the role. */
Datum
synclog_revoke_doc(PG_FUNCTION_ARGS)
{
	Oid			role = role_arg(fcinfo, 0);
	static SPIPlanPtr plan;
	Oid			types[2] = {OIDOID, TEXTOID};
	Datum		args[2];
	char		nulls[3] = "  ";
	int64		removed;

	args[0] = ObjectIdGetDatum(role);
	if (PG_ARGISNULL(1))
	{
		args[1] = (Datum) 0;
		nulls[1] = 'n';
	}
	else
		args[1] = PG_GETARG_DATUM(1);
	sl_spi_begin();
	sl_exec(&plan,
			"DELETE FROM synclog.doc_grant WHERE role_oid = $1 "
			"AND ($2::text IS NULL OR pattern = $2)",
			2, types, args, nulls, false, 0);
	removed = (int64) SPI_processed;
	grants_changed();
	sl_spi_end();
	PG_RETURN_INT64(removed);
}
