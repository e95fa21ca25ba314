/*
 * notify.c
 *
 * NOTIFY channels and payloads: a rotation (always) and an append (when
 * synclog.notify_append is on) are announced on a channel derived from the
 * document id, so a client LISTENs to exactly the documents it follows.
 *
 * Anyone who can connect can LISTEN on any channel, and send on it with
 * pg_notify, so neither the channel nor the payload may tell anything to a
 * role that cannot read the document.  The channel is an HMAC-SHA-256 of the
 * document id under a random key of the database (synclog.channel_key),
 * which only synclog.channel() reveals, to roles that may read the
 * document; synclog.rotate_channel_key() replaces the key, so a role that
 * lost access also loses the channels it knew.  The payload names the event
 * and nothing else: a client wakes up and reads the log, so a forged
 * notification costs it one read that finds nothing new.
 *
 * Owns: the channel name, the payloads, the channel key,
 * synclog.channel(), synclog.rotate_channel_key().
 * Must never: paste a document id into SQL (we call Async_Notify directly),
 * put anything about the document into a payload, or make an append or a
 * rotation fail because the key is missing (it then sends nothing).
 * NOTIFY is a hint, not the source of truth: everything announced here is
 * also found by reading the log.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_type_d.h"
#include "commands/async.h"
#include "common/hmac.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "synclog.h"

PG_FUNCTION_INFO_V1(synclog_channel);
PG_FUNCTION_INFO_V1(synclog_rotate_channel_key);

#define CHANNEL_KEY_LEN		32
#define CHANNEL_HASH_BYTES	16		/* 32 hex digits after "synclog_" */

/* The key as last read; a write to synclog.channel_key invalidates it. */
static bool key_valid = false;
static bool key_present = false;
static uint8 channel_key[CHANNEL_KEY_LEN];
static Oid	key_relid = InvalidOid;

static void
key_changed(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == key_relid)
		key_valid = false;
}

/* Read the key with the newest snapshot; false if the table has none. */
static bool
load_key(void)
{
	static bool registered = false;
	Relation	rel;
	SysScanDesc scan;
	HeapTuple	tup;
	Snapshot	snap;

	if (key_valid)
		return key_present;
	if (!registered)
	{
		CacheRegisterRelcacheCallback(key_changed, (Datum) 0);
		registered = true;
	}
	key_relid = sl_relid("channel_key");
	key_valid = true;
	key_present = false;
	rel = table_open(key_relid, AccessShareLock);
	snap = RegisterSnapshot(GetLatestSnapshot());
	scan = systable_beginscan(rel, InvalidOid, false, snap, 0, NULL);
	if (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		bool		isnull;
		bytea	   *k = DatumGetByteaPP(heap_getattr(tup, 2, RelationGetDescr(rel), &isnull));

		if (!isnull && VARSIZE_ANY_EXHDR(k) == CHANNEL_KEY_LEN)
		{
			memcpy(channel_key, VARDATA_ANY(k), CHANNEL_KEY_LEN);
			key_present = true;
		}
	}
	systable_endscan(scan);
	UnregisterSnapshot(snap);
	table_close(rel, AccessShareLock);
	return key_present;
}

/*
 * The channel of a document, or NULL when the database has no channel key.
 * Document ids can be 200 bytes and contain anything; channel names are
 * identifiers of at most 63 bytes, so the name is a digest in hex.
 */
char *
sl_channel_name(const char *doc, int len)
{
	pg_hmac_ctx *ctx;
	uint8		mac[32];
	char	   *name;

	if (!load_key())
		return NULL;
	ctx = pg_hmac_create(PG_SHA256);
	if (ctx == NULL ||
		pg_hmac_init(ctx, channel_key, CHANNEL_KEY_LEN) < 0 ||
		pg_hmac_update(ctx, (const uint8 *) doc, len) < 0 ||
		pg_hmac_final(ctx, mac, sizeof(mac)) < 0)
		elog(ERROR, "synclog: could not compute a channel name: %s",
			 ctx ? pg_hmac_error(ctx) : "out of memory");
	pg_hmac_free(ctx);
	name = palloc(8 + 2 * CHANNEL_HASH_BYTES + 1);
	memcpy(name, "synclog_", 8);
	for (int i = 0; i < CHANNEL_HASH_BYTES; i++)
		snprintf(name + 8 + 2 * i, 3, "%02x", mac[i]);
	return name;
}

/*
 * Announce an event on the document's channel, at commit.  The payload is
 * the event's name alone: what happened is read from the log.
 */
void
sl_notify(const char *doc, int doclen, SlEvent event)
{
	char	   *channel = sl_channel_name(doc, doclen);

	if (channel != NULL)
		Async_Notify(channel, event == SL_EVENT_ROTATE ?
					 "{\"event\":\"rotate\"}" : "{\"event\":\"append\"}");
}

/*
 * synclog.channel(doc text) returns text
 *
 * The NOTIFY channel of a document, for a role that may read it (42501
 * otherwise, worded as for any document).  Changes when the channel key is
 * replaced: clients ask again after each connect.
 *
 * Takes AccessShareLock on synclog.channel_key and synclog.doc_grant when
 * their caches are cold; no row locks.
 */
Datum
synclog_channel(PG_FUNCTION_ARGS)
{
	text	   *doc = sl_arg_doc(fcinfo, 0);
	char	   *name;

	sl_spi_begin();
	sl_require_doc(doc, false);
	name = sl_channel_name(VARDATA_ANY(doc), VARSIZE_ANY_EXHDR(doc));
	sl_spi_end();
	if (name == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("synclog has no channel key in this database"),
				 errhint("Run SELECT synclog.rotate_channel_key() as an administrator.")));
	PG_RETURN_TEXT_P(cstring_to_text(name));
}

/*
 * synclog.rotate_channel_key() returns void
 *
 * Replaces the database's channel key with 32 random bytes: every
 * document's channel changes, so a role whose access was revoked stops
 * hearing about its documents.  Listening clients stop getting
 * notifications until they reconnect (they poll meanwhile).  Refused (42501)
 * to a confined caller.
 *
 * Takes RowExclusiveLock on synclog.channel_key and locks its row.
 */
Datum
synclog_rotate_channel_key(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan;
	uint8		key[CHANNEL_KEY_LEN];
	bytea	   *k = palloc(VARHDRSZ + CHANNEL_KEY_LEN);
	Oid			types[1] = {BYTEAOID};
	Datum		args[1];

	if (!pg_strong_random(key, sizeof(key)))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate random channel key")));
	SET_VARSIZE(k, VARHDRSZ + CHANNEL_KEY_LEN);
	memcpy(VARDATA(k), key, CHANNEL_KEY_LEN);
	args[0] = PointerGetDatum(k);
	sl_spi_begin();
	sl_require_unconfined(sl_caller(), "replace the channel key");
	sl_exec(&plan,
			"INSERT INTO synclog.channel_key (one, key) VALUES (true, $1) "
			"ON CONFLICT (one) DO UPDATE SET key = excluded.key, set_at = now()",
			1, types, args, NULL, false, 0);
	CacheInvalidateRelcacheByRelid(sl_relid("channel_key"));
	sl_spi_end();
	PG_RETURN_VOID();
}
