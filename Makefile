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

# Debian packages the project needs (make deps installs the missing ones).
DEB_PKGS  := build-essential lua5.4 liblua5.4-dev libopenblas-openmp-dev libopenblas0-openmp \
             libpng-dev zlib1g-dev lua-busted luarocks dataset-fashion-mnist lua-readline \
             clang-format lua-check
# The Jupyter kernel (lua/gen/app/jupyter_kernel.py) and its tests (spec/kernel_spec.lua).
KERNEL_PKGS := jupyter-notebook jupyter-nbconvert python3-ipykernel python3-jupyter-kernel-test
# Where make install-kernel puts the kernel spec: --user, --sys-prefix or --prefix DIR.
KERNEL_DEST ?= --user

.PHONY: all test run bench asan lint deps install install-rock install-kernel clean help
all: $(MODULE) $(RUNTIME)

$(MODULE): $(OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(OBJ) $(LDLIBS)

# gen.runtime sets libgomp's environment defaults, so it must not load libgomp itself.
$(RUNTIME): csrc/runtime/runtime.c
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -fopenmp -MMD -MP,$(CFLAGS)) $(filter-out -fopenmp,$(LDFLAGS)) -o $@ $<

$(BUILD)/%.o: %.c Makefile
	@mkdir -p $(dir $@)
	@echo "  CC $<"; $(CC) $(CFLAGS) -c $< -o $@

-include $(OBJ:.o=.d)

## test: run every busted spec under Lua 5.4; ends with "N passed, N failed"
test: $(MODULE) $(RUNTIME)
	$(LUA) spec/run.lua $(SPEC)

## run: the main job (trains the class-conditional rectified flow, writes its sample grid, scores 1000 samples)
run: $(MODULE) $(RUNTIME)
	bin/gen examples/diffusion/rectified_flow.lua --steps 1500 --sample-steps 25 --eval 1000

## bench: side-by-side benchmarks against PyTorch (installs python3-torch if missing)
bench: $(MODULE) $(RUNTIME)
	bash bench/run.sh

## asan: the whole suite under AddressSanitizer + UndefinedBehaviorSanitizer
# (the regular build too: the notebook spec's kernel child runs it, Jupyter being Python)
asan: $(MODULE) $(RUNTIME)
	$(MAKE) BUILD=build-asan OPT="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined" \
	  LDFLAGS="$(LDFLAGS) -fsanitize=address,undefined" build-asan/gen/core.so build-asan/gen/runtime.so
	GEN_BUILD=build-asan ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/spec/support/lsan.supp:print_suppressions=0 \
	  LD_PRELOAD="$$($(CC) -print-file-name=libasan.so) $$($(CC) -print-file-name=libubsan.so)" \
	  $(LUA) spec/run.lua $(SPEC)

## lint: C formatting (clang-format, .clang-format) and Lua checks (luacheck, .luacheckrc)
C_FILES   := $(wildcard csrc/*.[ch] csrc/*/*.[ch] bench/*.c)
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
install-rock: $(MODULE) $(RUNTIME)
	mkdir -p $(ROCK_LIBDIR)/gen $(ROCK_LUADIR) $(ROCK_BINDIR)
	cp $(MODULE) $(ROCK_LIBDIR)/gen/core.so
	cp $(RUNTIME) $(ROCK_LIBDIR)/gen/runtime.so
	cp -r lua/gen $(ROCK_LUADIR)/
	cp bin/gen $(ROCK_BINDIR)/gen

clean:
	rm -rf build build-asan

help:
	@grep -E '^## ' Makefile | sed 's/^## /  make /'
