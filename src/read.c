/*
 * read.c
 *
 * Serving a log to clients: the entries of one log after a given LSN, and
 * the end-log marker once a reader reaches the end of a sealed log.
 *
 * Owns: synclog.read.
 * Must never: return an entry outside the log's range (base_lsn, end_lsn],
 * or mix moments: every lookup of one call runs in the caller's snapshot,
 * so a rotation that commits mid-call cannot make a log look longer than
 * it is.
 */
#include "postgres.h"

#include "access/detoast.h"
#include "catalog/pg_type_d.h"
#include "funcapi.h"
#include "utils/builtins.h"

#include "synclog.h"

PG_FUNCTION_INFO_V1(synclog_read);

#define READ_NCOLS 7

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
	text	   *doc = sl_arg_doc(fcinfo, 0);
	text	   *log_id = sl_arg_log_id(fcinfo, 1);
	int64		after = sl_arg_lsn(fcinfo, 2, "after_lsn");
	int32		max_entries = sl_arg_positive_int(fcinfo, 3, "max_entries");
	int32		max_bytes = sl_arg_positive_int(fcinfo, 4, "max_bytes");
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	static SPIPlanPtr plan;
	SlDoc		d;
	SlLog		l;
	int64		end;
	bool		sealed;
	int64		last = after;
	int64		bytes = 0;
	Datum		kind_delta = CStringGetTextDatum("delta");

	InitMaterializedSRF(fcinfo, 0);
	sl_spi_begin();
	sl_require_doc(doc, false);
	sl_find_doc(doc, &d, true);
	sl_find_log(doc, &d, log_id, &l, false, true);
	sealed = l.end_lsn >= 0;
	end = sealed ? l.end_lsn : d.head_lsn;

	sl_check_position(&l, end, after, "after_lsn");

	if (after < end)
	{
		Oid			types[4] = {INT8OID, INT8OID, INT8OID, INT8OID};
		Datum		args[4] = {Int64GetDatum(d.doc_id), Int64GetDatum(after),
							   Int64GetDatum(end), Int64GetDatum(max_entries)};
		Portal		portal;
		bool		full = false;
		int64		sent = 0;
		int64		prev_bytes = after > l.base_lsn ? log_bytes_at(d.doc_id, after) : 0;

		/*
		 * Stream through a cursor: the tuplestore spills to disk past
		 * work_mem, so a page of any size costs one batch of memory.
		 */
		portal = sl_cursor(&plan,
						   "SELECT lsn, delta, client_id, client_seq, log_bytes FROM synclog.entry "
						   "WHERE doc_id = $1 AND lsn > $2 AND lsn <= $3 "
						   "ORDER BY lsn LIMIT $4",
						   4, types, args, NULL, true);
		while (!full)
		{
			uint64		n;

			SPI_cursor_fetch(portal, true, SL_FETCH_BATCH);
			n = SPI_processed;
			if (n == 0)
				break;
			for (uint64 i = 0; i < n; i++)
			{
				Datum		values[READ_NCOLS];
				bool		nulls[READ_NCOLS] = {false, false, false, true, true, true, true};
				Size		size;
				bytea	   *decoded;
				int64		log_bytes;
				bool		isnull;

				values[0] = sl_col(i, 1, &nulls[0]);
				if (DatumGetInt64(values[0]) != last + 1)
					ereport(ERROR,
							(errcode(ERRCODE_DATA_CORRUPTED),
							 errmsg("missing entry in log \"%s\"", l.log_id),
							 errdetail("The log has no entry at LSN " INT64_FORMAT ".", last + 1)));
				values[2] = sl_col(i, 2, &nulls[2]);
				/*
				 * Version 1 readers get version 1 bytes (delta_store.c); a
				 * decoded copy goes once the tuplestore has its own.
				 */
				log_bytes = DatumGetInt64(sl_col(i, 5, &isnull));
				decoded = sl_read_stored_v1(values[2],
											prev_bytes < 0 ? -1 : log_bytes - prev_bytes,
											d.doc_id, last + 1);
				prev_bytes = log_bytes;
				if (decoded != NULL)
					values[2] = PointerGetDatum(decoded);
				size = toast_raw_datum_size(values[2]);
				/* Always make progress: the first entry goes out whatever its size. */
				if (sent > 0 && bytes + (int64) size > max_bytes)
				{
					full = true;
					break;
				}
				bytes += size;
				values[1] = kind_delta;
				values[3] = sl_col(i, 3, &nulls[3]);
				values[4] = sl_col(i, 4, &nulls[4]);
				values[5] = values[6] = (Datum) 0;
				tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
				if (decoded != NULL)
					pfree(decoded);
				last = DatumGetInt64(values[0]);
				sent++;
			}
			SPI_freetuptable(SPI_tuptable);
		}
		SPI_cursor_close(portal);
	}

	if (sealed && last == end)
	{
		Datum		values[READ_NCOLS];
		bool		nulls[READ_NCOLS] = {false, false, true, true, true, false, false};

		values[0] = Int64GetDatum(end);
		values[1] = CStringGetTextDatum("end");
		values[2] = values[3] = values[4] = (Datum) 0;
		values[5] = CStringGetTextDatum(l.next_log_id);
		values[6] = PointerGetDatum(l.end_hash);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	sl_spi_end();
	return (Datum) 0;
}
