/*
 * delta_store.c
 *
 * Compressed deltas in the server: the form an appended delta is stored
 * in, and the version 1 bytes every reader that did not ask for the
 * compressed form gets back (PROTOCOL.md section 10, "Version 2
 * (compressed) deltas"; the codec itself is src/core/synclog_zip.c).
 *
 * Owns: sl_delta_to_store (the append's choice: version 2 when it pays,
 * under "synclog.compression" and "synclog.compression_min_size"),
 * sl_stored_delta_v1 / sl_user_delta_v1 (bounded decoding, with the
 * SQLSTATE of who is asking), sl_delta_for_reader and
 * sl_parse_accept (what a version 2 reader gets), and the backend's codec
 * contexts.
 * Must never: hand a compressed delta to a reader that did not list its
 * codec (synclog.read, the fold, collection: every one of them sees
 * version 1 bytes), allocate more than a delta's announced raw_len to
 * decode it, or compress a delta that is still to be validated or chained:
 * the chain and the hash are over the version 1 bytes.
 */
#include "postgres.h"

#include "access/detoast.h"
#include "catalog/pg_type_d.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "synclog.h"
#include "synclog_zip.h"

/*
 * A stored delta may announce up to SLC_ZIP_RAW_MAX bytes, the largest
 * "synclog.max_delta_size" there can be (256 MB), and not just the current
 * setting: lowering it must not make deltas appended before unreadable.
 */

/* The backend's codec contexts (malloc'd by libzstd, kept for reuse). */
static slc_zip *zip;

static slc_zip *
backend_zip(void)
{
	if (zip == NULL && (zip = slc_zip_new()) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	return zip;
}

/*
 * The SQLSTATE of a problem with a delta: envelope problems and structure
 * are invalid_binary_representation, sizes beyond the protocol's limits
 * program_limit_exceeded (as for version 1 deltas, args.c).
 */
static int
delta_errcode(slc_status st)
{
	switch (st)
	{
		case SLC_ERR_KEY_TOO_LONG:
		case SLC_ERR_VALUE_TOO_LONG:
		case SLC_ERR_TOO_MANY:
			return ERRCODE_PROGRAM_LIMIT_EXCEEDED;
		case SLC_ERR_NOMEM:
			return ERRCODE_OUT_OF_MEMORY;
		default:
			return ERRCODE_INVALID_BINARY_REPRESENTATION;
	}
}

/*
 * Decode a version 2 delta into a new bytea of exactly its raw_len bytes.
 * On a problem: a stored delta (doc_id >= 0) is corruption (XX001, naming
 * the entry); any other delta gets delta_errcode.
 */
static bytea *
decode_zip(bytea *delta, size_t max_raw, uint32 max_changes,
		   int64 doc_id, int64 lsn)
{
	const uint8 *buf = (const uint8 *) VARDATA_ANY(delta);
	size_t		len = VARSIZE_ANY_EXHDR(delta);
	uint8		codec;
	uint32		raw_len = 0;
	size_t		off = 0;
	slc_status	st;
	bytea	   *out = NULL;

	st = slc_zip_header(buf, len, max_raw, &codec, &raw_len, &off);
	if (st == SLC_OK)
	{
		out = palloc(VARHDRSZ + raw_len);
		SET_VARSIZE(out, VARHDRSZ + raw_len);
		st = slc_zip_decode(backend_zip(), buf, len, (uint8 *) VARDATA(out),
							raw_len, max_changes, &off);
	}
	if (st == SLC_OK)
		return out;

	if (st == SLC_ERR_NOMEM)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory"),
				 errdetail("Failed while decompressing a delta of %u bytes.", raw_len)));
	if (doc_id >= 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("malformed stored delta: %s", slc_status_message(st)),
				 errdetail("The entry is at LSN " INT64_FORMAT " of the document with internal id %lld; it is a compressed delta of %zu bytes.",
						   lsn, (long long) doc_id, len)));
	if (st == SLC_ERR_RAW_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("malformed compressed delta: %s", slc_status_message(st)),
				 errdetail("The delta announces %u uncompressed bytes; the limit is %zu bytes.",
						   len >= SLC_ZIP_HEADER_LEN ?
						   (uint32) (buf[2] | (buf[3] << 8) | (buf[4] << 16) | ((uint32) buf[5] << 24)) : 0,
						   max_raw)));
	ereport(ERROR,
			(errcode(delta_errcode(st)),
			 errmsg("malformed compressed delta: %s", slc_status_message(st)),
			 out != NULL && st != SLC_ERR_COMPRESSED ?
			 errdetail("The problem is at byte %zu of the version 1 delta inside.", off) :
			 errdetail("The problem is at byte %zu of the compressed delta.", off)));
	return NULL;				/* keep compiler quiet */
}

/*
 * The form to store an appended delta in: the delta itself, validated
 * version 1, or its version 2 envelope when compression is on, the delta
 * has at least "synclog.compression_min_size" bytes, and the envelope is
 * smaller (slc_zip_encode).  Called by the append after it validated the
 * delta and computed from it what is defined over version 1 bytes.
 */
