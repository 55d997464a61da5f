# Two entry points for a fresh Debian machine (see README.md):
#   make demo   - installs what is missing, builds, runs the GSM8K GRPO demo
#   make test   - installs what is missing, then three runs (what CI runs):
#                 test-release  every test, Release build (build/)
#                 test-asan     unit and threaded tests with ASan + UBSan
#                               (build-asan/)
#                 test-tsan     threaded tests with ThreadSanitizer
#                               (build-tsan/)
#   make soak   - the 20-minute soak (build/bin/grpo_soak), not part of test
#   make fuzz-smoke - builds the libFuzzer targets with clang (build-fuzz) and
#                 runs each for FUZZ_SECONDS on a copy of its seed corpus
SHELL := /bin/bash
BUILD_DIR ?= build
BUILD_NOISE := ^g?make(\[[0-9]+\])?: (Entering|Leaving) directory|Built target|Scanning dependencies|Consolidate compiler generated
BUILD_TYPE ?= Release
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
FUZZ_DIR ?= build-fuzz
ASAN_DIR ?= build-asan
TSAN_DIR ?= build-tsan
# Sanitizer builds use clang: with ASan + UBSan it compiles in 60% of gcc's
# time. -O1 keeps the tests fast and compiles in a third of the time of
# -O2 -g; -g1 keeps file:line in reports; assertions stay on. Measured on
# 2 cores: see docs/architecture.md "Reliability".
SANITIZER_CMAKE := -DCMAKE_CXX_COMPILER=clang++ \
	-DCMAKE_BUILD_TYPE=RelWithDebInfo \
	-DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" -DRLRT_BUILD_BENCHMARKS=OFF
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := fuzz_safetensors fuzz_config_json fuzz_tokenizer \
	fuzz_tokenizer_json fuzz_update_params fuzz_server_json fuzz_gsm8k \
	fuzz_json_nesting fuzz_request_screen

.PHONY: setup configure build demo test test-release test-asan test-tsan \
	bench soak fuzz-smoke clean

setup:
	@bash .ci/setup.sh

configure: setup
	@cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)

# The default demo learns from scratch on 2 cores in about a minute: the
# tiny model starts from random weights, a short supervised warm start on
# GSM8K's final answers ("#### 72") teaches it the answer format some of the
# time, then 10 GRPO steps raise how often it uses it (the format rewards
# and the mean reward rise; KL and gradient norms are non-zero). The
# picture of the run is redrawn after every step. Override with
# `make demo DEMO_FLAGS="..."` (every flag: grpo_gsm8k_10steps --help).
DEMO_FLAGS ?= --sft_steps=20 --sft_target=final_answer \
	--sft_learning_rate=1e-2 --learning_rate=5e-3 --batch_size=16 \
	--num_generations=8 --plot=$(BUILD_DIR)/demo_run.png

# The demo builds only its own binary and shows one line per build step
# (nothing when it is up to date): make's directory messages and CMake's
# "Built target" lines are dropped; errors and warnings stay.
demo: configure
	@set -o pipefail; cmake --build $(BUILD_DIR) -j $(JOBS) \
		--target grpo_gsm8k_10steps -- --no-print-directory 2>&1 | \
		{ grep -vE '$(BUILD_NOISE)' || true; }
	@$(BUILD_DIR)/bin/grpo_gsm8k_10steps $(DEMO_FLAGS)

test: test-release test-asan test-tsan

test-release: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

# halt_on_error: UBSan is already fatal (-fno-sanitize-recover); leaks are
# checked at each test binary's exit.
test-asan: setup
	@cmake -S . -B $(ASAN_DIR) -DRLRT_ASAN=ON $(SANITIZER_CMAKE) >/dev/null
	@cmake --build $(ASAN_DIR) --target unit_tests -j $(JOBS)
	cd $(ASAN_DIR) && ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 \
		ctest -L 'unit|threaded' --output-on-failure -j $(JOBS)

test-tsan: setup
	@cmake -S . -B $(TSAN_DIR) -DRLRT_TSAN=ON $(SANITIZER_CMAKE) >/dev/null
	@cmake --build $(TSAN_DIR) --target threaded_tests -j $(JOBS)
	cd $(TSAN_DIR) && ctest -L threaded --output-on-failure -j $(JOBS)

soak: build
	$(BUILD_DIR)/bin/grpo_soak --minutes=20

bench: build
	$(BUILD_DIR)/bin/bench_update_params --benchmark_repetitions=5 --benchmark_report_aggregates_only=true

# New inputs go to a fresh temporary directory (libFuzzer writes only to the
# first corpus directory), so the committed corpus is only read. A crash
# fails the target and leaves its reproducer and log in that directory.
fuzz-smoke: setup
	@CC=clang CXX=clang++ cmake -S . -B $(FUZZ_DIR) -DRLRT_FUZZ=ON \
		-DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(FUZZ_DIR) --target fuzzers -j $(JOBS)
	@for t in $(FUZZ_TARGETS); do \
		work=$$(mktemp -d /tmp/$$t.XXXXXX) && mkdir $$work/corpus || exit 1; \
		echo "fuzz-smoke: $$t for $(FUZZ_SECONDS)s"; \
		if ! $(FUZZ_DIR)/bin/$$t -max_total_time=$(FUZZ_SECONDS) \
			-artifact_prefix=$$work/ -print_final_stats=1 \
			$$work/corpus tests/fuzz/corpus/$$t >$$work/log 2>&1; then \
			tail -n 40 $$work/log; \
			echo "fuzz-smoke: $$t FAILED; reproducer and log in $$work"; exit 1; \
		fi; \
		grep -E '^#[0-9]+.*DONE' $$work/log; rm -rf $$work; \
	done

clean:
	rm -rf $(BUILD_DIR) $(ASAN_DIR) $(TSAN_DIR)
