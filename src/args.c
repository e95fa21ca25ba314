/*
 * args.c
 *
 * Argument checks shared by every SQL-callable function, so a given
 * mistake gets the same SQLSTATE and wording wherever it is made.
 *
 * Owns: validation of doc ids, log ids, LSNs, limits, client identities,
 * and the mapping from core (delta codec) errors to SQLSTATEs.
 * Must never: read or write tables; checks here run before any SPI work so
 * a rejected call has touched nothing.
 */
#include "postgres.h"

#include "utils/builtins.h"

#include "synclog.h"

/* A document id argument: not NULL, 1 to SL_DOC_NAME_MAX bytes. */
text *
sl_arg_doc(FunctionCallInfo fcinfo, int argno)
{
	text	   *t;
	int			len;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("document id must not be NULL")));
	t = PG_GETARG_TEXT_PP(argno);
	len = VARSIZE_ANY_EXHDR(t);
	if (len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("document id must not be empty")));
	if (len > SL_DOC_NAME_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("document id is too long"),
				 errdetail("Document ids are at most %d bytes; this one is %d bytes.",
						   SL_DOC_NAME_MAX, len)));
	return t;
}

/*
 * A log id argument: not NULL.  Any other text is simply not found, which
 * the lookup reports (SL002).
 */
text *
sl_arg_log_id(FunctionCallInfo fcinfo, int argno)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("log id must not be NULL")));
	return PG_GETARG_TEXT_PP(argno);
}

/* An LSN argument named what: not NULL, not negative. */
int64
sl_arg_lsn(FunctionCallInfo fcinfo, int argno, const char *what)
{
	int64		v;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("\"%s\" must not be NULL", what)));
	v = PG_GETARG_INT64(argno);
	if (v < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%s\" must not be negative", what),
				 errdetail("The value given was " INT64_FORMAT ".", v)));
	return v;
}

/* A count or size argument named what: not NULL, greater than zero. */
int32
sl_arg_positive_int(FunctionCallInfo fcinfo, int argno, const char *what)
{
	int32		v;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("\"%s\" must not be NULL", what)));
	v = PG_GETARG_INT32(argno);
	if (v <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%s\" must be greater than zero", what),
				 errdetail("The value given was %d.", v)));
	return v;
}

/* A client id: not NULL (22004), 1 to SL_CLIENT_ID_MAX bytes (22023). */
text *
sl_arg_client_id(FunctionCallInfo fcinfo, int argno)
{
	text	   *id;
	int			len;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("client_id must not be NULL")));
	id = PG_GETARG_TEXT_PP(argno);
	len = VARSIZE_ANY_EXHDR(id);
	if (len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("client_id must not be empty")));
	if (len > SL_CLIENT_ID_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("client_id is too long"),
				 errdetail("Client ids are at most %d bytes; this one is %d bytes.",
						   SL_CLIENT_ID_MAX, len)));
	return id;
}

/*
 * client_id and client_seq come as a pair: a sequence number means nothing
 * without the client it counts for, and an id without a number cannot be
 * deduplicated.
 */
void
sl_check_client(FunctionCallInfo fcinfo, int id_argno, int seq_argno,
				text **client_id, int64 *client_seq)
{
	bool		has_id = !PG_ARGISNULL(id_argno);
	bool		has_seq = !PG_ARGISNULL(seq_argno);

	*client_id = NULL;
	*client_seq = 0;
	if (!has_id && !has_seq)
		return;
	if (has_id != has_seq)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("client_id and client_seq must be given together"),
				 errhint("Pass both to make the append idempotent, or neither.")));
	*client_id = sl_arg_client_id(fcinfo, id_argno);
	*client_seq = PG_GETARG_INT64(seq_argno);
	if (*client_seq < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%s\" must not be negative", "client_seq"),
				 errdetail("The value given was " INT64_FORMAT ".", *client_seq)));
}

/*
 * Structural problems of a binary delta are invalid_binary_representation;
 * sizes beyond the protocol's limits are program_limit_exceeded; a repeated
 * key is a bad value rather than bad bytes.
 */
void
sl_raise_core_error(slc_status st, size_t offset)
{
	int			code;

	switch (st)
	{
		case SLC_ERR_KEY_TOO_LONG:
		case SLC_ERR_VALUE_TOO_LONG:
		case SLC_ERR_TOO_MANY:
			code = ERRCODE_PROGRAM_LIMIT_EXCEEDED;
			break;
		case SLC_ERR_DUPLICATE_KEY:
			code = ERRCODE_INVALID_PARAMETER_VALUE;
			break;
		default:
			code = ERRCODE_INVALID_BINARY_REPRESENTATION;
			break;
	}
	ereport(ERROR,
			(errcode(code),
			 errmsg("malformed delta: %s", slc_status_message(st)),
			 errdetail("The problem is at byte %zu. The delta encoding is defined in PROTOCOL.md; this server reads version %d only.",
					   offset, SLC_DELTA_VERSION)));
}

/* The one wording of "no such document", so every function says the same. */
void
sl_unknown_doc(text *doc)
{
	ereport(ERROR,
			(errcode(ERRCODE_SYNCLOG_UNKNOWN_DOCUMENT),
			 errmsg("document \"%s\" does not exist", sl_doc_cstring(doc))));
}
