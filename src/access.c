/*
 * access.c
 *
 * Who may touch which document.  Roles reach synclog only through its
 * functions (EXECUTE is granted per kind of user, see synclog.grant_role);
 * on top of that a DBA can confine a role to documents whose ids match
 * patterns (synclog.grant_doc), for reading or for writing.
 *
 * The rules (README.md, "Access"):
 *  - A role's confinement is its own rows in synclog.doc_grant.  A role
 *    with no rows of its own takes the rows of every role it is a member
 *    of, directly or through other roles, with or without INHERIT; a role
 *    with neither is not confined.  Superusers are never confined.
 *  - Every check judges both the current user and the session user (the
 *    role that logged in), and both must pass: SET ROLE to a group, or a
 *    SECURITY DEFINER function owned by an unconfined role, cannot widen
 *    what the session may reach.
 *  - A pattern is a document id in which % stands for any run of bytes and
 *    a backslash makes the next byte literal; every other byte, _ included,
 *    is literal.
 *  - Only a role that is not confined (by either rule above) may change
 *    grants: a confined admin cannot lift or widen anyone's confinement.
 *
 * Owns: the per-document check every function makes before it looks a
 * document up, synclog.grant_doc, synclog.revoke_doc, synclog.can_read,
 * and the refusal of confined roles for database-wide operations.
 * Must never: look the document up before the check passes, or word a
 * refusal differently for documents that exist and ones that do not; read
 * synclog.doc_grant with the caller's snapshot (a REPEATABLE READ
 * transaction would cache an old answer for the rest of the session).
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_type_d.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "synclog.h"

PG_FUNCTION_INFO_V1(synclog_grant_doc);
PG_FUNCTION_INFO_V1(synclog_revoke_doc);
PG_FUNCTION_INFO_V1(synclog_can_read);

/* Longest pattern grant_doc accepts: every byte of a 200-byte id escaped. */
#define PATTERN_MAX		(2 * SL_DOC_NAME_MAX)

/* Roles whose resolved confinement is cached (current and session user, mostly). */
#define ROLES_CACHED	8

typedef struct GrantRow
{
	Oid			role;
	bool		write;
	int			len;
	char	   *pattern;
} GrantRow;

typedef struct RoleConfinement
{
	Oid			role;
	bool		confined;
	int			nrows;
	int		   *rows;			/* indexes into grant_rows */
} RoleConfinement;

/*
 * synclog.doc_grant as last read, and the confinement of the last roles
 * checked, all in cache_cxt.  A relcache invalidation of doc_grant (sent by
 * grant_doc, revoke_doc and any other write to the table at commit), a
 * change of role membership or a dropped role empties it.
 */
static MemoryContext cache_cxt = NULL;
static bool rows_valid = false;
static GrantRow *grant_rows;
static int	grant_nrows;
static RoleConfinement roles[ROLES_CACHED];
static int	roles_cached;
static Oid	grant_relid = InvalidOid;
static uint64 invalidations = 0;

static void
reset_cache(void)
{
	rows_valid = false;
	roles_cached = 0;
	invalidations++;
}

static void
relcache_changed(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == grant_relid)
		reset_cache();
}

static void
roles_changed(Datum arg, int cacheid, uint32 hashvalue)
{
	reset_cache();
}

/*
 * Read synclog.doc_grant with the newest snapshot, not the caller's: a
 * grant or revoke that committed before this moment counts, whatever the
 * caller's isolation level, and one that commits later sends the
 * invalidation that makes us read again.
 */
