/*
 * vectors.c
 *
 * Prints the protocol test vectors as "name<TAB>hex<TAB>input", one per
 * line.  test_core.c pins the same hex, so a change here that alters any
 * vector fails the tests until PROTOCOL.md and the pins are updated.
 */
#include <stdio.h>

#include "vectors_def.h"

int
main(void)
{
	char		hex[VEC_HEX_MAX];
	size_t		i;

	for (i = 0; i < vec_count(); i++)
	{
		if (vec_hex(i, hex) != 0)
		{
			fprintf(stderr, "vector %s could not be built\n", vec_name(i));
			return 1;
		}
		printf("%s\t%s\t%s\n", vec_name(i), hex, vec_input(i));
	}
	return 0;
}
