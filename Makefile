# gen — build, test, run, bench. `make help` lists the targets.
LUA       ?= lua5.4
LUA_INC   ?= /usr/include/lua5.4
BLAS_DIR  ?= /usr/lib/x86_64-linux-gnu/openblas-openmp
BLAS_INC  ?= /usr/include/x86_64-linux-gnu/openblas-openmp
BUILD     ?= build
MAKEFLAGS += -j$(shell nproc)

# -z nodelete (LDFLAGS): Lua dlcloses C modules at exit, which would unload libgomp under its own
# worker threads. -fno-math-errno lets sqrt/exp vectorize and -fno-trapping-math lets selects like ReLU
# become branch-free SIMD (we never read FP exception flags); nothing -ffast-math-like: NaN checks and gelu need IEEE.
OPT       ?= -O3 -fno-math-errno -fno-trapping-math
WARN      := -Wall -Wextra -Werror -Wno-unused-parameter
CFLAGS    += -std=c11 -D_GNU_SOURCE -fPIC -fopenmp $(OPT) $(WARN) -I$(LUA_INC) -I$(BLAS_INC) -MMD -MP
LDFLAGS   += -shared -fopenmp -Wl,-z,nodelete -L$(BLAS_DIR) -Wl,-rpath,$(BLAS_DIR)
LDLIBS    += -lopenblas -lpng -lz -lm

SRC       := $(wildcard csrc/*.c csrc/kernels/*.c csrc/bind/*.c)
OBJ       := $(SRC:%.c=$(BUILD)/%.o)
MODULE    := $(BUILD)/gen/core.so
RUNTIME   := $(BUILD)/gen/runtime.so
# gen.mpi (lua/gen/dist.lua's collectives) is its own object, built only where Open MPI's mpicc is.
MPICC     ?= $(shell command -v mpicc 2>/dev/null)
MPI_MOD   := $(if $(MPICC),$(BUILD)/gen/mpi.so)

# Debian packages the project needs (make deps installs the missing ones).
DEB_PKGS  := build-essential lua5.4 liblua5.4-dev libopenblas-openmp-dev libopenblas0-openmp \
             libpng-dev zlib1g-dev lua-busted luarocks dataset-fashion-mnist lua-readline \
             clang-format lua-check clang-14 libclang-rt-14-dev openmpi-bin libopenmpi-dev
# The Jupyter kernel (lua/gen/app/jupyter_kernel.py) and its tests (spec/kernel_spec.lua).
KERNEL_PKGS := jupyter-notebook jupyter-nbconvert python3-ipykernel python3-jupyter-kernel-test
# Where make install-kernel puts the kernel spec: --user, --sys-prefix or --prefix DIR.
KERNEL_DEST ?= --user

.PHONY: all test run bench asan lint deps install install-rock install-kernel clean help fuzz fuzz-build fuzz-smoke
all: $(MODULE) $(RUNTIME) $(MPI_MOD)

$(MODULE): $(OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(OBJ) $(LDLIBS)

# gen.runtime sets libgomp's environment defaults, so it must not load libgomp itself.
$(RUNTIME): csrc/runtime/runtime.c
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -fopenmp -MMD -MP,$(CFLAGS)) $(filter-out -fopenmp,$(LDFLAGS)) -o $@ $<

# No OpenMP here: the collectives are single-threaded, and mpicc's wrapper adds MPI's flags.
$(BUILD)/gen/mpi.so: csrc/dist/mpi.c csrc/gen.h Makefile
	@mkdir -p $(dir $@)
	$(MPICC) $(filter-out -fopenmp -MMD -MP,$(CFLAGS)) $(filter-out -fopenmp,$(LDFLAGS)) -o $@ $<

$(BUILD)/%.o: %.c Makefile
	@mkdir -p $(dir $@)
	@echo "  CC $<"; $(CC) $(CFLAGS) -c $< -o $@

-include $(OBJ:.o=.d)

## test: run every busted spec under Lua 5.4; ends with "N passed, N failed"
test: $(MODULE) $(RUNTIME) $(MPI_MOD)
	$(LUA) spec/run.lua $(SPEC)
	@if [ -z "$(SPEC)" ] && command -v $(FUZZ_CC) >/dev/null; then $(MAKE) -s fuzz-smoke; fi

## run: the main job (trains the class-conditional rectified flow, writes its sample grid, scores 1000 samples)
run: $(MODULE) $(RUNTIME)
	bin/gen examples/diffusion/rectified_flow.lua --steps 1500 --sample-steps 25 --eval 1000

## bench: side-by-side benchmarks against PyTorch (installs python3-torch if missing)
bench: $(MODULE) $(RUNTIME)
	bash bench/run.sh

## asan: the whole suite under AddressSanitizer + UndefinedBehaviorSanitizer
# (the regular build too: the notebook spec's kernel child runs it, Jupyter being Python)
asan: $(MODULE) $(RUNTIME) $(MPI_MOD)
	$(MAKE) BUILD=build-asan OPT="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined" \
	  LDFLAGS="$(LDFLAGS) -fsanitize=address,undefined" build-asan/gen/core.so build-asan/gen/runtime.so \
	  $(if $(MPICC),build-asan/gen/mpi.so)
	GEN_BUILD=build-asan ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/spec/support/lsan.supp:print_suppressions=0 \
	  LD_PRELOAD="$$($(CC) -print-file-name=libasan.so) $$($(CC) -print-file-name=libubsan.so)" \
	  $(LUA) spec/run.lua $(SPEC)

## fuzz: libFuzzer harnesses (IDX, PNG, safetensors readers; the Lua binding) under ASan+UBSan, FUZZ_SECONDS each (60)
# Built with clang-14 without OpenMP (fuzz/omp_stub.c: single-threaded); corpora grow in
# build-fuzz/corpus/NAME from the seeds in fuzz/corpus/NAME; crashes land in build-fuzz/.
FUZZ_CC      ?= clang-14
FUZZ_SECONDS ?= 60
FUZZ_NAMES   := idx png safetensors lua
FUZZ_FLAGS   := -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined \
                -fno-sanitize-recover=undefined -Wno-unknown-pragmas -I$(LUA_INC) -I$(BLAS_INC) -DGEN_ROOT='"$(CURDIR)"'
FUZZ_OBJ     := $(SRC:%.c=build-fuzz/%.o) build-fuzz/fuzz/omp_stub.o
build-fuzz/%.o: %.c Makefile
	@mkdir -p $(dir $@)
	@$(FUZZ_CC) $(FUZZ_FLAGS) -MMD -MP -c $< -o $@
-include $(wildcard build-fuzz/csrc/*.d build-fuzz/csrc/*/*.d)
# the objects are shared by every harness: kept, not deleted as intermediates of the pattern rule
.SECONDARY: $(FUZZ_OBJ)
build-fuzz/fuzz_%: fuzz/fuzz_%.c $(FUZZ_OBJ)
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer $< $(FUZZ_OBJ) -o $@ -L$(BLAS_DIR) -Wl,-rpath,$(BLAS_DIR) -lopenblas -lpng -lz -llua5.4 -lm
fuzz-build: $(FUZZ_NAMES:%=build-fuzz/fuzz_%)
fuzz: fuzz-build
	@for n in $(FUZZ_NAMES); do mkdir -p build-fuzz/corpus/$$n; \
	  ASAN_OPTIONS=detect_leaks=1 build-fuzz/fuzz_$$n -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 \
	    -artifact_prefix=build-fuzz/$$n- build-fuzz/corpus/$$n fuzz/corpus/$$n 2>&1 | grep -E "^(#[0-9]+.*DONE|Done|==[0-9]+==ERROR|SUMMARY)" \
	    | sed "s/^/fuzz $$n: /"; done
