/*
 * chain_sql.c
 *
 * Positions that identify history (PROTOCOL.md section 4a): the SQL face of
 * the entry chain values, and the check every version 2 read and ack makes
 * of the chain value a client sends with its position.
 *
 * Owns: synclog.protocol_version, synclog.chain_next, synclog.base_chain,
 * synclog.chain_at,
 * and the SL006 error ("position not in this server's history").
 * Must never: compute chain values itself outside the shared core
 * (slc_chain_next), nor accept a position whose chain value it could not
 * compare: a client is either verified or refused.
 */
#include "postgres.h"

#include "catalog/pg_type_d.h"
#include "utils/builtins.h"

#include "synclog.h"

PG_FUNCTION_INFO_V1(synclog_protocol_version);
PG_FUNCTION_INFO_V1(synclog_chain_next);
PG_FUNCTION_INFO_V1(synclog_base_chain);
PG_FUNCTION_INFO_V1(synclog_chain_at);

/* A chain value argument: not NULL, exactly 16 bytes. */
bytea *
sl_arg_chain(FunctionCallInfo fcinfo, int argno)
{
	bytea	   *chain;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("chain value must not be NULL")));
	chain = PG_GETARG_BYTEA_PP(argno);
	if (VARSIZE_ANY_EXHDR(chain) != SLC_CHAIN_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("chain value must be %d bytes", SLC_CHAIN_LEN),
				 errdetail("The value given is %d bytes.",
						   (int) VARSIZE_ANY_EXHDR(chain))));
	return chain;
}

static char *
chain_hex(const uint8 *c)
{
	static const char digits[] = "0123456789abcdef";
	char	   *out = palloc(2 * SLC_CHAIN_LEN + 1);

	for (int i = 0; i < SLC_CHAIN_LEN; i++)
	{
		out[2 * i] = digits[c[i] >> 4];
		out[2 * i + 1] = digits[c[i] & 15];
	}
	out[2 * SLC_CHAIN_LEN] = '\0';
	return out;
}

/*
 * This server's chain value at position (l, lsn), which sl_check_position
 * has already found inside the log: the log's base chain at its base, else
 * the stored value of the entry at lsn.  read_only as for sl_find_log: the
 * snapshot the caller found the position in.  The result lives in the
 * current (SPI) memory context.
 */
const uint8 *
sl_chain_at(const SlLog *l, int64 doc_id, int64 lsn, bool read_only)
{
	static SPIPlanPtr plan;
	Oid			types[2] = {INT8OID, INT8OID};
	Datum		args[2] = {Int64GetDatum(doc_id), Int64GetDatum(lsn)};
	bool		isnull;
	bytea	   *stored;

	if (lsn == l->base_lsn)
		return (const uint8 *) VARDATA_ANY(l->base_chain);
	sl_exec(&plan,
			"SELECT chain FROM synclog.entry WHERE doc_id = $1 AND lsn = $2",
			2, types, args, NULL, read_only, 1);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("missing entry in log \"%s\"", l->log_id),
				 errdetail("The log has no entry at LSN " INT64_FORMAT ".", lsn)));
	stored = DatumGetByteaPP(sl_col(0, 1, &isnull));
	if (VARSIZE_ANY_EXHDR(stored) != SLC_CHAIN_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("malformed chain value in synclog.entry"),
				 errdetail("The entry at LSN " INT64_FORMAT " of log \"%s\" has a chain value of %d bytes.",
						   lsn, l->log_id, (int) VARSIZE_ANY_EXHDR(stored))));
	return (const uint8 *) VARDATA_ANY(stored);
}

/*
 * Check that chain is this server's chain value at position (l, lsn).  A
 * different value means the client saw another history (the server failed
 * over to a standby that missed commits, or was restored or recovered to
 * an earlier point, and reused the LSNs): SL006.
 */
void
sl_check_chain(text *doc, int64 doc_id, const SlLog *l, int64 lsn, bytea *chain,
			   bool read_only)
{
	const uint8 *have = sl_chain_at(l, doc_id, lsn, read_only);

	if (memcmp(have, VARDATA_ANY(chain), SLC_CHAIN_LEN) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_SYNCLOG_HISTORY_CHANGED),
				 errmsg("position " INT64_FORMAT " of log \"%s\" of document \"%s\" is not in this server's history",
						lsn, l->log_id, sl_doc_cstring(doc)),
				 errdetail("The client's chain value there is %s; this server's is %s. The client saw entries this server never had, for example before a failover to a standby that had not received them, or a restore or point-in-time recovery to an earlier moment.",
						   chain_hex((const uint8 *) VARDATA_ANY(chain)),
						   chain_hex(have)),
				 errhint("Repair the local state against synclog.current_log() (PROTOCOL.md section 13), keeping its pending mutations.")));
}

