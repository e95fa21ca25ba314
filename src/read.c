/*
 * read.c
 *
 * Serving a log to clients: the entries of one log after a position, and
 * the end-log marker once a reader reaches the end of a sealed log; in
 * protocol version 1 (synclog.read) and version 2 (synclog.read2, which
 * first verifies the position's chain value and pages by whole groups:
 * PROTOCOL.md sections 3 and 3a).
 *
 * Owns: synclog.read, synclog.read2.
 * Must never: return an entry outside the log's range (base_lsn, end_lsn];
 * serve a version 2 page to a position whose chain value differs from the
 * server's (SL006), or end one inside a group (the entries one transaction
 * appended: a client applies them all or none); or mix moments: every
 * lookup of one call runs in the caller's snapshot, so a rotation that
 * commits mid-call cannot make a log look longer than it is, and the
 * newest entry it sees always ends a group (a transaction's entries become
 * visible together, at its commit).
 */
#include "postgres.h"

#include "access/detoast.h"
#include "catalog/pg_type_d.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/datum.h"

#include "synclog.h"

PG_FUNCTION_INFO_V1(synclog_read);
PG_FUNCTION_INFO_V1(synclog_read2);

/*
 * Result columns.  Version 1: lsn, kind, delta, client_id, client_seq,
 * next_log_id, snapshot_hash.  Version 2 adds chain, group_lsn and
 * group_end before next_log_id.
 */
#define READ_MAX_NCOLS 10

typedef struct ReadPage
{
	ReturnSetInfo *rsinfo;
	bool		v2;
	int			col_next;		/* where next_log_id goes */
	/* version 2: an entry row held back until the next says if it ends a group */
	bool		held;
	Datum		values[READ_MAX_NCOLS];
	bool		nulls[READ_MAX_NCOLS];
	bytea	   *decoded;		/* the held row's delta, decompressed here */
	int			accept;			/* codecs the reader takes (sl_parse_accept) */
} ReadPage;

static void
put_row(ReadPage *pg, bool group_end)
{
	if (!pg->held)
		return;
	if (pg->v2)
	{
		pg->values[7] = BoolGetDatum(group_end);
		pg->nulls[7] = false;
	}
	tuplestore_putvalues(pg->rsinfo->setResult, pg->rsinfo->setDesc,
						 pg->values, pg->nulls);
	pg->held = false;
	if (pg->decoded != NULL)
		pfree(pg->decoded);
	pg->decoded = NULL;
}

static int64 log_bytes_at(int64 doc_id, int64 lsn);

static void
missing_entry(const SlLog *l, int64 lsn)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("missing entry in log \"%s\"", l->log_id),
			 errdetail("The log has no entry at LSN " INT64_FORMAT ".", lsn)));
}

/*
 * Put the entries of (after, end] on the page; returns the last LSN put.
 * Version 1 stops at max_entries (a LIMIT) or before the entry that would
 * pass max_bytes; version 2 stops at the first group start after either
 * limit was reached.  The first entry always goes out, whatever its size.
 */