bytea *
sl_delta_to_store(bytea *v1)
{
	size_t		len = VARSIZE_ANY_EXHDR(v1);
	bytea	   *out;
	size_t		n;

	if (!synclog_compression || len < (size_t) synclog_compression_min_size ||
		!slc_zip_worth_trying((const uint8 *) VARDATA_ANY(v1), len))
		return v1;
	/* Room for one byte less than the delta: only a smaller envelope pays. */
	out = palloc(VARHDRSZ + len - 1);
	n = slc_zip_encode(backend_zip(), (const uint8 *) VARDATA_ANY(v1), len,
					   (uint8 *) VARDATA(out), len - 1);
	if (n == 0)
	{
		pfree(out);
		return v1;
	}
	SET_VARSIZE(out, VARHDRSZ + n);
	return out;
}

/*
 * The stored delta of the entry at lsn of a document as version 1 bytes:
 * the delta itself unless it is version 2, which is decoded (bounded by
 * the largest raw_len a delta may have); a problem is corruption (XX001),
 * as for any malformed stored delta.
 */
bytea *
sl_stored_delta_v1(bytea *stored, int64 doc_id, int64 lsn)
{
	if (slc_delta_version((const uint8 *) VARDATA_ANY(stored),
						  VARSIZE_ANY_EXHDR(stored)) != SLC_DELTA_VERSION_ZIP)
		return stored;
	return decode_zip(stored, SLC_ZIP_RAW_MAX, UINT32_MAX, doc_id, lsn);
}

/*
 * The same for a delta a user hands in (synclog.decode_delta): raw_len
 * at most "synclog.max_delta_size" and at most
 * "synclog.max_delta_changes" changes, 22P03 on a problem.
 */
bytea *
sl_user_delta_v1(bytea *delta)
{
	if (slc_delta_version((const uint8 *) VARDATA_ANY(delta),
						  VARSIZE_ANY_EXHDR(delta)) != SLC_DELTA_VERSION_ZIP)
		return delta;
	return decode_zip(delta, (size_t) synclog_max_delta_kb * 1024,
					  (uint32) synclog_max_delta_changes, -1, 0);
}

/*
 * For synclog.read: the stored delta of the entry at lsn (a column value,
 * possibly a TOAST pointer) as version 1 bytes, or NULL when the stored
 * value is version 1 and can be sent as it is.  v1_len is the entry's
 * version 1 size from log_bytes (its log_bytes less the previous entry's;
 * -1 when not known).  A large delta is stored out of line, and fetching
 * it just to look at its first byte would cost a version 1 reader a TOAST
 * lookup per entry; the size tells without a fetch: an entry stored in
 * fewer bytes than its version 1 size is compressed, one stored in as many
 * is not.  That holds because log_bytes counts version 1 bytes (append.c
 * sums the size of the validated delta, before sl_delta_to_store), which
 * must stay so.  A value stored inline is checked by its first byte anyway.
 */
bytea *
sl_read_stored_v1(Datum stored, int64 v1_len, int64 doc_id, int64 lsn)
{
	struct varlena *p = (struct varlena *) DatumGetPointer(stored);
	bytea	   *whole;
	bytea	   *v1;

	if (!VARATT_IS_EXTERNAL(p) && !VARATT_IS_COMPRESSED(p))
		return slc_delta_version((const uint8 *) VARDATA_ANY(p),
								 VARSIZE_ANY_EXHDR(p)) == SLC_DELTA_VERSION_ZIP ?
			sl_stored_delta_v1((bytea *) p, doc_id, lsn) : NULL;
	if (v1_len >= 0 && (int64) (toast_raw_datum_size(stored) - VARHDRSZ) >= v1_len)
		return NULL;
	whole = DatumGetByteaPP(stored);
	v1 = sl_stored_delta_v1(whole, doc_id, lsn);
	if (v1 == whole)
	{
		pfree(whole);
		return NULL;
	}
	pfree(whole);
	return v1;
}

/*
 * What a version 2 reader whose accept list gave accept_mask
 * (sl_parse_accept) gets for the stored delta of the entry at lsn of a
 * document: the stored bytes when they are version 1 or compressed with a
 * codec it accepts, else the version 1 bytes (sl_stored_delta_v1: a codec
 * this server does not know is corruption, XX001, whoever reads it).
 */
bytea *
sl_delta_for_reader(bytea *stored, int accept_mask, int64 doc_id, int64 lsn)
{
	const uint8 *buf = (const uint8 *) VARDATA_ANY(stored);
	size_t		len = VARSIZE_ANY_EXHDR(stored);

	if (slc_delta_version(buf, len) != SLC_DELTA_VERSION_ZIP ||
		(len >= 2 && buf[1] < 32 &&
		 (accept_mask & SLC_CODEC_BIT(buf[1])) != 0))
		return stored;
	return sl_stored_delta_v1(stored, doc_id, lsn);
}

/*
 * The codecs a reader accepts, as a mask of SLC_CODEC_BIT: the names in
 * accept (text[]; NULL or empty: none, version 1 only).  22004 for a NULL
 * element, 22023 for a name this server does not know.
 */
int
sl_parse_accept(ArrayType *accept)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			mask = 0;

	if (accept == NULL)
		return 0;
	deconstruct_array(accept, TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
	{
		char	   *name;

		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("accept must not contain nulls")));
		name = TextDatumGetCString(elems[i]);
		if (strcmp(name, SLC_CODEC_ZSTD_NAME) == 0)
			mask |= SLC_CODEC_BIT(SLC_CODEC_ZSTD);
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unrecognized codec: \"%s\"", name),
					 errhint("The codecs this server can send are: %s.",
							 SLC_CODEC_ZSTD_NAME)));
		pfree(name);
	}
	return mask;
}