# a few seconds each: a smoke test that the harnesses build and run their seeds (make test runs it)
fuzz-smoke: fuzz-build
	@for n in $(FUZZ_NAMES); do mkdir -p build-fuzz/smoke/$$n; \
	  build-fuzz/fuzz_$$n -max_total_time=3 -rss_limit_mb=2048 build-fuzz/smoke/$$n fuzz/corpus/$$n >/dev/null 2>build-fuzz/smoke-$$n.log \
	  && echo "fuzz-smoke $$n: ok" || { tail -30 build-fuzz/smoke-$$n.log; exit 1; }; done

## lint: C formatting (clang-format, .clang-format) and Lua checks (luacheck, .luacheckrc)
C_FILES   := $(wildcard csrc/*.[ch] csrc/*/*.[ch] bench/*.c fuzz/*.[ch])
lint:
	@clang-format --dry-run -Werror $(C_FILES) && echo "lint: $(words $(C_FILES)) C files formatted"
	@luacheck --quiet --formatter plain . && echo "lint: Lua files pass luacheck"

## deps: install missing Debian packages (as root), or print the command
deps:
	@missing=$$(for p in $(DEB_PKGS) $(KERNEL_PKGS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || echo $$p; done); \
	if [ -z "$$missing" ]; then echo "deps: all installed"; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	else echo "deps: missing packages; run:"; echo "  sudo apt-get install -y $$missing"; exit 1; fi

## install: luarocks make (module, lua/gen, bin/gen) for Lua 5.4, and the Jupyter kernel if Jupyter is there
install:
	luarocks --lua-version 5.4 make gen-scm-1.rockspec
	@gen=$$(luarocks --lua-version 5.4 config deploy_bin_dir)/gen; \
	if command -v jupyter >/dev/null && [ -x "$$gen" ]; then "$$gen" --install-kernel $(KERNEL_DEST); fi

## install-kernel: the Jupyter kernel "gen (Lua 5.4)" for this checkout (KERNEL_DEST=--user)
install-kernel: $(MODULE) $(RUNTIME)
	bin/gen --install-kernel $(KERNEL_DEST)

# Called by LuaRocks (gen-scm-1.rockspec) with the tree's directories.
install-rock: $(MODULE) $(RUNTIME) $(MPI_MOD)
	mkdir -p $(ROCK_LIBDIR)/gen $(ROCK_LUADIR) $(ROCK_BINDIR)
	cp $(MODULE) $(ROCK_LIBDIR)/gen/core.so
	cp $(RUNTIME) $(ROCK_LIBDIR)/gen/runtime.so
	$(if $(MPI_MOD),cp $(MPI_MOD) $(ROCK_LIBDIR)/gen/mpi.so)
	cp -r lua/gen $(ROCK_LUADIR)/
	cp bin/gen $(ROCK_BINDIR)/gen

clean:
	rm -rf build build-asan build-fuzz

help:
	@grep -E '^## ' Makefile | sed 's/^## /  make /'