static int64
put_entries(ReadPage *pg, int64 doc_id, const SlLog *l, int64 after, int64 end,
			int32 max_entries, int32 max_bytes)
{
	static SPIPlanPtr plan_v1;
	static SPIPlanPtr plan_v2;
	Oid			types[4] = {INT8OID, INT8OID, INT8OID, INT8OID};
	Datum		args[4] = {Int64GetDatum(doc_id), Int64GetDatum(after),
						   Int64GetDatum(end), Int64GetDatum(max_entries)};
	Portal		portal;
	bool		full = false;
	bool		stop = false;
	int64		sent = 0;
	int64		bytes = 0;
	int64		last = after;
	Datum		kind_delta = CStringGetTextDatum("delta");
	int			col_bytes = pg->v2 ? 7 : 5;
	/* log_bytes counts version 1 bytes: the difference is a delta's v1 size */
	int64		prev_bytes = after > l->base_lsn ? log_bytes_at(doc_id, after) : 0;

	/*
	 * Stream through a cursor: the tuplestore spills to disk past work_mem,
	 * so a page of any size costs one batch of memory.  Version 2 has no
	 * LIMIT: where its page ends depends on the groups.
	 */
	if (pg->v2)
		portal = sl_cursor(&plan_v2,
						   "SELECT lsn, delta, client_id, client_seq, chain, "
						   "coalesce(group_lsn, lsn), log_bytes "
						   "FROM synclog.entry "
						   "WHERE doc_id = $1 AND lsn > $2 AND lsn <= $3 ORDER BY lsn",
						   3, types, args, NULL, true);
	else
		portal = sl_cursor(&plan_v1,
						   "SELECT lsn, delta, client_id, client_seq, log_bytes FROM synclog.entry "
						   "WHERE doc_id = $1 AND lsn > $2 AND lsn <= $3 "
						   "ORDER BY lsn LIMIT $4",
						   4, types, args, NULL, true);
	while (!stop)
	{
		uint64		n;

		SPI_cursor_fetch(portal, true, SL_FETCH_BATCH);
		n = SPI_processed;
		if (n == 0)
			break;
		for (uint64 i = 0; i < n; i++)
		{
			bool		isnull;
			int64		lsn = DatumGetInt64(sl_col(i, 1, &isnull));
			Datum		delta = sl_col(i, 2, &isnull);
			int64		log_bytes = DatumGetInt64(sl_col(i, col_bytes, &isnull));
			bytea	   *decoded;
			Size		size;
			bool		starts_group = true;

			if (lsn != last + 1)
				missing_entry(l, last + 1);
			/*
			 * Readers get version 1 bytes (delta_store.c), unless they
			 * accept the codec a delta is stored with: then the stored
			 * bytes, as they are, at no cost.
			 */
			if (pg->accept != 0)
			{
				bytea	   *stored = DatumGetByteaPP(delta);
				bytea	   *served = sl_delta_for_reader(stored, pg->accept, doc_id, lsn);

				decoded = served != stored ? served : NULL;
				delta = PointerGetDatum(served);
			}
			else
				decoded = sl_read_stored_v1(delta, prev_bytes < 0 ? -1 : log_bytes - prev_bytes,
											doc_id, lsn);
			prev_bytes = log_bytes;
			if (decoded != NULL)
				delta = PointerGetDatum(decoded);
			size = toast_raw_datum_size(delta);
			if (pg->v2)
			{
				int64		group_lsn = DatumGetInt64(sl_col(i, 6, &isnull));

				starts_group = group_lsn == lsn;
				if (group_lsn > lsn || (!starts_group && group_lsn <= after))
					ereport(ERROR,
							(errcode(ERRCODE_DATA_CORRUPTED),
							 errmsg("malformed group in log \"%s\"", l->log_id),
							 errdetail("The entry at LSN " INT64_FORMAT " names LSN " INT64_FORMAT " as its group's first entry.",
									   lsn, group_lsn)));
				/* The previous entry ended its group iff this one starts one. */
				put_row(pg, starts_group);
				pg->values[5] = sl_col(i, 5, &pg->nulls[5]);
				pg->values[6] = Int64GetDatum(group_lsn);
				pg->nulls[6] = false;
			}
			if (starts_group &&
				(full || (sent > 0 && bytes + (int64) size > max_bytes)))
			{
				if (decoded != NULL)
					pfree(decoded);
				stop = true;
				break;
			}
			bytes += size;
			pg->values[0] = Int64GetDatum(lsn);
			pg->nulls[0] = false;
			pg->values[1] = kind_delta;
			pg->nulls[1] = false;
			pg->values[2] = delta;
			pg->nulls[2] = false;
			pg->decoded = decoded;
			pg->values[3] = sl_col(i, 3, &pg->nulls[3]);
			pg->values[4] = sl_col(i, 4, &pg->nulls[4]);
			pg->nulls[pg->col_next] = pg->nulls[pg->col_next + 1] = true;
			pg->held = true;
			if (!pg->v2)
				put_row(pg, true);
			last = lsn;
			if (++sent >= max_entries || bytes >= max_bytes)
				full = true;
		}
		/* A held row points into the batch: copy it out before freeing. */
		if (pg->held)
		{
			for (int c = 2; c <= 5; c++)
				if (c != 4 && !pg->nulls[c] && !(c == 2 && pg->decoded != NULL))
					pg->values[c] = datumCopy(pg->values[c], false, -1);
		}
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);
	if (pg->v2 && !stop && last != end)
		missing_entry(l, last + 1);
	/* The snapshot's newest entry, and a sealed log's last, end their groups. */
	put_row(pg, true);
	return last;
}

