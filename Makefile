# Thin wrapper around CMake. Every target first installs missing Debian packages.
BUILD    ?= build
CMAKE_OPTS ?=
PYTHON   := /usr/bin/python3
JOBS     := $(shell nproc)

.PHONY: all deps build run test unit integration bench fuzz sanitize clean

all: build

deps:
	@scripts/deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_OPTS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

run: build
	@scripts/dev-run.sh $(BUILD)

unit: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

integration: build
	@PETREL_BUILD=$(abspath $(BUILD)) $(PYTHON) -m pytest -q -p no:cacheprovider tests/integration

test: unit integration

# ASan + UBSan build of everything, then the whole test suite against it.
sanitize:
	@$(MAKE) test BUILD=build-asan CMAKE_OPTS=-DPETREL_SANITIZE=ON

bench: build
	@PETREL_BUILD=$(abspath $(BUILD)) bench/run.sh

fuzz: deps
	@scripts/fuzz.sh

clean:
	rm -rf build build-asan build-fuzz
