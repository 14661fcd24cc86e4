# attnflow — build, test, figures, benchmarks.
#   make            library + CLI          make test      bootstrap + Criterion suite
#   make demo       flagship figure        make figures   every experiment + figure
#   make bench      speed figures          make check-long  long reference runs
# BUILD=dir puts every output in another folder (parallel checkouts, sanitizers).
# SANITIZE=1 builds with AddressSanitizer + UBSan.
# ARCH=x86-64-v3 (any -march value) builds for other machines; native is the default.
#   make install PREFIX=/usr/local DESTDIR=   make uninstall   (see the install block below)

BUILD    ?= build
CC       ?= gcc
PYTHON   ?= /usr/bin/python3
ARCH     ?= native
OPT      ?= -O3 -march=$(ARCH)
PKGS      = gsl fftw3

# -fPIC -fvisibility=hidden: the same objects make the static and the shared
# library; the public headers mark their declarations visible (af_ only).
AF_CFLAGS = -std=c11 -D_GNU_SOURCE -g $(OPT) -fno-math-errno -fopenmp -fPIC -fvisibility=hidden \
            -Wall -Wextra -Wshadow -Wno-unused-parameter -Iinclude -Isrc \
            $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# GSL's pkg-config adds its own slow CBLAS (-lgslcblas): link OpenBLAS instead.
AF_LIBS   = -lgsl $(shell pkg-config --libs openblas 2>/dev/null || echo -lopenblas) \
            -lfftw3 -lz -lm -fopenmp
ifeq ($(SANITIZE),1)
  OPT      = -O1 -march=$(ARCH)
  AF_CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  AF_LIBS   += -fsanitize=address,undefined
  export ASAN_OPTIONS ?= detect_leaks=1
endif

# MPI (OpenMPI, Debian libopenmpi-dev): only the CLI's src/cli/mpi_comm.c
# uses it (the library takes communication hooks, attnflow/comm.h). Found
# through pkg-config; MPI=0 builds without it (then attnflow refuses to run
# as several ranks). The stamp rebuilds mpi_comm.o when the choice changes.
MPI      ?= $(shell pkg-config --exists ompi-c 2>/dev/null && echo 1 || echo 0)
ifeq ($(MPI),1)
  MPI_CFLAGS = -DAF_HAVE_MPI $(shell pkg-config --cflags ompi-c)
  MPI_LIBS   = $(shell pkg-config --libs ompi-c)
endif