static void
load_rows(void)
{
	static bool registered = false;
	Relation	rel;
	SysScanDesc scan;
	HeapTuple	tup;
	Snapshot	snap;
	int			cap = 16;
	uint64		seen;
	TupleDesc	desc;

	if (!registered)
	{
		CacheRegisterRelcacheCallback(relcache_changed, (Datum) 0);
		CacheRegisterSyscacheCallback(AUTHMEMROLEMEM, roles_changed, (Datum) 0);
		CacheRegisterSyscacheCallback(AUTHOID, roles_changed, (Datum) 0);
		registered = true;
	}
	if (cache_cxt == NULL)
		cache_cxt = AllocSetContextCreate(TopMemoryContext, "synclog access cache",
										  ALLOCSET_SMALL_SIZES);
	MemoryContextReset(cache_cxt);
	roles_cached = 0;
	grant_nrows = 0;
	grant_rows = MemoryContextAlloc(cache_cxt, cap * sizeof(GrantRow));

	grant_relid = sl_relid("doc_grant");
	rel = table_open(grant_relid, AccessShareLock);
	seen = invalidations;
	desc = RelationGetDescr(rel);
	snap = RegisterSnapshot(GetLatestSnapshot());
	scan = systable_beginscan(rel, InvalidOid, false, snap, 0, NULL);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		bool		isnull;
		Datum		role = heap_getattr(tup, 1, desc, &isnull);
		text	   *pattern = DatumGetTextPP(heap_getattr(tup, 2, desc, &isnull));
		char	   *privilege = TextDatumGetCString(heap_getattr(tup, 3, desc, &isnull));
		GrantRow   *g;

		if (grant_nrows == cap)
		{
			cap *= 2;
			grant_rows = repalloc(grant_rows, cap * sizeof(GrantRow));
		}
		g = &grant_rows[grant_nrows++];
		g->role = DatumGetObjectId(role);
		g->write = strcmp(privilege, "write") == 0;
		g->len = VARSIZE_ANY_EXHDR(pattern);
		g->pattern = MemoryContextAlloc(cache_cxt, g->len + 1);
		memcpy(g->pattern, VARDATA_ANY(pattern), g->len);
		g->pattern[g->len] = '\0';
		pfree(privilege);
	}
	systable_endscan(scan);
	UnregisterSnapshot(snap);
	table_close(rel, AccessShareLock);

	/*
	 * An invalidation that arrived while we read may be for a commit our
	 * snapshot missed: use what we read for this check, read again next time.
	 */
	rows_valid = (seen == invalidations);
}

/*
 * The confinement of a role: its own rows, else the rows of the roles it
 * is a member of, else none.
 */
static RoleConfinement *
resolve(Oid role)
{
	RoleConfinement *rc;
	int			n = 0;

	if (!rows_valid)
		load_rows();
	for (int i = 0; i < roles_cached; i++)
		if (roles[i].role == role)
			return &roles[i];
	if (roles_cached == ROLES_CACHED)
	{
		/* A few roles per backend: start over, freeing the old arrays. */
		load_rows();
	}
	rc = &roles[roles_cached++];
	rc->role = role;
	rc->rows = MemoryContextAlloc(cache_cxt, Max(grant_nrows, 1) * sizeof(int));
	for (int i = 0; i < grant_nrows; i++)
		if (grant_rows[i].role == role)
			rc->rows[n++] = i;
	if (n == 0)
	{
		for (int i = 0; i < grant_nrows; i++)
			if (grant_rows[i].role != role &&
				is_member_of_role_nosuper(role, grant_rows[i].role))
				rc->rows[n++] = i;
	}
	rc->nrows = n;
	rc->confined = n > 0;
	return rc;
}

/*
 * Does doc match pattern?  % matches any run of bytes, a backslash makes
 * the next byte literal, everything else is literal.  A pattern that ends
 * in a lone backslash (refused by grant_doc, but a table can be written by
 * other means) matches nothing.
 */
static bool
pattern_matches(const char *p, int plen, const char *s, int slen)
{
	int			pi = 0,
				si = 0;
	int			star_p = -1,
				star_s = 0;

	while (si < slen)
	{
		if (pi < plen && p[pi] == '%')
		{
			star_p = ++pi;
			star_s = si;
			continue;
		}
		if (pi < plen)
		{
			int			c = pi;

			if (p[c] == '\\')
				c++;
			if (c < plen && p[c] == s[si])
			{
				pi = c + 1;
				si++;
				continue;
			}
		}
		if (star_p < 0)
			return false;
		pi = star_p;
		si = ++star_s;
	}
	while (pi < plen && p[pi] == '%')
		pi++;
	return pi == plen;
}

/* May this role use the document (for writing if write)? */
static bool
role_may(Oid role, const char *doc, int doclen, bool write)
{
	RoleConfinement *rc;

	if (superuser_arg(role))
		return true;
	rc = resolve(role);
	if (!rc->confined)
		return true;
	for (int i = 0; i < rc->nrows; i++)
	{
		GrantRow   *g = &grant_rows[rc->rows[i]];

		if ((g->write || !write) &&
			pattern_matches(g->pattern, g->len, doc, doclen))
			return true;
	}
	return false;
}

static bool
may_use(Oid role, text *doc, bool write)
{
	const char *d = VARDATA_ANY(doc);
	int			len = VARSIZE_ANY_EXHDR(doc);
	Oid			session = GetSessionUserId();

	return role_may(role, d, len, write) &&
		(session == role || role_may(session, d, len, write));
}

/*
 * Raise 42501 unless role (and the session user) may use the document, for
 * writing if write.  The refusal is worded the same whether or not the
 * document exists.
 */
