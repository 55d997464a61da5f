# Two entry points for a fresh Debian machine (see README.md):
#   make demo   - installs what is missing, builds, runs the GSM8K GRPO demo
#   make test   - installs what is missing, builds, runs every test (ctest)
#   make fuzz-smoke - builds the libFuzzer targets with clang (build-fuzz) and
#                 runs each for FUZZ_SECONDS on a copy of its seed corpus
BUILD_DIR ?= build
BUILD_TYPE ?= Release
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
FUZZ_DIR ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := fuzz_safetensors fuzz_config_json fuzz_tokenizer \
	fuzz_tokenizer_json fuzz_update_params fuzz_server_json fuzz_gsm8k

.PHONY: setup configure build demo test bench fuzz-smoke clean

setup:
	@bash .ci/setup.sh

configure: setup
	@cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)

demo: build
	$(BUILD_DIR)/bin/grpo_gsm8k_10steps

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

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
	rm -rf $(BUILD_DIR)
