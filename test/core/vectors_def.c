/*
 * vectors_def.c
 *
 * Builds each protocol test vector through the public core API only, the
 * way a client would, so the vectors exercise what clients actually run.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "synclog_core.h"
#include "vectors_def.h"

typedef int (*vec_fn) (char *hex);

void
vec_to_hex(const unsigned char *buf, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t		i;

	for (i = 0; i < len; i++)
	{
		out[2 * i] = digits[buf[i] >> 4];
		out[2 * i + 1] = digits[buf[i] & 15];
	}
	out[2 * len] = '\0';
}

static int
state_hex(slc_state *s, char *hex)
{
	uint8_t		ser[SLC_HASH_LEN];

	slc_hash_serialize(slc_state_hash(s), ser);
	vec_to_hex(ser, sizeof(ser), hex);
	slc_state_free(s);
	return 0;
}

static int
vec_a(char *hex)
{
	slc_state  *s = slc_state_new();

	if (s == NULL)
		return -1;
	return state_hex(s, hex);
}

static slc_status
put_b(slc_state *s)
{
	static const uint8_t key[] = {0x01};

	return slc_state_put(s, SLC_NS_DATA, key, 1, (const uint8_t *) "hello", 5);
}

static int
vec_b(char *hex)
{
	slc_state  *s = slc_state_new();

	if (s == NULL || put_b(s) != SLC_OK)
	{
		slc_state_free(s);
		return -1;
	}
	return state_hex(s, hex);
}

static int
vec_c(char *hex)
{
	static const uint8_t k1[] = {0x00, 0x00, 0x00, 0x01};
	static const uint8_t k2[] = {0x00, 0x00, 0x00, 0x02};
	uint8_t		v1[4096];
	uint8_t		v2[4096];
	slc_state  *s = slc_state_new();

	memset(v1, 0xAB, sizeof(v1));
	memset(v2, 0xCD, sizeof(v2));
	if (s == NULL ||
		slc_state_put(s, SLC_NS_DATA, k1, 4, v1, sizeof(v1)) != SLC_OK ||
		slc_state_put(s, SLC_NS_DATA, k2, 4, v2, sizeof(v2)) != SLC_OK)
	{
		slc_state_free(s);
		return -1;
	}
	return state_hex(s, hex);
}

static int
vec_d(char *hex)
{
	uint8_t		wm[SLC_WATERMARK_LEN];
	slc_state  *s = slc_state_new();

	slc_watermark_encode(7, 3, wm);
	if (s == NULL || put_b(s) != SLC_OK ||
		slc_state_put(s, SLC_NS_CLIENT, (const uint8_t *) "client-a", 8,
					  wm, sizeof(wm)) != SLC_OK)
	{
		slc_state_free(s);
		return -1;
	}
	return state_hex(s, hex);
}

/*
 * (j): state (d) reached by applying entries, as a client does, then the
 * retire entry of "client-a" at LSN 4; with again, a new entry of the
 * same client (client_seq 1, the empty delta) at LSN 5.
 */
static int
retire_hex(int again, char *hex)
{
	static const uint8_t key[] = {0x01};
	static const uint8_t empty[] = {0x01, 0x00, 0x00, 0x00, 0x00};
	slc_change	c;
	uint8_t		delta[32];
	size_t		len;
	slc_state  *s = slc_state_new();

	memset(&c, 0, sizeof(c));
	c.key = key;
	c.klen = 1;
	c.val = (const uint8_t *) "hello";
	c.vlen = 5;
	len = slc_delta_encode(&c, 1, delta);
	if (s == NULL ||
		slc_state_apply_entry(s, delta, len, 3, "client-a", 8, 7) != SLC_OK ||
		slc_state_apply_entry(s, empty, sizeof(empty), 4, "client-a", 8,
							  SLC_RETIRE_SEQ) != SLC_OK ||
		(again &&
		 slc_state_apply_entry(s, empty, sizeof(empty), 5, "client-a", 8,
							   1) != SLC_OK))
	{
		slc_state_free(s);
		return -1;
	}
	return state_hex(s, hex);
}

static int
vec_j1(char *hex)
{
	return retire_hex(0, hex);
}

static int
vec_j2(char *hex)
{
	return retire_hex(1, hex);
}

static int
one_item_hex(const char *key, const char *val, char *hex)
{
	slc_state  *s = slc_state_new();

	if (s == NULL ||
		slc_state_put(s, SLC_NS_DATA, (const uint8_t *) key, strlen(key),
					  (const uint8_t *) val, strlen(val)) != SLC_OK)
	{
		slc_state_free(s);
		return -1;
	}
	return state_hex(s, hex);
}

