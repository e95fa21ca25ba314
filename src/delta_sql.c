/*
 * delta_sql.c
 *
 * The SQL face of the delta codec: turning (keys[], vals[]) into the binary
 * encoding, checking deltas that clients send already encoded, and
 * decoding a delta into rows.
 *
 * Owns: synclog.encode_delta, synclog.decode_delta, and the size limits
 * (synclog.max_delta_size, synclog.max_delta_changes) applied to every
 * delta before it is stored.
 * Must never: implement the encoding itself; the byte layout lives only in
 * src/core so the server and clients cannot drift apart.
 */
#include "postgres.h"

#include "catalog/pg_type_d.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "synclog.h"
#include "synclog_zip.h"

PG_FUNCTION_INFO_V1(synclog_encode_delta);
PG_FUNCTION_INFO_V1(synclog_decode_delta);

/* Hex of the first bytes of a key, for error messages. */
static char *
key_for_message(const uint8 *key, uint32 klen)
{
	StringInfoData s;
	uint32		shown = Min(klen, 32);

	initStringInfo(&s);
	appendStringInfoString(&s, "\\x");
	for (uint32 i = 0; i < shown; i++)
		appendStringInfo(&s, "%02x", key[i]);
	if (shown < klen)
		appendStringInfoString(&s, "...");
	return s.data;
}

/* Reject a delta whose changes[0..n) repeat a key (22023). */
static void
check_duplicates(const slc_change *changes, uint32 n)
{
	uint32	   *scratch;
	uint32		dup;

	if (n < 2)
		return;
	scratch = palloc(sizeof(uint32) * n);
	if (slc_delta_find_duplicate(changes, n, scratch, &dup) != SLC_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("duplicate key in delta"),
				 errdetail("Key %s appears more than once; keys must be unique within one delta.",
						   key_for_message(changes[dup].key, changes[dup].klen))));
	pfree(scratch);
}

/* The "synclog.max_delta_changes" limit (54000). */
static void
check_change_count(int64 n)
{
	if (n > synclog_max_delta_changes)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("delta has too many changes"),
				 errdetail("The delta has " INT64_FORMAT " changes; \"synclog.max_delta_changes\" is %d.",
						   n, synclog_max_delta_changes)));
}

/* The "synclog.max_delta_size" limit on the encoded size (54000). */
static void
check_delta_size(int64 len)
{
	if (len > (int64) synclog_max_delta_kb * 1024)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("delta is too large"),
				 errdetail("The delta is " INT64_FORMAT " bytes; \"synclog.max_delta_size\" is %d kB.",
						   len, synclog_max_delta_kb)));
}

/* The elements of a bytea[] argument; only one-dimensional arrays are taken. */
static void
deconstruct_bytea_array(ArrayType *arr, const char *name,
						Datum **elems, bool **nulls, int *n)
{
	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("\"%s\" must be a one-dimensional array", name)));
	deconstruct_array(arr, BYTEAOID, -1, false, TYPALIGN_INT, elems, nulls, n);
}

/* Encode keys[] and vals[] as a delta, raising the SQL errors of an append. */
bytea *
sl_build_delta(ArrayType *keys, ArrayType *vals)
{
	Datum	   *kd,
			   *vd;
	bool	   *kn,
			   *vn;
	int			nk,
				nv;
	slc_change *changes;
	size_t		size;
	bytea	   *out;

	deconstruct_bytea_array(keys, "keys", &kd, &kn, &nk);
	deconstruct_bytea_array(vals, "vals", &vd, &vn, &nv);
	if (nk != nv)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("keys and vals must have the same number of elements"),
				 errdetail_plural("The keys array has %d element and the vals array has %d.",
								  "The keys array has %d elements and the vals array has %d.",
								  nk, nk, nv),
				 errhint("Each key needs exactly one value; a NULL value deletes the key.")));
	check_change_count(nk);

	changes = palloc0(sizeof(slc_change) * Max(nk, 1));
	for (int i = 0; i < nk; i++)
	{
		bytea	   *k;

		if (kn[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("keys must not contain nulls"),
					 errdetail("Element %d of keys is NULL.", i + 1)));
		k = DatumGetByteaPP(kd[i]);
		if (VARSIZE_ANY_EXHDR(k) > SLC_KEY_MAX)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("key is too long"),
					 errdetail("Element %d of keys is %d bytes; keys are at most %d bytes.",
							   i + 1, (int) VARSIZE_ANY_EXHDR(k), SLC_KEY_MAX)));
		changes[i].key = (const uint8 *) VARDATA_ANY(k);
		changes[i].klen = VARSIZE_ANY_EXHDR(k);
		if (vn[i])
			changes[i].is_delete = 1;
		else
		{
			bytea	   *v = DatumGetByteaPP(vd[i]);

			changes[i].val = (const uint8 *) VARDATA_ANY(v);
			changes[i].vlen = VARSIZE_ANY_EXHDR(v);
		}
	}
	check_duplicates(changes, nk);

	size = slc_delta_encoded_size(changes, nk);
	check_delta_size(size);
	out = palloc(VARHDRSZ + size);
	SET_VARSIZE(out, VARHDRSZ + size);
	slc_delta_encode(changes, nk, (uint8 *) VARDATA(out));
	return out;
}

