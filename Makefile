# synclog: PGXS build.  `make && make install`, then `make installcheck`
# against a running server runs the regression, isolation and TAP suites.

MODULE_big = synclog
OBJS = \
	src/core/synclog_core.o \
	src/synclog.o \
	src/args.o \
	src/spi_util.o \
	src/docs.o \
	src/delta_sql.o \
	src/hash_sql.o \
	src/append.o \
	src/read.o \
	src/snapshot.o \
	src/compact.o \
	src/gc.o \
	src/notify.o \
	src/policy.o \
	src/worker.o \
	src/access.o

EXTENSION = synclog
DATA = src/synclog--0.1.sql
PGFILEDESC = "synclog - storage logs for rebase-sync clients"

PG_CPPFLAGS = -I$(srcdir)/src -I$(srcdir)/src/core
# PostgreSQL's own headers have unused parameters in inline functions.
PG_CFLAGS = -Wall -Wextra -Wno-unused-parameter
SHLIB_LINK = -lxxhash

REGRESS = delta hash vectors docs append read compact snapshot gc policy retention access
REGRESS_OPTS = --load-extension=synclog

ISOLATION = append_rotate rotate_rotate retry_race
ISOLATION_OPTS = --load-extension=synclog --inputdir=test/isolation --outputdir=test/isolation

TAP_TESTS = 1
PROVE_TESTS = test/t/*.pl

EXTRA_CLEAN = results regression.diffs regression.out test/isolation/results \
	test/isolation/output_iso test/isolation/regression.*

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

.PHONY: check-core bench
check-core:
	$(MAKE) -C test/core check

bench:
	bash test/bench/run.sh
