/*
 * notify.c
 *
 * NOTIFY channels and payloads: a rotation (always) and an append (when
 * synclog.notify_append is on) are announced on a channel derived from the
 * document id, so a client LISTENs to exactly the documents it follows.
 *
 * Owns: the channel name, the JSON payloads, synclog.channel().
 * Must never: paste a document id into SQL (we call Async_Notify directly),
 * or produce a payload that can exceed NOTIFY's 8000-byte limit: ids are
 * bounded (200 bytes) and JSON escaping at most sextuples them.
 * NOTIFY is a hint, not the source of truth: everything announced here is
 * also found by reading the log.
 */
#include "postgres.h"

#include "commands/async.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/json.h"

#include <xxhash.h>

#include "synclog.h"

PG_FUNCTION_INFO_V1(synclog_channel);

/*
 * Document ids can be 200 bytes and contain anything; channel names are
 * identifiers of at most 63 bytes.  A 64-bit hash keeps them short and
 * plain; the payload carries the id, so a rare collision only costs a
 * client an ignored message.
 */
char *
sl_channel_name(const char *doc, int len)
{
	XXH64_hash_t h = XXH3_64bits(doc, len);

	return psprintf("synclog_%016llx", (unsigned long long) h);
}

static void
append_json_doc(StringInfo s, const char *doc, int doclen)
{
	char	   *d = pnstrdup(doc, doclen);

	appendStringInfoString(s, "\"doc\":");
	escape_json(s, d);
	pfree(d);
}

void
sl_notify_rotation(const char *doc, int doclen, const char *old_log,
				   const char *new_log, int64 snapshot_lsn, const uint8 *hash)
{
	StringInfoData s;

	initStringInfo(&s);
	appendStringInfoString(&s, "{\"event\":\"rotate\",");
	append_json_doc(&s, doc, doclen);
	appendStringInfo(&s, ",\"old_log\":\"%s\",\"new_log\":\"%s\",\"snapshot_lsn\":" INT64_FORMAT ",\"hash\":\"",
					 old_log, new_log, snapshot_lsn);
	for (int i = 0; i < SLC_HASH_LEN; i++)
		appendStringInfo(&s, "%02x", hash[i]);
	appendStringInfoString(&s, "\"}");
	Async_Notify(sl_channel_name(doc, doclen), s.data);
	pfree(s.data);
}

void
sl_notify_append(const char *doc, int doclen, const char *log_id, int64 lsn)
{
	StringInfoData s;

	initStringInfo(&s);
	appendStringInfoString(&s, "{\"event\":\"append\",");
	append_json_doc(&s, doc, doclen);
	appendStringInfo(&s, ",\"log\":\"%s\",\"lsn\":" INT64_FORMAT "}", log_id, lsn);
	Async_Notify(sl_channel_name(doc, doclen), s.data);
	pfree(s.data);
}

Datum
synclog_channel(PG_FUNCTION_ARGS)
{
	text	   *doc = sl_arg_doc(fcinfo, 0);

	PG_RETURN_TEXT_P(cstring_to_text(sl_channel_name(VARDATA_ANY(doc),
													 VARSIZE_ANY_EXHDR(doc))));
}
