/*
 * hash_sql.c
 *
 * The snapshot hash in SQL: aggregates that hash any set of (key, value)
 * rows or client watermarks exactly as the coordinator does, so a user can
 * check a downloaded snapshot with a query, and conversions between the
 * 33-byte serialized form and the core's struct.
 *
 * Owns: synclog.state_hash (both aggregates' transition functions),
 * synclog.hash_combine, synclog.hash_info.
 * Must never: define the hash; that is src/core's job.
 */
#include "postgres.h"

#include "funcapi.h"
#include "utils/builtins.h"

#include "synclog.h"

PG_FUNCTION_INFO_V1(synclog_hash_add_data);
PG_FUNCTION_INFO_V1(synclog_hash_add_client);
PG_FUNCTION_INFO_V1(synclog_hash_combine);
PG_FUNCTION_INFO_V1(synclog_hash_info);

/* The 33-byte serialized form of a hash, as a bytea. */
bytea *
sl_hash_to_bytea(const slc_hash *h)
{
	bytea	   *b = palloc(VARHDRSZ + SLC_HASH_LEN);

	SET_VARSIZE(b, VARHDRSZ + SLC_HASH_LEN);
	slc_hash_serialize(h, (uint8 *) VARDATA(b));
	return b;
}

/* Parse a serialized hash; anything but 33 bytes of algorithm 1 is 22P03. */
void
sl_bytea_to_hash(bytea *b, slc_hash *h)
{
	int			len = (int) VARSIZE_ANY_EXHDR(b);

	if (slc_hash_parse((const uint8 *) VARDATA_ANY(b), len, h) == SLC_OK)
		return;
	if (len != SLC_HASH_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid snapshot hash"),
				 errdetail_plural("A snapshot hash is %d bytes long; this one is %d byte.",
								  "A snapshot hash is %d bytes long; this one is %d bytes.",
								  len, SLC_HASH_LEN, len)));
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
			 errmsg("invalid snapshot hash"),
			 errdetail("Its first byte is algorithm id %d; this server supports algorithm %d only.",
					   *(const uint8 *) VARDATA_ANY(b), SLC_HASH_ALGO_XXH3SUM)));
}

/*
 * Transition state: in an aggregate we own the state and update it in
 * place (one allocation per group instead of per row).
 */
static bytea *
transition_state(FunctionCallInfo fcinfo, slc_hash *h)
{
	bytea	   *state;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("hash state must not be NULL")));
	if (AggCheckCallContext(fcinfo, NULL))
		state = PG_GETARG_BYTEA_P(0);
	else
		state = PG_GETARG_BYTEA_P_COPY(0);
	sl_bytea_to_hash(state, h);
	return state;
}

/*
 * synclog.hash_add_data(state bytea, key bytea, value bytea) returns bytea
 *
 * Transition function of the aggregate synclog.state_hash(key, value):
 * adds the data item key -> value to the hash state (a NULL value is an
 * absent key and adds nothing).  Inside an aggregate the state is updated
 * in place.
 *
 * Touches no table and takes no locks.
 */
Datum
synclog_hash_add_data(PG_FUNCTION_ARGS)
{
	slc_hash	h;
	bytea	   *state = transition_state(fcinfo, &h);
	bytea	   *key;
	bytea	   *val;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("key must not be NULL")));
	/* A NULL value is an absent key: it contributes nothing. */
	if (PG_ARGISNULL(2))
		PG_RETURN_BYTEA_P(state);
	key = PG_GETARG_BYTEA_PP(1);
	val = PG_GETARG_BYTEA_PP(2);
	slc_hash_add(&h, SLC_NS_DATA, (const uint8 *) VARDATA_ANY(key),
				 VARSIZE_ANY_EXHDR(key), (const uint8 *) VARDATA_ANY(val),
				 VARSIZE_ANY_EXHDR(val));
	slc_hash_serialize(&h, (uint8 *) VARDATA(state));
	PG_RETURN_BYTEA_P(state);
}

/*
 * synclog.hash_add_client(state bytea, client_id text, client_seq bigint, client_lsn bigint) returns bytea
 *
 * Transition function of the aggregate synclog.state_hash(client_id,
 * client_seq, client_lsn): adds the watermark of one client to the hash
 * state, as a rotation does.
 *
 * Touches no table and takes no locks.
 */
Datum
synclog_hash_add_client(PG_FUNCTION_ARGS)
{
	slc_hash	h;
	bytea	   *state = transition_state(fcinfo, &h);
	text	   *id;
	uint8		wm[SLC_WATERMARK_LEN];

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("client_id, client_seq and client_lsn must not be NULL")));
	id = PG_GETARG_TEXT_PP(1);
	slc_watermark_encode(PG_GETARG_INT64(2), PG_GETARG_INT64(3), wm);
	slc_hash_add(&h, SLC_NS_CLIENT, (const uint8 *) VARDATA_ANY(id),
				 VARSIZE_ANY_EXHDR(id), wm, SLC_WATERMARK_LEN);
	slc_hash_serialize(&h, (uint8 *) VARDATA(state));
	PG_RETURN_BYTEA_P(state);
}

/*
 * synclog.hash_combine(a bytea, b bytea) returns bytea
 *
 * The hash of the union of two disjoint sets of items; also the combine
 * function of both state_hash aggregates.
 *
 * Touches no table and takes no locks.
 */
Datum
synclog_hash_combine(PG_FUNCTION_ARGS)
{
	slc_hash	a,
				b;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("hashes to combine must not be NULL")));
	sl_bytea_to_hash(PG_GETARG_BYTEA_PP(0), &a);
	sl_bytea_to_hash(PG_GETARG_BYTEA_PP(1), &b);
	slc_hash_combine(&a, &b);
	PG_RETURN_BYTEA_P(sl_hash_to_bytea(&a));
}

/*
 * synclog.hash_info(hash bytea, OUT algorithm integer, OUT sum text, OUT item_count bigint, OUT item_bytes bigint) returns record
 *
 * The fields of a serialized hash: its algorithm, the 128-bit sum in hex
 * (high half first) and the count and total size of the items hashed.
 *
 * Touches no table and takes no locks.
 */
Datum
synclog_hash_info(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	slc_hash	h;
	Datum		values[4];
	bool		nulls[4] = {false, false, false, false};
	char		sum[33];

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("hash must not be NULL")));
	sl_bytea_to_hash(PG_GETARG_BYTEA_PP(0), &h);
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	snprintf(sum, sizeof(sum), "%016llx%016llx",
			 (unsigned long long) h.sum_hi, (unsigned long long) h.sum_lo);
	values[0] = Int32GetDatum(SLC_HASH_ALGO_XXH3SUM);
	values[1] = CStringGetTextDatum(sum);
	values[2] = Int64GetDatum((int64) h.count);
	values[3] = Int64GetDatum((int64) h.bytes);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls)));
}