/*
 * synclog.chain_at(doc text, log_id text, lsn bigint) returns bytea
 *
 * This server's chain value at a position of a log that is not collected
 * (lsn from the log's base to its end, or to the head of the active log).
 * For a client that reached its position by protocol version 1 and starts
 * speaking version 2: it takes the server's value once, unverified, as a
 * version 1 client trusts every position (PROTOCOL.md section 4a).  Errors
 * as synclog.read for the position.
 *
 * Takes AccessShareLock on synclog.doc, synclog.log and synclog.entry; no
 * row locks.
 */
Datum
synclog_chain_at(PG_FUNCTION_ARGS)
{
	text	   *doc = sl_arg_doc(fcinfo, 0);
	text	   *log_id = sl_arg_log_id(fcinfo, 1);
	int64		lsn = sl_arg_lsn(fcinfo, 2, "lsn");
	SlDoc		d;
	SlLog		l;
	/* the result outlives the SPI connection: allocate it first */
	bytea	   *out = palloc(VARHDRSZ + SLC_CHAIN_LEN);

	SET_VARSIZE(out, VARHDRSZ + SLC_CHAIN_LEN);
	sl_spi_begin();
	sl_find_readable_log(doc, log_id, &d, &l);
	sl_check_position(&l, l.end_lsn >= 0 ? l.end_lsn : d.head_lsn, lsn, "lsn");
	memcpy(VARDATA(out), sl_chain_at(&l, d.doc_id, lsn, true), SLC_CHAIN_LEN);
	sl_spi_end();
	PG_RETURN_BYTEA_P(out);
}

/*
 * synclog.protocol_version() returns integer
 *
 * The highest client protocol version this server speaks (PROTOCOL.md).
 */
Datum
synclog_protocol_version(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(SYNCLOG_PROTOCOL_VERSION);
}

/*
 * synclog.chain_next(prev bytea, lsn bigint, delta bytea, client_id text, client_seq bigint) returns bytea
 *
 * The chain value of an entry (PROTOCOL.md section 4a) from the previous
 * entry's: for clients that check their arithmetic, and tests.  The delta
 * must be a valid version 1 delta; client_id and client_seq are both NULL
 * or both given (client_seq -1 for a retire entry).
 */
Datum
synclog_chain_next(PG_FUNCTION_ARGS)
{
	bytea	   *prev = sl_arg_chain(fcinfo, 0);
	int64		lsn = sl_arg_lsn(fcinfo, 1, "lsn");
	bytea	   *delta;
	text	   *client_id = NULL;
	int64		client_seq = -1;
	bytea	   *out;

	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("delta must not be NULL")));
	delta = PG_GETARG_BYTEA_PP(2);
	sl_validate_delta(delta);
	if (!PG_ARGISNULL(3) && !PG_ARGISNULL(4) && PG_GETARG_INT64(4) == SLC_RETIRE_SEQ)
	{
		/* a retire entry (PROTOCOL.md section 4): client_seq -1 */
		client_id = sl_arg_client_id(fcinfo, 3);
		client_seq = SLC_RETIRE_SEQ;
	}
	else
		sl_check_client(fcinfo, 3, 4, &client_id, &client_seq);

	out = palloc(VARHDRSZ + SLC_CHAIN_LEN);
	SET_VARSIZE(out, VARHDRSZ + SLC_CHAIN_LEN);
	slc_chain_next((const uint8 *) VARDATA_ANY(prev), lsn,
				   (const uint8 *) VARDATA_ANY(delta), VARSIZE_ANY_EXHDR(delta),
				   client_id ? VARDATA_ANY(client_id) : NULL,
				   client_id ? VARSIZE_ANY_EXHDR(client_id) : 0,
				   client_seq, (uint8 *) VARDATA(out));
	PG_RETURN_BYTEA_P(out);
}

/*
 * synclog.base_chain(doc text, log_id text) returns bytea
 *
 * The chain value at the base of a log: where a client stands after it
 * downloaded the log's snapshot (PROTOCOL.md section 6).  SL002/SL003 as
 * synclog.read for an unknown or collected log.
 *
 * Takes AccessShareLock on synclog.doc and synclog.log; no row locks.
 */
Datum
synclog_base_chain(PG_FUNCTION_ARGS)
{
	text	   *doc = sl_arg_doc(fcinfo, 0);
	text	   *log_id = sl_arg_log_id(fcinfo, 1);
	SlDoc		d;
	SlLog		l;
	/* the result outlives the SPI connection: allocate it first */
	bytea	   *out = palloc(VARHDRSZ + SLC_CHAIN_LEN);

	SET_VARSIZE(out, VARHDRSZ + SLC_CHAIN_LEN);
	sl_spi_begin();
	sl_find_readable_log(doc, log_id, &d, &l);
	memcpy(VARDATA(out), VARDATA_ANY(l.base_chain), SLC_CHAIN_LEN);
	sl_spi_end();
	PG_RETURN_BYTEA_P(out);
}