# One folder per module (src/<module>/*.c); src/cli/ is the command, not the library.
LIB_SRC   = $(filter-out src/cli/%,$(wildcard src/*/*.c))
CLI_SRC   = $(wildcard src/cli/*.c)
TEST_SRC  = $(wildcard tests/test_*.c)
LONG_SRC  = $(wildcard tests/long_*.c)
SUPP_SRC  = $(wildcard tests/support/*.c)
BENCH_SRC = $(wildcard bench/bench_*.c)

LIB_OBJ   = $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ   = $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
SUPP_OBJ  = $(SUPP_SRC:%.c=$(BUILD)/obj/%.o)
TEST_BIN  = $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
LONG_BIN  = $(LONG_SRC:tests/%.c=$(BUILD)/tests/%)
BENCH_BIN = $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
LIB       = $(BUILD)/libattnflow.a
CLI       = $(BUILD)/attnflow
DEPS      = $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(SUPP_OBJ:.o=.d)

.PHONY: all bootstrap demo test test-only bench check-long check-portable clean FORCE
.SECONDARY:
all: $(LIB) $(CLI) shared

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(AF_CFLAGS) -MMD -MP -c $< -o $@

$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(CLI): $(CLI_OBJ) $(LIB)
	$(CC) $(AF_CFLAGS) $(CLI_OBJ) $(LIB) $(AF_LIBS) $(MPI_LIBS) -o $@

$(BUILD)/obj/src/cli/mpi_comm.o: AF_CFLAGS += $(MPI_CFLAGS)
$(BUILD)/obj/src/cli/mpi_comm.o: $(BUILD)/mpi.stamp
$(BUILD)/mpi.stamp: FORCE
	@mkdir -p $(dir $@)
	@echo "MPI=$(MPI) $(MPI_CFLAGS)" | cmp -s - $@ || echo "MPI=$(MPI) $(MPI_CFLAGS)" > $@
FORCE:

# Tests may run the CLI: AF_CLI names the binary of this build.
$(BUILD)/tests/%: tests/%.c $(SUPP_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(AF_CFLAGS) -Itests -DAF_CLI='"$(abspath $(CLI))"' -DAF_SRC_ROOT='"$(abspath .)"' -MMD -MP $< $(SUPP_OBJ) $(LIB) $(AF_LIBS) -lcriterion -o $@

$(BUILD)/bench/%: bench/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(AF_CFLAGS) -MMD -MP $< $(LIB) $(AF_LIBS) $(BENCH_LIBS) -o $@
# bench_vecmath compares glibc's vector exp with SLEEF (libsleef-dev).
$(BUILD)/bench/bench_vecmath: BENCH_LIBS = -lsleef

-include $(DEPS) $(TEST_BIN:=.d) $(LONG_BIN:=.d) $(BENCH_BIN:=.d)

# Checks the Debian packages; installs the missing ones as root, else prints the apt-get line.
bootstrap:
	@sh scripts/bootstrap.sh

DEMO ?= flow_softmax_vs_sinkhorn
demo: bootstrap
	$(MAKE) all
	sh scripts/run_experiment.sh $(CLI) $(DEMO)
	@echo "demo: figure written to out/figures/$(DEMO).png (and .pdf)"

# The whole suite: every tests/test_*.c is its own Criterion binary; the
# runner prints each one's result and a closing 'N passed, N failed' line.
test: bootstrap
	@$(MAKE) --no-print-directory test-only

test-only: all $(TEST_BIN)
	@PYTHON=$(PYTHON) sh scripts/run_tests.sh $(BUILD) $(TEST_BIN) python/tests

# Baselines need numpy and POT (Debian's python3 packages); PyTorch
# (python3-torch, large) is used by bench_train only if it is installed.
bench:
	@sh scripts/bootstrap.sh python3-numpy python3-pot libsleef-dev
	@$(MAKE) --no-print-directory all $(BENCH_BIN)
	@for b in $(BENCH_BIN); do echo "== $$b"; BENCH_CLI=$(CLI) $$b || exit 1; done

# The suite built for CPUs without AVX-512 (x86-64-v3) and without AVX
# (x86-64-v2), each in its own folder under $(BUILD)-portable/ (CI runs it).
check-portable:
	@sh scripts/check_portable.sh $(BUILD)-portable

# Long reference runs (full-size THEORY.md cases): tests/long_*.c.
check-long: all $(LONG_BIN)
	@sh scripts/run_tests.sh $(BUILD) $(LONG_BIN)

clean:
	rm -rf $(BUILD) $(BUILD)-portable out

# ---- shared library, pkg-config, man pages, install (issue 14) -------------
# The version has one source: AF_VERSION in include/attnflow/version.h.
VERSION  := $(shell sed -n 's/^\#define AF_VERSION "\(.*\)"/\1/p' include/attnflow/version.h)
MAJOR    := $(word 1,$(subst ., ,$(VERSION)))
MINOR    := $(word 2,$(subst ., ,$(VERSION)))
SONAME    = libattnflow.so.$(MAJOR)
SOLIB     = $(BUILD)/libattnflow.so.$(MAJOR).$(MINOR)
PCFILE    = $(BUILD)/attnflow.pc
MANDIR_B  = $(BUILD)/man
PREFIX   ?= /usr/local
BINDIR   ?= $(PREFIX)/bin
LIBDIR   ?= $(PREFIX)/lib
INCDIR   ?= $(PREFIX)/include
MANDIR   ?= $(PREFIX)/share/man
PCDIR    ?= $(LIBDIR)/pkgconfig
# Where the system python3 looks for packages under PREFIX (Debian layout).
PYVER    := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
PYTHONDIR ?= $(if $(filter /usr,$(PREFIX)),/usr/lib/python3/dist-packages,$(PREFIX)/lib/python$(PYVER)/dist-packages)
# Private dependencies of the static library (the shared one records its own).
PC_PRIVATE_LIBS = $(shell pkg-config --libs openblas 2>/dev/null || echo -lopenblas) -lm -fopenmp

.PHONY: shared man install uninstall
shared: $(SOLIB) $(BUILD)/libattnflow.so $(PCFILE) $(MANDIR_B)/attnflow.1

# Links libattnflow.so.MAJOR and libattnflow.so next to it, as ldconfig and
# a -dev package would, so the build tree can be used in place (Python tests).
$(SOLIB): $(LIB_OBJ)
	$(CC) -shared -Wl,-soname,$(SONAME) -Wl,--no-undefined -Wl,-z,defs $(AF_CFLAGS) $^ $(AF_LIBS) -o $@
$(BUILD)/libattnflow.so: $(SOLIB)
	ln -sf $(notdir $(SOLIB)) $(BUILD)/$(SONAME) && ln -sf $(SONAME) $@

# attnflow.pc for prefix $(1), written to $(2) (the build copy for PREFIX,
# rewritten by install so that a later PREFIX=... is honoured).
write_pc = printf '%s\n' 'prefix=$(1)' 'exec_prefix=$${prefix}' \
	  'libdir=$(patsubst $(1)/%,$${exec_prefix}/%,$(LIBDIR))' \
	  'includedir=$(patsubst $(1)/%,$${prefix}/%,$(INCDIR))' '' \
	  'Name: attnflow' \
	  'Description: attention-Wasserstein toolkit: SoftMax/Sinkhorn attention, particle flows, heat limit, convex duality' \
	  'Version: $(VERSION)' \
	  'Requires: gsl' 'Requires.private: fftw3 zlib' \
	  'Libs: -L$${libdir} -lattnflow' 'Libs.private: $(PC_PRIVATE_LIBS)' \
	  'Cflags: -I$${includedir}' > $(2)
$(PCFILE): include/attnflow/version.h Makefile
	@mkdir -p $(dir $@)
	$(call write_pc,$(PREFIX),$@)

man: $(MANDIR_B)/attnflow.1
$(MANDIR_B)/attnflow.1: $(CLI) scripts/make_man.sh
	sh scripts/make_man.sh $(CLI) $(MANDIR_B) $(VERSION)

# GNU-style: everything under $(DESTDIR)$(PREFIX); PREFIX is what the
# installed files (attnflow.pc, the Python package) refer to.
install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(PCDIR) \
	  $(DESTDIR)$(INCDIR)/attnflow $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(PYTHONDIR)/attnflow
	install -m 755 $(CLI) $(DESTDIR)$(BINDIR)/attnflow
	install -m 755 $(SOLIB) $(DESTDIR)$(LIBDIR)/
	ln -sf $(notdir $(SOLIB)) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libattnflow.so
	install -m 644 $(LIB) $(DESTDIR)$(LIBDIR)/
	install -m 644 include/attnflow/*.h $(DESTDIR)$(INCDIR)/attnflow/
	$(call write_pc,$(PREFIX),$(DESTDIR)$(PCDIR)/attnflow.pc)
	install -m 644 $(MANDIR_B)/*.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 644 python/attnflow/*.py $(DESTDIR)$(PYTHONDIR)/attnflow/
	printf 'LIBRARY = %s\n' "'$(LIBDIR)/$(SONAME)'" > $(DESTDIR)$(PYTHONDIR)/attnflow/_installed.py
	@[ -n "$(DESTDIR)" ] || [ "$$(id -u)" != 0 ] || ldconfig 2>/dev/null || true

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/attnflow $(DESTDIR)$(LIBDIR)/libattnflow.so* $(DESTDIR)$(LIBDIR)/libattnflow.a \
	  $(DESTDIR)$(PCDIR)/attnflow.pc $(DESTDIR)$(MANDIR)/man1/attnflow.1 $(DESTDIR)$(MANDIR)/man1/attnflow-*.1
	rm -rf $(DESTDIR)$(INCDIR)/attnflow $(DESTDIR)$(PYTHONDIR)/attnflow
# ---- end of the install block -------------------------------------------------

# ---- fuzzing: tests/fuzz/fuzz_*.c, libFuzzer harnesses under ASan + UBSan ----
# `make fuzz FUZZ_SECONDS=N` builds the library with Debian's clang into its
# own folder and runs every harness N seconds from its checked-in seed corpus
# (tests/fuzz/corpus/<name>/); scripts/run_fuzz.sh prints the executions.
# The harnesses read files on one process: built without MPI (MPI=0).
FUZZ_SECONDS ?= 20
FUZZ_BUILD   ?= build-fuzz
FUZZ_SRC      = $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN      = $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)
ifeq ($(FUZZ),1)
  OPT      = -O1 -march=native
  AF_CFLAGS += -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer \
               -fno-sanitize-recover=undefined -Wno-pass-failed
  AF_LIBS   += -fsanitize=address,undefined
endif
.PHONY: fuzz fuzz-build
fuzz:
	@sh scripts/bootstrap.sh clang libclang-rt-dev libomp-dev
	@$(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) CC=clang FUZZ=1 MPI=0 fuzz-build
	@sh scripts/run_fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

fuzz-build: $(FUZZ_BIN)

# The harnesses of the CLI's readers (list, INI) link its objects, not its main().
FUZZ_CLI_OBJ = $(filter-out %/main.o,$(CLI_OBJ))
$(BUILD)/fuzz/fuzz_list $(BUILD)/fuzz/fuzz_ini: FUZZ_LINK = $(FUZZ_CLI_OBJ)
FUZZ_SUPP_OBJ = $(BUILD)/obj/tests/support/fixtures.o
$(BUILD)/fuzz/fuzz_checkpoint: FUZZ_LINK = $(FUZZ_SUPP_OBJ)
$(BUILD)/fuzz/%: tests/fuzz/%.c $(LIB) $(FUZZ_CLI_OBJ) $(FUZZ_SUPP_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(AF_CFLAGS) -fsanitize=fuzzer -Itests -Itests/fuzz -MMD -MP $< $(FUZZ_LINK) $(LIB) $(AF_LIBS) -o $@
-include $(FUZZ_BIN:=.d)
# ---- figures, README numbers, gallery (plots/README.md) ----
#   make figures [QUICK=1]   every experiment + figure (QUICK: the '; quick:'
#                            options of the long ones, 1-2 minutes in all)
#   make figure NAME=x       one experiment     make readme-numbers  README tables
#   make summaries           out/*/summary.dat again from existing runs
#   make gallery             out/gallery/index.html   make gallery-check  Chromium
.PHONY: figures figure summaries readme-numbers readme-numbers-check gallery gallery-check
QUICK ?= 0
export QUICK

figures: all
	@for e in experiments/*.ini; do \
	  sh scripts/run_experiment.sh $(CLI) $$(basename $$e .ini) || exit 1; done
	@$(MAKE) --no-print-directory readme-numbers gallery

figure: all
	sh scripts/run_experiment.sh $(CLI) $(NAME)

# Re-summarise existing runs (after changing scripts/summarize/*.py).
summaries:
	@for s in scripts/summarize/[a-z]*.py; do n=$$(basename $$s .py); \
	  [ -d out/$$n ] || continue; $(PYTHON) $$s out/$$n > out/$$n/summary.dat.tmp && \
	  mv out/$$n/summary.dat.tmp out/$$n/summary.dat || exit 1; done

# README result tables between '<!-- numbers:NAME begin/end -->' markers,
# rendered from out/*/summary.dat (quick runs are never rendered).
readme-numbers:
	$(PYTHON) scripts/readme_numbers.py --readme README.md --out out

readme-numbers-check:
	$(PYTHON) scripts/readme_numbers.py --readme README.md --out out --check

gallery:
	$(PYTHON) scripts/gallery.py --out out
	@echo "gallery: out/gallery/index.html"

gallery-check: gallery
	@sh scripts/bootstrap.sh chromium
	sh scripts/gallery_check.sh out/gallery/index.html $(BUILD)/gallery-check
# make test runs tests/test_figures.c: scripts/test_figures.sh on a small
# training run (summary, renderer, gallery; Chromium only when installed).