/*
 * Full check of a client-encoded delta: size, structure, change count and
 * key uniqueness.  On return the delta is safe to store and to fold.
 *
 * The array of changes is sized by the reader's room, not by the count the
 * header announces: the count is the sender's word, and a 5-byte delta
 * announcing 10 million changes would otherwise cost 300 MB before the
 * decoder finds it truncated.  The room is the count capped by the bytes
 * that remain (each change takes at least SLC_CHANGE_MIN_LEN), so memory
 * follows the delta's size; the reader returns no more changes than that.
 */
static slc_change *
parse_delta(bytea *delta, uint32 *n_out)
{
	const uint8 *buf = (const uint8 *) VARDATA_ANY(delta);
	size_t		len = VARSIZE_ANY_EXHDR(delta);
	slc_delta_reader r;
	slc_status	st;
	size_t		off = 0;
	slc_change *changes;
	uint32		n = 0;
	int			more = 1;

	check_delta_size(len);
	st = slc_delta_reader_init(&r, buf, len, (uint32) synclog_max_delta_changes);
	if (st == SLC_ERR_TOO_MANY)
		check_change_count((int64) buf[1] | ((int64) buf[2] << 8) |
						   ((int64) buf[3] << 16) | ((int64) buf[4] << 24));
	if (st != SLC_OK)
		sl_raise_core_error(st, 0);

	changes = palloc0(sizeof(slc_change) * Max(slc_delta_reader_room(&r), 1));
	for (;;)
	{
		st = slc_delta_next(&r, &changes[n], &more, &off);
		if (st != SLC_OK)
			sl_raise_core_error(st, off);
		if (!more)
			break;
		n++;
	}
	check_duplicates(changes, n);
	*n_out = n;
	return changes;
}

/*
 * Check a client-encoded delta before it is stored (see parse_delta).  An
 * append takes version 1 only: the server compresses what it stores.
 */
void
sl_validate_delta(bytea *delta)
{
	uint32		n;

	if (VARSIZE_ANY_EXHDR(delta) > 0 &&
		*(const uint8 *) VARDATA_ANY(delta) == SLC_DELTA_VERSION_ZIP)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("compressed deltas cannot be appended"),
				 errdetail("The delta is version %d; appends take version %d deltas.",
						   SLC_DELTA_VERSION_ZIP, SLC_DELTA_VERSION),
				 errhint("Append the uncompressed delta; the server stores it compressed when that pays (\"synclog.compression\").")));
	pfree(parse_delta(delta, &n));
}

/*
 * synclog.encode_delta(keys bytea[], vals bytea[]) returns bytea
 *
 * Encodes keys[i] -> vals[i] (a NULL value deletes the key) as one binary
 * delta, in array order, under the same checks an append makes: key
 * length, unique keys, "synclog.max_delta_changes" and
 * "synclog.max_delta_size".
 *
 * Touches no table and takes no locks.
 */
Datum
synclog_encode_delta(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("keys and vals must not be NULL")));
	PG_RETURN_BYTEA_P(sl_build_delta(PG_GETARG_ARRAYTYPE_P(0),
									 PG_GETARG_ARRAYTYPE_P(1)));
}

/*
 * synclog.decode_delta(delta bytea, OUT key bytea, OUT value bytea) returns setof record
 *
 * Checks a binary delta as synclog.append_delta would and returns its
 * changes in encoded order, one row per key (value NULL for a deletion).
 * A version 2 (compressed) delta is decoded first: its raw_len must be
 * within "synclog.max_delta_size", and the delta inside is checked the same
 * way.
 *
 * Touches no table and takes no locks.
 */
Datum
synclog_decode_delta(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	bytea	   *delta;
	slc_change *changes;
	uint32		n;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("delta must not be NULL")));
	/* A compressed delta is checked and decoded first (delta_store.c). */
	delta = sl_user_delta_v1(PG_GETARG_BYTEA_PP(0));
	changes = parse_delta(delta, &n);

	InitMaterializedSRF(fcinfo, 0);
	for (uint32 i = 0; i < n; i++)
	{
		Datum		values[2];
		bool		nulls[2] = {false, false};
		bytea	   *k = palloc(VARHDRSZ + changes[i].klen);

		SET_VARSIZE(k, VARHDRSZ + changes[i].klen);
		memcpy(VARDATA(k), changes[i].key, changes[i].klen);
		values[0] = PointerGetDatum(k);
		if (changes[i].is_delete)
		{
			nulls[1] = true;
			values[1] = (Datum) 0;
		}
		else
		{
			bytea	   *v = palloc(VARHDRSZ + changes[i].vlen);

			SET_VARSIZE(v, VARHDRSZ + changes[i].vlen);
			memcpy(VARDATA(v), changes[i].val, changes[i].vlen);
			values[1] = PointerGetDatum(v);
		}
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		pfree(k);
		if (!nulls[1])
			pfree(DatumGetPointer(values[1]));
	}
	return (Datum) 0;
}