static int
vec_e1(char *hex)
{
	return one_item_hex("a", "b", hex);
}

static int
vec_e2(char *hex)
{
	return one_item_hex("b", "a", hex);
}

static int
delta_hex(const slc_change *c, uint32_t n, char *hex)
{
	uint8_t		buf[(VEC_HEX_MAX - 1) / 2];
	size_t		size = slc_delta_encoded_size(c, n);

	if (size > sizeof(buf))
		return -1;
	if (slc_delta_encode(c, n, buf) != size)
		return -1;
	vec_to_hex(buf, size, hex);
	return 0;
}

static int
vec_f1(char *hex)
{
	slc_change	c[2];

	memset(c, 0, sizeof(c));
	c[0].key = (const uint8_t *) "k1";
	c[0].klen = 2;
	c[0].val = (const uint8_t *) "v1";
	c[0].vlen = 2;
	c[1].key = (const uint8_t *) "k2";
	c[1].klen = 2;
	c[1].is_delete = 1;
	return delta_hex(c, 2, hex);
}

static int
vec_f2(char *hex)
{
	return delta_hex(NULL, 0, hex);
}


/* The chain value after entry 1 (delta f1, no client) from a new document. */
static int
chain1(uint8_t out[SLC_CHAIN_LEN])
{
	static const uint8_t f1[] = {0x01, 0x02, 0x00, 0x00, 0x00,
		0x02, 0x00, 0x00, 0x00, 'k', '1', 0x02, 0x00, 0x00, 0x00, 'v', '1',
	0x02, 0x00, 0x00, 0x00, 'k', '2', 0xff, 0xff, 0xff, 0xff};
	uint8_t		zero[SLC_CHAIN_LEN];

	slc_chain_zero(zero);
	slc_chain_next(zero, 1, f1, sizeof(f1), NULL, 0, 0, out);
	return 0;
}

static int
vec_k1(char *hex)
{
	uint8_t		c[SLC_CHAIN_LEN];

	chain1(c);
	vec_to_hex(c, sizeof(c), hex);
	return 0;
}

static int
vec_k2(char *hex)
{
	static const uint8_t empty[] = {0x01, 0x00, 0x00, 0x00, 0x00};
	uint8_t		c1[SLC_CHAIN_LEN];
	uint8_t		c2[SLC_CHAIN_LEN];

	chain1(c1);
	slc_chain_next(c1, 2, empty, sizeof(empty), "client-a", 8, 7, c2);
	vec_to_hex(c2, sizeof(c2), hex);
	return 0;
}

static const struct
{
	const char *name;
	const char *input;
	vec_fn		fn;
}			vectors[] =
{
	{"a_empty_state_hash", "state {}", vec_a},
	{"b_one_item_hash", "state {ns 1: key 01 -> \"hello\"}", vec_b},
	{"c_two_large_items_hash",
	 "state {ns 1: key 00000001 -> 4096 x ab, key 00000002 -> 4096 x cd}", vec_c},
	{"d_item_and_watermark_hash",
	 "state (b) + {ns 2: \"client-a\" -> watermark(seq 7, lsn 3)}", vec_d},
	{"e1_a_to_b_hash", "state {ns 1: \"a\" -> \"b\"}", vec_e1},
	{"e2_b_to_a_hash", "state {ns 1: \"b\" -> \"a\"}", vec_e2},
	{"f1_delta_set_and_delete", "delta [(\"k1\", \"v1\"), (\"k2\", delete)]", vec_f1},
	{"f2_delta_empty", "delta []", vec_f2},
	{"j1_retired_watermark_hash",
	 "state (d), then the retire entry (\"client-a\", client_seq -1, delta 0100000000) at lsn 4",
	 vec_j1},
	{"j2_client_again_hash",
	 "(j1), then an entry (\"client-a\", client_seq 1, delta 0100000000) at lsn 5",
	 vec_j2},
	{"k1_chain_entry_1", "chain(0) = 16 x 00; entry lsn 1, delta f1, no client", vec_k1},
	{"k2_chain_entry_2",
	 "chain k1; entry lsn 2, delta f2, client \"client-a\" seq 7", vec_k2},
};

size_t
vec_count(void)
{
	return sizeof(vectors) / sizeof(vectors[0]);
}

const char *
vec_name(size_t i)
{
	return i < vec_count() ? vectors[i].name : NULL;
}

const char *
vec_input(size_t i)
{
	return i < vec_count() ? vectors[i].input : NULL;
}

int
vec_hex(size_t i, char *hex)
{
	if (i >= vec_count())
		return -1;
	return vectors[i].fn(hex);
}
