# attnflow — build, test, figures, benchmarks.
#   make            library + CLI          make test      bootstrap + Criterion suite
#   make demo       flagship figure        make figures   every experiment + figure
#   make bench      speed figures          make check-long  long reference runs
# BUILD=dir puts every output in another folder (parallel checkouts, sanitizers).
# SANITIZE=1 builds with AddressSanitizer + UBSan.

BUILD    ?= build
CC       ?= gcc
PYTHON   ?= /usr/bin/python3
OPT      ?= -O3 -march=native
PKGS      = gsl fftw3 inih

AF_CFLAGS = -std=c11 -D_GNU_SOURCE -g $(OPT) -fno-math-errno -fopenmp \
            -Wall -Wextra -Wshadow -Wno-unused-parameter -Iinclude -Isrc \
            $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# GSL's pkg-config adds its own slow CBLAS (-lgslcblas): link OpenBLAS instead.
AF_LIBS   = -lgsl $(shell pkg-config --libs openblas 2>/dev/null || echo -lopenblas) \
            -lfftw3 -linih -lz -lm -fopenmp
ifeq ($(SANITIZE),1)
  OPT      = -O1 -march=native
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

.PHONY: all bootstrap demo test test-only figures bench check-long clean FORCE
.SECONDARY:
all: $(LIB) $(CLI)

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
	$(CC) $(AF_CFLAGS) -MMD -MP $< $(LIB) $(AF_LIBS) -o $@

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
	@sh scripts/run_tests.sh $(BUILD) $(TEST_BIN)

figures: all
	@for e in experiments/*.ini; do \
	  sh scripts/run_experiment.sh $(CLI) $$(basename $$e .ini) || exit 1; done

# Baselines need numpy and POT (Debian's python3 packages); PyTorch
# (python3-torch, large) is used by bench_train only if it is installed.
bench: all $(BENCH_BIN)
	@sh scripts/bootstrap.sh python3-numpy python3-pot
	@for b in $(BENCH_BIN); do echo "== $$b"; BENCH_CLI=$(CLI) $$b || exit 1; done

# Long reference runs (full-size THEORY.md cases): tests/long_*.c.
check-long: all $(LONG_BIN)
	@sh scripts/run_tests.sh $(BUILD) $(LONG_BIN)

clean:
	rm -rf $(BUILD) out
