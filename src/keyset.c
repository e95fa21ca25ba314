/*
 * keyset.c
 *
 * Sets of (ns, key) that a rotation or a collection has already handled,
 * kept in the core's hash table and freed with a memory context.
 *
 * Owns: sl_keyset_new and sl_keyset_add, used by compact.c (keys already
 * folded in a pass) and gc.c (keys whose old versions are already deleted).
 * Must never: hold values; only keys are kept, so a set costs in proportion
 * to the distinct keys of one log.
 */
#include "postgres.h"

#include "utils/memutils.h"

#include "synclog.h"

/* Reset callback of the set's memory context: the core's memory goes too. */
static void
free_keyset(void *arg)
{
	slc_state_free((slc_state *) arg);
}

/*
 * The core allocates with malloc; tying the set to cxt frees it when cxt
 * is reset or deleted, also when an error unwinds the caller.
 */
slc_state *
sl_keyset_new(MemoryContext cxt)
{
	slc_state  *set = slc_state_new();
	MemoryContextCallback *cb;

	if (set == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory"),
				 errdetail("Could not allocate a set of keys.")));
	cb = MemoryContextAlloc(cxt, sizeof(MemoryContextCallback));
	cb->func = free_keyset;
	cb->arg = set;
	MemoryContextRegisterResetCallback(cxt, cb);
	return set;
}

/* Add (ns, key); true if it was not in the set yet. */
bool
sl_keyset_add(slc_state *set, uint8 ns, const uint8 *key, size_t klen)
{
	const uint8 *dummy;
	size_t		dlen;

	if (slc_state_get(set, ns, key, klen, &dummy, &dlen))
		return false;
	if (slc_state_put(set, ns, key, klen, (const uint8 *) "", 0) != SLC_OK)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory"),
				 errdetail("Could not allocate a set of keys.")));
	return true;
}
