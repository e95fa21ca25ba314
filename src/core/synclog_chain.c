/*
 * synclog_chain.c
 *
 * The chain value of a log entry (PROTOCOL.md section 4a): a 16-byte
 * XXH3-128 over the previous entry's chain value and the entry itself, so
 * that a position (log id, LSN, chain) names one history.  Two histories
 * that differ in any entry up to a position differ in its chain value
 * (unless XXH3-128 collides), which is how the server recognises a client
 * that saw entries it never had: after a failover to an asynchronous
 * standby, a restore or a point-in-time recovery.
 *
 * Owns: the chain step, its input layout and its serialization.
 * Must never: include PostgreSQL headers or allocate: it hashes in a
 * streaming state on the stack, whatever the delta's size.
 */
#include <string.h>

/* the streaming state on the stack needs its declaration */
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "synclog_core.h"

static void
put_le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t) (v >> (8 * i));
}

void
slc_chain_zero(uint8_t out[SLC_CHAIN_LEN])
{
	memset(out, 0, SLC_CHAIN_LEN);
}

void
slc_chain_next(const uint8_t prev[SLC_CHAIN_LEN], int64_t lsn,
			   const uint8_t *delta, size_t delta_len,
			   const char *client_id, size_t client_id_len,
			   int64_t client_seq, uint8_t out[SLC_CHAIN_LEN])
{
	XXH3_state_t st;
	XXH128_hash_t d;
	uint8_t		buf[SLC_CHAIN_LEN + 8 + 4];

	memcpy(buf, prev, SLC_CHAIN_LEN);
	put_le(buf + SLC_CHAIN_LEN, (uint64_t) lsn, 8);
	put_le(buf + SLC_CHAIN_LEN + 8, (uint64_t) delta_len, 4);

	/* with the default secret and a stack state these cannot fail */
	(void) XXH3_128bits_reset(&st);
	(void) XXH3_128bits_update(&st, buf, sizeof(buf));
	if (delta_len > 0)
		(void) XXH3_128bits_update(&st, delta, delta_len);
	if (client_id == NULL)
	{
		client_id_len = 0;
		client_seq = -1;
	}
	put_le(buf, (uint64_t) client_id_len, 4);
	(void) XXH3_128bits_update(&st, buf, 4);
	if (client_id_len > 0)
		(void) XXH3_128bits_update(&st, client_id, client_id_len);
	put_le(buf, (uint64_t) client_seq, 8);
	(void) XXH3_128bits_update(&st, buf, 8);
	d = XXH3_128bits_digest(&st);
	put_le(out, d.low64, 8);
	put_le(out + 8, d.high64, 8);
}
