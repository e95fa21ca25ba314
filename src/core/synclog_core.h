/*
 * synclog_core.h
 *
 * The part of synclog that the coordinator (the PostgreSQL extension) and
 * every client must agree on bit for bit: the binary delta encoding, the
 * fold rule for a single key, and the snapshot hash.  PROTOCOL.md is the
 * normative text; this file is its executable form.
 *
 * Owns: delta encode/decode/validate, item hashing, the order-independent
 * state hash (add/remove/combine/serialize), and a small in-memory state map
 * used by the reference client and the tests.
 *
 * Must never: include PostgreSQL headers, call exit()/abort() on bad input,
 * keep global mutable state, or read past a caller's buffer.  All input is
 * untrusted; every decoder reports errors through slc_status.
 */
#ifndef SYNCLOG_CORE_H
#define SYNCLOG_CORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C"
{
#endif

/* Delta encoding version byte (first byte of every encoded delta). */
#define SLC_DELTA_VERSION		1
/* Longest key, in bytes.  Keys may be empty. */
#define SLC_KEY_MAX				1024
/* Value length marker meaning "this key is deleted". */
#define SLC_DELETE_MARK			UINT32_C(0xFFFFFFFF)
/* Longest value, in bytes (a PostgreSQL bytea cannot hold more anyway). */
#define SLC_VALUE_MAX			UINT32_C(0x3FFFFFFF)
/* Fixed header: version byte + u32 change count. */
#define SLC_DELTA_HEADER_LEN	5
/* Smallest encoded change: u32 klen + u32 vlen (empty key, empty or deleted value). */
#define SLC_CHANGE_MIN_LEN		8

/* Namespaces of state items, also the first byte hashed for each item. */
#define SLC_NS_DATA				1	/* key -> value written by deltas */
#define SLC_NS_CLIENT			2	/* client_id -> (seq, lsn) watermark */

/* Watermark value: i64le client_seq || i64le lsn. */
#define SLC_WATERMARK_LEN		16

/*
 * The client_seq of a retire entry (PROTOCOL.md section 4): folding an
 * entry with a client id and this client_seq removes the client's
 * watermark instead of setting it.  The server writes retire entries with
 * the empty delta only; clients never append with it.
 */
#define SLC_RETIRE_SEQ			INT64_C(-1)

/* Snapshot hash algorithm ids and serialized length. */
#define SLC_HASH_ALGO_XXH3SUM	1
#define SLC_HASH_LEN			33

typedef enum slc_status
{
	SLC_OK = 0,
	SLC_ERR_EMPTY,				/* zero-length buffer */
	SLC_ERR_VERSION,			/* first byte is not a known version */
	SLC_ERR_TRUNCATED,			/* buffer ends inside a header or length */
	SLC_ERR_LENGTH,				/* a key or value length runs past the end */
	SLC_ERR_KEY_TOO_LONG,		/* key longer than SLC_KEY_MAX */
	SLC_ERR_VALUE_TOO_LONG,		/* value longer than SLC_VALUE_MAX */
	SLC_ERR_TRAILING,			/* bytes left after the last change */
	SLC_ERR_DUPLICATE_KEY,		/* the same key twice in one delta */
	SLC_ERR_TOO_MANY,			/* change count larger than allowed */
	SLC_ERR_HASH_FORMAT,		/* serialized hash of wrong length or algo */
	SLC_ERR_NOMEM,				/* allocation failed (in-memory state only) */
	/* version 2 (compressed) deltas, synclog_zip.h: */
	SLC_ERR_CODEC,				/* codec byte not one this build decodes */
	SLC_ERR_RAW_LEN,			/* announced uncompressed length out of range */
	SLC_ERR_COMPRESSED			/* compressed data corrupt, or not exactly
								 * the announced length */
} slc_status;

/* Human-readable text for a status; never NULL. */
const char *slc_status_message(slc_status st);

/* ---------------------------------------------------------------------
 * Delta codec
 *
 * Layout: u8 version (=1), u32le n, then n times:
 *   u32le key_len, key bytes, u32le val_len or 0xFFFFFFFF (delete), value.
 * ---------------------------------------------------------------------
 */
typedef struct slc_change
{
	const uint8_t *key;
	uint32_t	klen;
	const uint8_t *val;			/* NULL when is_delete */
	uint32_t	vlen;			/* 0 when is_delete */
	int			is_delete;
} slc_change;

/* Zero-copy cursor over an encoded delta; changes point into the buffer. */
typedef struct slc_delta_reader
{
	const uint8_t *buf;
	size_t		len;
	size_t		pos;
	uint32_t	count;			/* changes announced by the header */
	uint32_t	done;			/* changes returned so far */
} slc_delta_reader;

/*
 * Check the header and position the reader on the first change.  Rejects
 * a count above max_changes (pass UINT32_MAX for no limit) before any
 * change is read, so a hostile count cannot drive allocation.
 */
slc_status	slc_delta_reader_init(slc_delta_reader *r, const uint8_t *buf,
								  size_t len, uint32_t max_changes);

/*
 * The most changes the reader can still return: those announced and not
 * read yet, but never more than the bytes left can hold, since every change
 * takes at least SLC_CHANGE_MIN_LEN bytes.  Size an array of changes by
 * this, never by r->count: the count is untrusted, and a 5-byte delta may
 * announce four billion changes.  It only bounds: whether the changes are
 * really there is for slc_delta_next to find out.
 */
uint32_t	slc_delta_reader_room(const slc_delta_reader *r);

/*
 * Return the next change.  *has_more is set to 0 (and SLC_OK returned) when
 * all announced changes were read; at that point trailing bytes yield
 * SLC_ERR_TRAILING.  *err_offset, if non-NULL, receives the byte offset
 * where a problem was found.  *out is written only when a change is
 * returned, so a caller may pass a slot one past its last change.
 */
slc_status	slc_delta_next(slc_delta_reader *r, slc_change *out, int *has_more,
						   size_t *err_offset);

/*
 * Full structural validation: header, every length, no trailing bytes.
 * Returns the number of changes in *n_changes.  Does not check duplicates
 * (that needs scratch space, see slc_delta_find_duplicate).
 */
slc_status	slc_delta_validate(const uint8_t *buf, size_t len,
							   uint32_t max_changes, uint32_t *n_changes,
							   size_t *err_offset);

/*
 * Find a duplicate key among changes[0..n).  scratch must have room for n
 * uint32_t; it is used to sort indexes, changes itself is not reordered.
 * Returns SLC_ERR_DUPLICATE_KEY and sets *dup_index to one offending
 * index, or SLC_OK.
 */
slc_status	slc_delta_find_duplicate(const slc_change *changes, uint32_t n,
									 uint32_t *scratch, uint32_t *dup_index);

/* Bytes needed to encode changes[0..n). */
size_t		slc_delta_encoded_size(const slc_change *changes, uint32_t n);

/*
 * Encode changes[0..n) into out (which must hold slc_delta_encoded_size
 * bytes), in the order given.  Returns bytes written.
 */
size_t		slc_delta_encode(const slc_change *changes, uint32_t n, uint8_t *out);

/* ---------------------------------------------------------------------
 * Snapshot hash (algorithm 1, "xxh3sum")
 *
 * item_hash = XXH3_128bits(ns || u32le(klen) || key || value), seed 0.
 * State hash = (wrapping sum mod 2^128 of item hashes, item count,
 * total of klen + vlen over items).  Only present items count: a deleted
 * key contributes nothing.  Serialized as 33 bytes:
 *   u8 algo (=1) || u64le sum_lo || u64le sum_hi || u64le count || u64le bytes
 * where the 128-bit XXH3 value is high64:low64 as XXH3 defines them.
 * ---------------------------------------------------------------------
 */
typedef struct slc_hash
{
	uint64_t	sum_lo;
	uint64_t	sum_hi;
	uint64_t	count;
	uint64_t	bytes;
} slc_hash;

/* Hash of the empty state. */
void		slc_hash_init(slc_hash *h);

/* The 128-bit hash of one item, as (lo, hi). */
void		slc_item_hash(uint8_t ns, const uint8_t *key, size_t klen,
						  const uint8_t *val, size_t vlen,
						  uint64_t *lo, uint64_t *hi);

void		slc_hash_add(slc_hash *h, uint8_t ns, const uint8_t *key,
						 size_t klen, const uint8_t *val, size_t vlen);
void		slc_hash_remove(slc_hash *h, uint8_t ns, const uint8_t *key,
							size_t klen, const uint8_t *val, size_t vlen);

/*
 * The same with an item hash computed earlier (slc_item_hash) and the
 * item's klen + vlen: lets a holder of stored item hashes update a state
 * hash without the old value at hand.
 */
void		slc_hash_add_item(slc_hash *h, uint64_t lo, uint64_t hi,
							  uint64_t item_bytes);
void		slc_hash_remove_item(slc_hash *h, uint64_t lo, uint64_t hi,
								 uint64_t item_bytes);

/*
 * The fold rule for one key, expressed on the hash: the key had old_val
 * (NULL = absent) and now has new_val (NULL = absent/deleted).
 */
void		slc_hash_replace(slc_hash *h, uint8_t ns,
							 const uint8_t *key, size_t klen,
							 const uint8_t *old_val, size_t old_vlen,
							 const uint8_t *new_val, size_t new_vlen);

/*
 * Range buckets (PROTOCOL.md section 11a).  Every item belongs to one of
 * SLC_BUCKETS buckets, chosen by its namespace and key only (a value
 * change never moves an item):
 *   bucket = XXH3_64bits(ns || u32le(klen) || key) >> 52   (the top 12 bits)
 * The range hash of a bucket is the snapshot hash of the items in it; the
 * sum (slc_hash_combine) of all range hashes is the snapshot hash.
 */
#define SLC_BUCKETS				4096
#define SLC_BUCKET_BITS			12
uint32_t	slc_bucket(uint8_t ns, const uint8_t *key, size_t klen);

/* h += other: the hash of the disjoint union of two states. */
void		slc_hash_combine(slc_hash *h, const slc_hash *other);

void		slc_hash_serialize(const slc_hash *h, uint8_t out[SLC_HASH_LEN]);
slc_status	slc_hash_parse(const uint8_t *buf, size_t len, slc_hash *out);
int			slc_hash_equal(const slc_hash *a, const slc_hash *b);

/* Watermark value bytes for (seq, lsn). */
void		slc_watermark_encode(int64_t seq, int64_t lsn,
								 uint8_t out[SLC_WATERMARK_LEN]);
void		slc_watermark_decode(const uint8_t in[SLC_WATERMARK_LEN],
								 int64_t *seq, int64_t *lsn);

/* ---------------------------------------------------------------------
 * Entry chain values (synclog_chain.c; PROTOCOL.md section 4a)
 *
 * chain(lsn) = XXH3_128bits(chain(lsn - 1) || i64le(lsn)
 *                           || u32le(len(delta)) || delta
 *                           || u32le(len(client_id)) || client_id
 *                           || i64le(client_seq)),
 * serialized low64 then high64, little-endian; an entry without a client
 * hashes length 0 and client_seq -1.  delta is the version 1 encoding.
 * The chain before a document's first entry is 16 zero bytes.
 * ---------------------------------------------------------------------
 */
#define SLC_CHAIN_LEN			16

void		slc_chain_zero(uint8_t out[SLC_CHAIN_LEN]);
void		slc_chain_next(const uint8_t prev[SLC_CHAIN_LEN], int64_t lsn,
						   const uint8_t *delta, size_t delta_len,
						   const char *client_id, size_t client_id_len,
						   int64_t client_seq, uint8_t out[SLC_CHAIN_LEN]);

/* ---------------------------------------------------------------------
 * In-memory state (reference client, tests, fuzzing)
 *
 * A map (ns, key) -> value that keeps its slc_hash current as changes are
 * applied.  Uses malloc; every function that allocates can return
 * SLC_ERR_NOMEM and leaves the state unchanged when it does.
 * ---------------------------------------------------------------------
 */
typedef struct slc_state slc_state;

slc_state  *slc_state_new(void);
void		slc_state_free(slc_state *s);

/* Set (val != NULL) or delete (val == NULL) one item, updating the hash. */
slc_status	slc_state_put(slc_state *s, uint8_t ns, const uint8_t *key,
						  size_t klen, const uint8_t *val, size_t vlen);

/*
 * Apply one log entry: every change of the encoded delta (validated first,
 * all-or-nothing), then, when client_id is non-NULL, the watermark
 * client_id -> (client_seq, lsn), or, when client_seq is SLC_RETIRE_SEQ,
 * the removal of client_id's watermark (a retire entry).
 */
slc_status	slc_state_apply_entry(slc_state *s, const uint8_t *delta,
								  size_t delta_len, int64_t lsn,
								  const char *client_id, size_t client_id_len,
								  int64_t client_seq);

/* Look up an item; returns 1 and sets *val and *vlen when present. */
int			slc_state_get(const slc_state *s, uint8_t ns, const uint8_t *key,
						  size_t klen, const uint8_t **val, size_t *vlen);

const slc_hash *slc_state_hash(const slc_state *s);
size_t		slc_state_count(const slc_state *s);

/* Recompute the hash from every item (for verification). */
void		slc_state_rehash(const slc_state *s, slc_hash *out);

/*
 * Visit every item (unspecified order).  Stops early and returns the
 * callback's value if it returns non-zero.
 */
typedef int (*slc_state_visit_fn) (void *arg, uint8_t ns,
								   const uint8_t *key, size_t klen,
								   const uint8_t *val, size_t vlen);
int			slc_state_foreach(const slc_state *s, slc_state_visit_fn fn,
							  void *arg);

#ifdef __cplusplus
}
#endif

#endif							/* SYNCLOG_CORE_H */