void
sl_require_doc_as(Oid role, text *doc, bool write)
{
	if (!may_use(role, doc, write))
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

/* Is this role (or the session user) confined to some documents? */
bool
sl_role_confined(Oid role)
{
	Oid			session = GetSessionUserId();

	return (!superuser_arg(role) && resolve(role)->confined) ||
		(session != role && !superuser_arg(session) && resolve(session)->confined);
}

/*
 * Refuse a confined caller an operation that reaches documents it was not
 * given (what), with 42501.
 */
void
sl_require_unconfined(Oid role, const char *what)
{
	if (sl_role_confined(role))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to %s", what),
				 errdetail("The current role or the session's role is confined to some documents by synclog.grant_doc."),
				 errhint("Run it as a role that synclog.grant_doc does not confine.")));
}

/* Other backends drop their cached confinements when this commits. */
static void
grants_changed(void)
{
	CacheInvalidateRelcacheByRelid(sl_relid("doc_grant"));
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
				 errmsg("unrecognized privilege type: \"%s\"", p),
				 errhint("Use \"read\" or \"write\".")));
	return p;
}

/* A role argument that names an existing role (regrole accepts any number). */
static Oid
role_arg(FunctionCallInfo fcinfo, int argno, bool must_exist)
{
	Oid			role;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("role must not be NULL")));
	role = PG_GETARG_OID(argno);
	if (must_exist && !SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(role)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("role with OID %u does not exist", role)));
	return role;
}

static void
check_pattern(text *pattern)
{
	const char *p = VARDATA_ANY(pattern);
	int			len = VARSIZE_ANY_EXHDR(pattern);

	if (len == 0 || len > PATTERN_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("pattern must be 1 to %d bytes long", PATTERN_MAX),
				 errdetail("The pattern is %d bytes long.", len)));
	for (int i = 0; i < len; i++)
	{
		if (p[i] == '\\')
		{
			if (i + 1 == len)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_ESCAPE_SEQUENCE),
						 errmsg("pattern must not end with an escape character"),
						 errhint("Write \\\\ for a literal backslash.")));
			i++;
		}
	}
}

/*
 * synclog.grant_doc(role regrole, pattern text, privilege text DEFAULT 'read')
 *
 * Confines role to the documents matching pattern (or adds a pattern to
 * its confinement), for reading or for writing.  Refused (42501) to a
 * confined caller.
 *
 * Takes RowExclusiveLock on synclog.doc_grant; the row of (role, pattern)
 * is inserted or updated.
 */
Datum
synclog_grant_doc(PG_FUNCTION_ARGS)
{
	Oid			role = role_arg(fcinfo, 0, true);
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
	check_pattern(pattern);
	args[0] = ObjectIdGetDatum(role);
	args[1] = PointerGetDatum(pattern);
	args[2] = CStringGetTextDatum(privilege);
	sl_spi_begin();
	sl_require_unconfined(sl_caller(), "change document grants");
	sl_exec(&plan,
			"INSERT INTO synclog.doc_grant (role, pattern, privilege) "
			"VALUES ($1::regrole, $2, $3) ON CONFLICT (role, pattern) "
			"DO UPDATE SET privilege = excluded.privilege",
			3, types, args, NULL, false, 0);
	grants_changed();
	sl_spi_end();
	PG_RETURN_VOID();
}

/*
 * synclog.revoke_doc(role regrole, pattern text DEFAULT NULL) returns bigint
 *
 * Removes one pattern of role's confinement, or with a NULL pattern all of
 * them (the role is then no longer confined), and returns how many rows
 * went.  The role need not exist any more, so that rows left by a dropped
 * role can be removed.  Refused (42501) to a confined caller.
 *
 * Takes RowExclusiveLock on synclog.doc_grant.
 */
Datum
synclog_revoke_doc(PG_FUNCTION_ARGS)
{
	Oid			role = role_arg(fcinfo, 0, false);
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
	sl_require_unconfined(sl_caller(), "change document grants");
	sl_exec(&plan,
			"DELETE FROM synclog.doc_grant WHERE role = $1::regrole "
			"AND ($2::text IS NULL OR pattern = $2)",
			2, types, args, nulls, false, 0);
	removed = (int64) SPI_processed;
	grants_changed();
	sl_spi_end();
	PG_RETURN_INT64(removed);
}

/*
 * synclog.can_read(doc text) returns boolean
 *
 * Whether the calling role (and the session's role) may read the document
 * under its confinement; false for NULL.  The status and stats views filter
 * their rows with it, so that a confined role sees only its documents.
 * Says nothing about whether the document exists.
 *
 * Takes AccessShareLock on synclog.doc_grant when its cache is cold.
 */
Datum
synclog_can_read(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		PG_RETURN_BOOL(false);
	PG_RETURN_BOOL(may_use(GetUserId(), PG_GETARG_TEXT_PP(0), false));
}
