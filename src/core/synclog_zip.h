/*
 * synclog_zip.h
 *
 * Version 2 (compressed) deltas, shared by the extension and every client:
 * the envelope of PROTOCOL.md section 10 "Version 2 (compressed) deltas",
 *
 *   u8 version (= 2) || u8 codec || u32le raw_len || compressed bytes,
 *
 * where the compressed bytes hold a version 1 delta of exactly raw_len
 * bytes.  The only codec is Zstandard (codec 2, one standard frame).  The
 * snapshot hash and the chain are defined over the version 1 bytes, so
 * compression changes how many bytes are stored and moved, never what they
 * mean.
 *
 * Owns: encoding and bounded decoding of the envelope, the rule for which
 * deltas are worth compressing, and applying an entry whose delta may be
 * compressed.
 * Must never: allocate more than the announced raw_len for a decoded delta
 * (and refuse a raw_len above the caller's limit before allocating), accept
 * output that is not exactly raw_len bytes of a valid version 1 delta,
 * include PostgreSQL headers, or keep global mutable state.
 */
#ifndef SYNCLOG_ZIP_H
#define SYNCLOG_ZIP_H

#include <stddef.h>
#include <stdint.h>

#include "synclog_core.h"

#ifdef __cplusplus
extern "C"
{
#endif

/* Version byte of a compressed delta. */
#define SLC_DELTA_VERSION_ZIP	2
/* version, codec, u32le raw_len */
#define SLC_ZIP_HEADER_LEN		6
/* Codec byte: one Zstandard frame (RFC 8878).  1 is reserved. */
#define SLC_CODEC_ZSTD			2
/* The codec's name in synclog.read2's accept list. */
#define SLC_CODEC_ZSTD_NAME		"zstd"
/* A codec's bit in an accept mask. */
#define SLC_CODEC_BIT(codec)	(1u << (codec))
/* Deltas shorter than this stay version 1: compression would not pay. */
#define SLC_ZIP_MIN_LEN			256
/*
 * The largest raw_len slc_state_apply_any accepts: the server's largest
 * possible "synclog.max_delta_size" (256 MB).  Callers with a smaller
 * limit of their own pass it to slc_delta_to_v1.
 */
#define SLC_ZIP_RAW_MAX			((size_t) 256 * 1024 * 1024)

/*
 * Codec contexts of one thread (a backend, a client connection): the
 * compressor's and decompressor's working memory, allocated once and
 * reused.  NULL on out of memory.
 */
typedef struct slc_zip slc_zip;

slc_zip    *slc_zip_new(void);
void		slc_zip_free(slc_zip *z);

/* The version byte of an encoded delta, 0 for an empty buffer. */
int			slc_delta_version(const uint8_t *buf, size_t len);

/*
 * Check the envelope's header: version 2, a codec this build decodes, and
 * SLC_DELTA_HEADER_LEN <= raw_len <= max_raw.  Sets *codec and *raw_len;
 * on error *err_offset (if non-NULL) gets the offending byte's offset.
 */
slc_status	slc_zip_header(const uint8_t *buf, size_t len, size_t max_raw,
						   uint8_t *codec, uint32_t *raw_len,
						   size_t *err_offset);

/*
 * Decode an envelope whose header slc_zip_header accepted into out, which
 * has room for exactly raw_len bytes: the compressed bytes must be one
 * frame that decompresses to exactly raw_len bytes, and those must be a
 * structurally valid version 1 delta with at most max_changes changes
 * (slc_delta_validate; duplicates are not checked).  An inner error is
 * returned as slc_delta_validate reports it, with its offset inside the
 * uncompressed delta.  z may be NULL (a context is made for the call).
 */
slc_status	slc_zip_decode(slc_zip *z, const uint8_t *buf, size_t len,
						   uint8_t *out, uint32_t raw_len,
						   uint32_t max_changes, size_t *err_offset);

/* The most bytes slc_zip_encode can write for a delta of len bytes. */
size_t		slc_zip_bound(size_t len);

/*
 * Whether a version 1 delta is worth compressing: at least
 * SLC_ZIP_MIN_LEN bytes, and a sample of its bytes does not look random
 * (order-0 entropy of up to 4 KiB spread over the delta above 7.5 bits
 * per byte: such data saves a few percent at best, and compressing it
 * would cost an append more than storing it saves).
 */
int			slc_zip_worth_trying(const uint8_t *v1, size_t len);

/*
 * Compress a valid version 1 delta into out (room for slc_zip_bound(len)
 * bytes) at Zstandard level 1.  Returns the envelope's length, or 0 when
 * the delta is better stored as it is: not worth trying (above), the
 * envelope would not be smaller, or the codec failed (out of memory).
 * z may be NULL.
 */
size_t		slc_zip_encode(slc_zip *z, const uint8_t *v1, size_t len,
						   uint8_t *out, size_t cap);

/*
 * Any stored or served delta as version 1 bytes: a version 1 delta (or
 * anything that is not version 2) is returned as it is (*v1 = buf,
 * *owned = NULL: the caller validates it as usual); a version 2 delta is
 * checked and decoded into malloc'd memory (*v1 = *owned, which the caller
 * frees).  Never allocates more than the announced raw_len, and refuses
 * a raw_len above max_raw first.
 */
slc_status	slc_delta_to_v1(slc_zip *z, const uint8_t *buf, size_t len,
							size_t max_raw, uint32_t max_changes,
							const uint8_t **v1, size_t *v1_len,
							uint8_t **owned, size_t *err_offset);

/*
 * slc_state_apply_entry for a delta of version 1 or 2 (raw_len up to
 * SLC_ZIP_RAW_MAX): the reference client applies what the server sends
 * through this.  All or nothing, like slc_state_apply_entry.
 */
slc_status	slc_state_apply_any(slc_state *s, const uint8_t *delta,
								size_t delta_len, int64_t lsn,
								const char *client_id, size_t client_id_len,
								int64_t client_seq);

#ifdef __cplusplus
}
#endif

#endif							/* SYNCLOG_ZIP_H */
