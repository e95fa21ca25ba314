/*
 * kv_values.h
 *
 * The reader of synclog.kv's out-of-line values that serves snapshot pages
 * (src/kv_values.c); private to src/snapshot.c and src/kv_values.c.
 */
#ifndef SYNCLOG_KV_VALUES_H
#define SYNCLOG_KV_VALUES_H

#include "access/relscan.h"
#include "storage/buf.h"
#include "storage/bufmgr.h"
#include "utils/rel.h"
#include "utils/snapshot.h"

#define VALUE_STREAMS	8		/* runs of values read at once */
#define VALUE_RECENT	8		/* values read alone that a run may start from */

typedef struct ValueStream
{
	IndexScanDesc scan;
	Buffer		buf;			/* the TOAST heap page it read last, pinned */
	ScanDirection dir;			/* which way the scan runs */
	bool		open;			/* it runs on past one value (else: that one only) */
	bool		positioned;		/* the scan is just past the chunks of last */
	bool		pending;		/* its current entry is the next one to read */
	Oid			last;			/* the last value read whole */
	uint64		used;			/* when it last read a value (LRU) */
} ValueStream;

typedef struct ValueReader
{
	Relation	toastrel;		/* NULL: kv has no TOAST table */
	Relation   *toastidxs;
	int			num_indexes;
	int			valid_index;
	SnapshotData toast_snapshot;
	BufferAccessStrategy strategy;	/* a ring for TOAST pages, or NULL */
	bool		scan;			/* false: values are not read here */
	ValueStream alone;			/* the scan for one value */
	ValueStream streams[VALUE_STREAMS];
	Oid			recent[VALUE_RECENT];	/* values read alone last (a ring) */
	int			recent_next;
	uint64		clock;
	MemoryContext mcxt;			/* where the scans live (rows are read in a shorter one) */
} ValueReader;

extern void sl_value_reader_begin(ValueReader *vr, Relation kv, bool scan, bool bulk);
extern void sl_value_reader_end(ValueReader *vr);
extern bool sl_value_reader_takes(ValueReader *vr, struct varlena *ptr, bool *compressed);
extern void sl_value_reader_read(ValueReader *vr, struct varlena *ptr, char *dest);
extern struct varlena *sl_value_reader_fetch(ValueReader *vr, struct varlena *ptr,
											 bool compressed);

#endif							/* SYNCLOG_KV_VALUES_H */