/* The shared body of synclog.read and synclog.read2. */
static Datum
serve(FunctionCallInfo fcinfo, bool v2)
{
	text	   *doc = sl_arg_doc(fcinfo, 0);
	text	   *log_id = sl_arg_log_id(fcinfo, 1);
	int64		after = sl_arg_lsn(fcinfo, 2, "after_lsn");
	int			argno = v2 ? 4 : 3;
	bytea	   *after_chain = v2 ? sl_arg_chain(fcinfo, 3) : NULL;
	int32		max_entries = sl_arg_positive_int(fcinfo, argno, "max_entries");
	int32		max_bytes = sl_arg_positive_int(fcinfo, argno + 1, "max_bytes");
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	SlDoc		d;
	SlLog		l;
	int64		end;
	int64		last = after;
	ReadPage		pg;

	InitMaterializedSRF(fcinfo, 0);
	memset(&pg, 0, sizeof(pg));
	pg.rsinfo = rsinfo;
	pg.v2 = v2;
	pg.col_next = v2 ? 8 : 5;
	if (v2 && PG_NARGS() > 6 && !PG_ARGISNULL(6))
		pg.accept = sl_parse_accept(PG_GETARG_ARRAYTYPE_P(6));

	sl_spi_begin();
	sl_find_readable_log(doc, log_id, &d, &l);
	end = l.end_lsn >= 0 ? l.end_lsn : d.head_lsn;

	sl_check_position(&l, end, after, "after_lsn");
	if (v2)
		sl_check_chain(doc, d.doc_id, &l, after, after_chain, true);

	if (after < end)
		last = put_entries(&pg, d.doc_id, &l, after, end, max_entries, max_bytes);

	if (l.end_lsn >= 0 && last == end)
	{
		Datum	   *values = pg.values;
		bool	   *nulls = pg.nulls;

		for (int c = 0; c < READ_MAX_NCOLS; c++)
			nulls[c] = true;
		values[0] = Int64GetDatum(end);
		values[1] = CStringGetTextDatum("end");
		nulls[0] = nulls[1] = false;
		if (v2)
		{
			if (l.end_chain == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("sealed log \"%s\" has no end chain value", l.log_id)));
			values[5] = PointerGetDatum(l.end_chain);
			nulls[5] = false;
		}
		values[pg.col_next] = CStringGetTextDatum(l.next_log_id);
		values[pg.col_next + 1] = PointerGetDatum(l.end_hash);
		nulls[pg.col_next] = nulls[pg.col_next + 1] = false;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	sl_spi_end();
	return (Datum) 0;
}

/*
 * The log_bytes of the document's entry at lsn, -1 if there is none: the
 * page's first entry's version 1 size is its log_bytes less this.
 */
static int64
log_bytes_at(int64 doc_id, int64 lsn)
{
	static SPIPlanPtr plan;
	Oid			types[2] = {INT8OID, INT8OID};
	Datum		args[2] = {Int64GetDatum(doc_id), Int64GetDatum(lsn)};
	bool		isnull;

	sl_exec(&plan, "SELECT log_bytes FROM synclog.entry WHERE doc_id = $1 AND lsn = $2",
			2, types, args, NULL, true, 1);
	if (SPI_processed == 0)
		return -1;
	return DatumGetInt64(sl_col(0, 1, &isnull));
}

/*
 * synclog.read(doc text, log_id text, after_lsn bigint, max_entries integer, max_bytes integer)
 *   returns setof (lsn bigint, kind text, delta bytea, client_id text, client_seq bigint,
 *                  next_log_id text, snapshot_hash bytea)
 *
 * Returns the entries of log log_id after after_lsn, oldest first, at most
 * max_entries of them and no more than max_bytes of deltas (but always at
 * least one), followed by the end-log marker (kind 'end', with the next
 * log's id and the hash of its snapshot) once the page reaches the end of
 * a sealed log.  Every lookup runs in the caller's snapshot.
 *
 * Takes AccessShareLock on synclog.doc, synclog.log and synclog.entry, and
 * on synclog.doc_grant when the caller is a role whose confinement this
 * backend has not cached yet (see access.c); no row locks.
 */
Datum
synclog_read(PG_FUNCTION_ARGS)
{
	return serve(fcinfo, false);
}

/*
 * synclog.read2(doc text, log_id text, after_lsn bigint, after_chain bytea,
 *               max_entries integer, max_bytes integer, accept text[])
 *   returns setof (lsn bigint, kind text, delta bytea, client_id text,
 *                  client_seq bigint, chain bytea, group_lsn bigint,
 *                  group_end boolean, next_log_id text, snapshot_hash bytea)
 *
 * Checks that after_chain is the server's chain value at after_lsn (SL006
 * if not), then returns the entries of log log_id after after_lsn, oldest
 * first, each with its chain value, the LSN of its group's first entry and
 * whether it is its group's last: at most max_entries of them and no more
 * than max_bytes of deltas, except that the first group always goes out
 * whole and a page never ends inside a group (so it exceeds both limits by
 * less than one group, which "synclog.max_group_size" bounds).  Followed
 * by the end-log marker (kind 'end', with the chain value at the seal, the
 * next log's id and the hash of its snapshot) once the page reaches the
 * end of a sealed log.  Every lookup runs in the caller's snapshot.  With
 * accept listing a codec (PROTOCOL.md section 10: 'zstd'), a delta stored
 * compressed with it is served as stored (version 2); every other delta in
 * the version 1 encoding.  22023 for a codec this server does not know.
 *
 * Takes the locks of synclog.read.
 */
Datum
synclog_read2(PG_FUNCTION_ARGS)
{
	return serve(fcinfo, true);
}
