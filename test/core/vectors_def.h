/*
 * vectors_def.h
 *
 * The fixed inputs of the protocol test vectors, shared by vectors.c (which
 * prints them for PROTOCOL.md) and test_core.c (which pins them), so the
 * printed and the checked vectors cannot drift apart.
 */
#ifndef VECTORS_DEF_H
#define VECTORS_DEF_H

#include <stddef.h>

/* Longest hex string a vector produces, with its terminator. */
#define VEC_HEX_MAX		128

size_t		vec_count(void);
const char *vec_name(size_t i);
const char *vec_input(size_t i);

/* Hex of vector i into hex[VEC_HEX_MAX]; 0 on success, -1 on failure. */
int			vec_hex(size_t i, char *hex);

/* Lowercase hex of buf; out needs 2 * len + 1 bytes. */
void		vec_to_hex(const unsigned char *buf, size_t len, char *out);

#endif
